"""The Rules panel of the Review screen: rules for the teacher made from the reviewer's rejection reasons.

``p`` proposes rules from the rejections no rule was made from yet (:func:`engine.teacher.rule_proposals.propose_rules`:
a check for a mechanical reason such as a wrong label or a copied row, one teacher-written rule per group of
other reasons); each rule is then accepted (``a``: a prompt rule joins the task's prompt for new calls, a
check judges every new example), edited (``e``) or dropped (``d``). The table shows, per accepted rule, the
reviewer's rejection rate of the examples made before it and of those made after
(:func:`engine.teacher.rules.rule_reports`). ``ctrl+j`` closes the panel asking for the pending examples
made before the rules to be made again with them (the Review screen starts that on the Transform stage,
where its progress, pause and stop are). Rule texts come from the reviewer and the teacher: shown inertly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from engine.errors import EngineError
from rebase_tui.messages import EngineEvent, JobFinished
from rebase_tui.widgets.actions_palette import ScreenActions
from rebase_tui.widgets.example_editor import LineDialog
from rebase_tui.widgets.text import one_line, plain

if TYPE_CHECKING:
    from engine.teacher.rules import Rule, RuleReport
    from engine.workspace import Workspace
    from rebase_tui.screens.review import ReviewScreen

    _Base = ReviewScreen
else:
    _Base = object

#: Characters of a rule's text in the table (the line under it shows the whole rule).
RULE_CHARS = 80


def rule_row(report: RuleReport) -> list[object]:
    """The table's cells for one rule: id, status (✎ once edited), kind (``prompt`` or the check's name), the
    rejection rates before and after it was accepted, and its text (the last column: it takes the room left)."""
    r = report.rule
    accepted = r.accepted_at is not None
    text = r.text if r.kind == "prompt" else f"refuses {r.text}"
    kind = (r.check_name or "check") if r.kind == "check" else "prompt"
    return [str(r.id), r.status + (" ✎" if r.edited else ""), kind,
            report.before.describe() if accepted else "—", report.after.describe() if accepted else "—",
            Text(one_line(text, RULE_CHARS))]


def edit_value(rule: Rule) -> str | None:
    """What the edit dialog starts from: a prompt rule's text, a length check's limit, a label check's labels
    (comma-separated); None for a check with nothing to edit."""
    if rule.kind == "prompt":
        return rule.text
    if rule.check_name == "max_chars":
        return str(rule.param.get("max_chars", ""))
    if rule.check_name == "label_set":
        return ", ".join(str(x) for x in rule.param.get("labels", []))
    return None


class RulesPanel(ModalScreen["str | None"]):
    """The task's rules with their rejection rates; closes with ``"redo"`` when ``ctrl+j`` asks for the pending
    examples to be made again with the accepted rules, else with None."""

    STAGE = "rules"
    COMMANDS: ClassVar = {ScreenActions}
    DEFAULT_CSS = """
    RulesPanel { align: center middle; }
    RulesPanel > Vertical { width: 96%; height: 94%; border: thick $primary; background: $surface; padding: 0 1; }
    RulesPanel #rules-title { color: $foreground-muted; height: auto; }
    RulesPanel #rules-table { height: 1fr; }
    RulesPanel #rules-detail { height: auto; max-height: 6; border-top: hkey $primary-muted; }
    RulesPanel #rules-status { height: auto; max-height: 2; color: $foreground-muted; }
    RulesPanel #rules-status.-error { color: $error; }
    RulesPanel.-short > Vertical { width: 100%; height: 100%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "propose", "Propose", id="rules.propose",
                tooltip="make rules from the rejection reasons no rule was made from yet (asks the teacher)"),
        Binding("a", "accept", "Accept", id="rules.accept",
                tooltip="accept the rule: new calls use it (a check judges every new example)"),
        Binding("e", "edit", "Edit", id="rules.edit",
                tooltip="change the rule's text (a length check: its limit; a label check: its labels)"),
        Binding("d", "drop", "Drop", id="rules.drop", tooltip="drop the rule (out of the prompt and the checks)"),
        Binding("ctrl+j", "redo", "Redo pending", id="rules.redo", priority=True,
                tooltip="make the pending examples made before the accepted rules again with them (Transform stage)"),
        Binding("escape", "close", "Close", id="rules.close", tooltip="back to the review list"),
    ]

    def __init__(self, workspace: Workspace, task: str) -> None:
        super().__init__()
        self.workspace = workspace
        self.task_name = task
        self.reports: list[RuleReport] = []
        self.proposing = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(plain(f"Rules for the teacher of task {self.task_name}, made from the reviewer's "
                               "rejection reasons — rejected before / after: of the examples made before / after "
                               "a rule was accepted, the share the reviewer rejected", 1000), id="rules-title")
            yield DataTable(id="rules-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="rules-detail")
            yield Static("", id="rules-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#rules-table", DataTable)
        for label, width in (("id", 3), ("status", 10), ("kind", 10), ("rejected before", 15),
                             ("rejected after", 14), ("rule", None)):
            table.add_column(label, width=width)
        self.refresh_rules()
        if not self.reports:
            self._say("no rules yet: p makes them from the rejection reasons")
        table.focus()

    # -- the table ---------------------------------------------------------------------------
    def refresh_rules(self, keep: int | None = None) -> None:
        """Read the rules and their rates again; the cursor stays on rule ``keep`` (or where it was)."""
        from engine.teacher.rules import rule_reports

        table = self.query_one("#rules-table", DataTable)
        current = self.current
        keep = keep if keep is not None else (current.id if current is not None else None)
        self.reports = rule_reports(self.workspace, self.task_name)
        table.clear()
        table.add_rows([rule_row(r) for r in self.reports])
        ids = [r.rule.id for r in self.reports]
        if ids:
            table.move_cursor(row=ids.index(keep) if keep in ids else 0)
        self._show_detail()

    @property
    def current(self) -> Rule | None:
        """The rule under the cursor."""
        table = self.query_one("#rules-table", DataTable)
        if not self.reports or not table.row_count:
            return None
        return self.reports[min(table.cursor_row, len(self.reports) - 1)].rule

    @on(DataTable.RowHighlighted, "#rules-table")
    def _show_detail(self) -> None:
        rule = self.current
        detail = self.query_one("#rules-detail", Static)
        if rule is None:
            detail.update(Content(""))
            return
        reasons = "; ".join(rule.reasons)
        text = rule.text if rule.kind == "prompt" else f"refuses {rule.text}"
        detail.update(plain(f"rule {rule.id}: {text}\nfrom {len(rule.examples)} rejection(s): {reasons}", 2000))

    def _say(self, text: str, error: bool = False) -> None:
        status = self.query_one("#rules-status", Static)
        status.set_class(error, "-error")
        status.update(plain(text, 1000))

    # -- actions -----------------------------------------------------------------------------
    def _decide(self, status: str) -> None:
        from engine.teacher.rules import set_rule_status

        rule = self.current
        if rule is None:
            return
        try:
            set_rule_status(self.workspace, self.task_name, rule.id, status)
        except EngineError as exc:
            self._say(str(exc), error=True)
            return
        self.refresh_rules(rule.id)
        if status == "accepted":
            self._say(f"rule {rule.id} accepted: new calls use it; ctrl+j makes the pending examples again with it")
        else:
            self._say(f"rule {rule.id} dropped")

    def action_accept(self) -> None:
        """Accept the rule under the cursor."""
        self._decide("accepted")

    def action_drop(self) -> None:
        """Drop the rule under the cursor."""
        self._decide("dropped")

    def action_edit(self) -> None:
        """Change the rule under the cursor in a dialog."""
        rule = self.current
        if rule is None:
            return
        value = edit_value(rule)
        if value is None:
            self._say(f"rule {rule.id} is a {rule.check_name} check: it has nothing to edit (d drops it)", error=True)
            return
        what = {"max_chars": "the longest input plus output allowed, in characters",
                "label_set": "the labels allowed, comma-separated"}.get(rule.check_name or "", "the rule's text")
        rule_id = rule.id

        def saved(text: str | None) -> None:
            if text is None:
                return
            from engine.teacher.rules import edit_rule

            try:
                edit_rule(self.workspace, self.task_name, rule_id, text)
            except EngineError as exc:
                self._say(str(exc), error=True)
                return
            self.refresh_rules(rule_id)
            self._say(f"rule {rule_id} changed")

        self.app.push_screen(LineDialog(f"Rule {rule_id}: {what} — enter saves, escape cancels", value, ok="Save"),
                             saved)

    def action_propose(self) -> None:
        """Propose rules from the new rejection reasons (the teacher writes the free-text ones)."""
        if self.proposing:
            return
        from engine.teacher.client import TeacherSettings
        from engine.teacher.rule_proposals import propose_rules
        from rebase_tui.jobs import run_async_events

        try:
            settings: TeacherSettings | None = TeacherSettings.from_config(self.workspace.config)
        except EngineError as exc:  # a bad teacher setting: the mechanical checks can still be proposed
            self._say(f"{exc} — proposing checks only", error=True)
            settings = None
        ws, task = self.workspace, self.task_name
        self.proposing = True
        self._say("grouping the rejection reasons… (the teacher writes a rule per group of free-text reasons)")
        run_async_events(self, "rules", lambda: propose_rules(ws, task, settings),
                         description=f"propose rules for {task}")

    @on(EngineEvent)
    def _proposal_event(self, message: EngineEvent) -> None:
        from engine.events import Log
        from engine.teacher.rule_proposals import RuleProposed

        if message.job != "rules":
            return
        if isinstance(message.event, RuleProposed):
            self.refresh_rules(message.event.rule.id)
            self._say(f"rule {message.event.rule.id} proposed: a accepts, e edits, d drops")
        elif isinstance(message.event, Log):
            self._say(message.event.message, error=message.event.level != "INFO")

    @on(JobFinished)
    def _proposals_done(self, message: JobFinished) -> None:
        if message.job != "rules":
            return
        self.proposing = False
        if message.outcome == "error":
            self._say(f"proposing stopped: {message.error}", error=True)
        self.refresh_rules()

    def action_redo(self) -> None:
        """Close, asking for the pending examples to be made again with the accepted rules."""
        if not any(r.rule.status == "accepted" for r in self.reports):
            self._say("no rule is accepted yet: a accepts the rule under the cursor", error=True)
            return
        self.dismiss("redo")

    def action_close(self) -> None:
        """Back to the review list."""
        self.dismiss(None)


class ReviewRules(_Base):
    """The Rules panel's key on :class:`~rebase_tui.screens.review.ReviewScreen`, and the redo it can ask for."""

    def action_rules(self) -> None:
        """Open the task's rules: propose, accept, edit, drop; redo the pending examples with them."""
        task = self.task_name
        if not task:
            self.notify("no task selected: F8 picks one", severity="warning")
            return

        def closed(result: str | None) -> None:
            self.example_list.focus()
            if result == "redo":
                self.app.run_worker(self._redo_on_transform(task), group="redo-pending", exit_on_error=False,
                                    description="redo the pending examples with the rules")

        self.app.push_screen(RulesPanel(self.rebase.workspace, task), closed)

    async def _redo_on_transform(self, task: str) -> None:
        """Go to the Transform stage and make the pending examples of ``task`` made before the accepted rules
        again with them (its progress, pause and stop are there)."""
        if self.rebase.task_name != task:
            self.rebase.select_task(task)
        await self.app.switch_mode("transform")
        start = getattr(self.app.screen, "start", None)
        if start is not None:
            start(redo_pending=True)
