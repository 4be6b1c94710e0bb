"""Task stage: the task list and an editor for the instruction, the examples and the exclusion list.

The editor edits the app's one :class:`~rebase_tui.live.TaskDraft` (shared with the Retrieve screen), so
every edit here re-ranks the live retrieval. Validation problems from :func:`engine.tasks.validate` are
shown next to the field they concern. ``ctrl+s`` saves, ``ctrl+n`` starts a new task, ``ctrl+o`` imports
a task JSON file and ``ctrl+t`` exports one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import DataTable, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from engine.errors import EngineError
from engine.tasks import (
    TaskError,
    add_task,
    get_task,
    list_tasks,
    remove_task,
    validate,
)
from rebase_tui.inert import inert
from rebase_tui.key_order import after_typing
from rebase_tui.live import TaskDraft
from rebase_tui.screens.base import StageScreen
from rebase_tui.widgets.actions_palette import ScreenActions
from rebase_tui.widgets.dialogs import ConfirmDialog
from rebase_tui.widgets.editor import PlainTextArea
from rebase_tui.widgets.task_files import TaskFileActions
from rebase_tui.widgets.task_tables import PREVIEW, ExampleTable, TaskList, field_of, preview, split_ids
from rebase_tui.widgets.text import plain


class TaskScreen(TaskFileActions, StageScreen):
    """The tasks of this workspace, and the editor of the selected (or a new) task."""

    STAGE = "task"
    CSS_PATH = "task.tcss"
    COMMANDS = {ScreenActions}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="task.save", priority=True, tooltip="validate and store the task"),
        Binding("ctrl+j", "save_and_retrieve", "Save + retrieve", id="task.start", priority=True,
                tooltip="save the task, then rank the datastore's rows for it (F4)"),
        Binding("ctrl+n", "new_task", "New", id="task.new", priority=True, tooltip="start a new task"),
        Binding("ctrl+o", "import_task", "Import", id="task.import", priority=True,
                tooltip="import a task JSON file"),
        Binding("ctrl+t", "export_task", "Export", id="task.export", priority=True,
                tooltip="write the task to a JSON file"),
        Binding("ctrl+r", "revert", "Revert", id="task.revert", priority=True,
                tooltip="drop the unsaved changes: back to the task as stored (asks first)"),
    ]
    PANES = (("#task-list", "tasks"), ("#task-name", "name"), ("#task-instruction", "instruction"),
             ("#task-examples", "examples"), ("#example-input", "example input"), ("#task-exclude", "exclusions"))

    def __init__(self) -> None:
        super().__init__()
        self._example = 0
        """Index of the example the editors show."""
        self._show_errors = False

    # -- layout --------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Horizontal(id="task-main"):
            with Vertical(id="task-list-pane"):
                yield Label("Tasks", classes="pane-title")
                yield TaskList(id="task-list", markup=False)
            with VerticalScroll(id="task-editor"):
                yield Label("Name", classes="field-label")
                yield Input(id="task-name", placeholder="letters, digits, _ - .")
                yield Static("", id="name-error", classes="field-error")
                yield Label("Instruction", classes="field-label")
                yield PlainTextArea(id="task-instruction", placeholder="what the student model should do")
                yield Static("", id="instruction-error", classes="field-error")
                yield Label("Examples (a add · del delete · shift+↑/↓ move)", classes="field-label")
                yield ExampleTable(id="task-examples", cursor_type="row", zebra_stripes=True)
                yield Static("", id="examples-error", classes="field-error")
                with Horizontal(id="example-editors"):
                    with Vertical():
                        yield Label("Input", id="example-input-label", classes="field-label")
                        yield PlainTextArea(id="example-input", placeholder="the example's input")
                    with Vertical():
                        yield Label("Output", classes="field-label")
                        yield PlainTextArea(id="example-output", placeholder="the example's output")
                yield Label("Exclude datasets (comma-separated ids; 'glue' also excludes 'nyu-mll/glue')",
                            classes="field-label")
                yield Input(id="task-exclude", placeholder="dataset ids never to retrieve from")
                yield Static("", id="exclude-error", classes="field-error")
                yield Static("", id="task-status")

    def empty_message(self) -> str | None:
        if self.rebase.count("tasks"):
            return None
        return ("No tasks yet. Write one below (name, instruction, examples), then ctrl+s to save, "
                "or ctrl+o to import a task JSON file.")

    def on_mount(self) -> None:
        table = self.query_one("#task-examples", ExampleTable)
        table.add_column("#", key="n", width=3)
        table.add_column("input", key="input", width=PREVIEW)
        table.add_column("output", key="output", width=PREVIEW - 16)
        self.rebase.live.draft_signal.subscribe(self, self._draft_signal)
        self.rebase.live.open_initial_task()
        self._show_draft()

    def refresh_state(self) -> None:
        super().refresh_state()
        self._fill_task_list()

    def on_screen_resume(self) -> None:
        self._show_draft()

    def _draft_signal(self, origin: str) -> None:
        if origin != "task":
            self._show_draft()

    # -- showing the draft ---------------------------------------------------------------
    @property
    def draft(self) -> TaskDraft:
        return self.rebase.live.draft

    def _fill_task_list(self) -> None:
        task_list = self.query_one("#task-list", TaskList)
        names = [t.name for t in list_tasks(self.rebase.workspace)]
        highlighted = task_list.highlighted
        task_list.clear_options()
        task_list.add_options([Option(plain(n, 200), id=n) for n in names])
        current = self.draft.stored
        if current in names:
            task_list.highlighted = names.index(current)
        elif highlighted is not None and names:
            task_list.highlighted = min(highlighted, len(names) - 1)

    def _show_draft(self) -> None:
        """Put the draft into the widgets (only where they differ, so cursors stay put)."""
        d = self.draft
        name = self.query_one("#task-name", Input)
        # editors show the text inertly too: what is shown (a control character as its symbol) is what is kept
        if name.value != inert(d.name):
            name.value = inert(d.name)
        self.query_one("#task-instruction", PlainTextArea).set_text(inert(d.instruction))
        exclude = self.query_one("#task-exclude", Input)
        if split_ids(exclude.value) != d.exclude:
            exclude.value = inert(", ".join(d.exclude))
        self._fill_examples()
        self._show_problems()

    def _fill_examples(self) -> None:
        table = self.query_one("#task-examples", ExampleTable)
        table.clear()
        for i, (inp, out) in enumerate(self.draft.examples):
            table.add_row(str(i + 1), preview(inp), preview(out), key=str(i))
        if self.draft.examples:
            self._example = min(self._example, len(self.draft.examples) - 1)
            table.move_cursor(row=self._example, scroll=True)
        self._show_example()

    def _show_example(self) -> None:
        has = bool(self.draft.examples)
        inp = self.query_one("#example-input", PlainTextArea)
        out = self.query_one("#example-output", PlainTextArea)
        inp.disabled = out.disabled = not has
        if has:
            i, o = self.draft.examples[self._example]
            inp.set_text(inert(i))
            out.set_text(inert(o))
            label = f"Input of example {self._example + 1} of {len(self.draft.examples)}"
        else:
            inp.set_text("")
            out.set_text("")
            label = "Input (no examples yet: press a in the examples table)"
        self.query_one("#example-input-label", Label).update(Content(label))

    def _show_problems(self) -> None:
        problems = self.draft.problems() if self._show_errors or self.draft.stored else []
        by_field: dict[str, list[str]] = {"name": [], "instruction": [], "examples": [], "exclude": []}
        for p in problems:
            by_field[field_of(p)].append(p)
        for fld, items in by_field.items():
            widget = self.query_one(f"#{fld}-error", Static)
            widget.display = bool(items)
            widget.update(plain("\n".join(f"✗ {p}" for p in items), 2000))
        d = self.draft
        if problems:
            status = f"{len(problems)} problem(s) to fix before saving"
        elif d.stored is None:
            status = "new task, not saved (ctrl+s saves)"
        elif d.dirty:
            status = f"unsaved changes to {d.stored} (ctrl+s saves)"
        else:
            status = f"saved as {d.stored}"
        self.query_one("#task-status", Static).update(plain(status, 500))

    def _edited(self) -> None:
        """The user changed the draft here."""
        self._show_errors = True
        self._show_problems()
        self.rebase.live.draft_changed("task")

    # -- edits ---------------------------------------------------------------------------
    @on(Input.Changed, "#task-name")
    def _name_changed(self, event: Input.Changed) -> None:
        if event.value != self.draft.name:
            self.draft.name = event.value
            self._edited()

    @on(Input.Changed, "#task-exclude")
    def _exclude_changed(self, event: Input.Changed) -> None:
        ids = split_ids(event.value)
        if ids != self.draft.exclude:
            self.draft.exclude = ids
            self._edited()

    @on(TextArea.Changed, "#task-instruction")
    def _instruction_changed(self, event: TextArea.Changed) -> None:
        text = event.text_area.text
        if text != self.draft.instruction:
            self.draft.instruction = text
            self._edited()

    @on(TextArea.Changed, "#example-input")
    def _example_input_changed(self, event: TextArea.Changed) -> None:
        self._example_changed(0, event.text_area.text)

    @on(TextArea.Changed, "#example-output")
    def _example_output_changed(self, event: TextArea.Changed) -> None:
        self._example_changed(1, event.text_area.text)

    def _example_changed(self, part: int, text: str) -> None:
        if not self.draft.examples or self._example >= len(self.draft.examples):
            return
        pair = self.draft.examples[self._example]
        if pair[part] == text:
            return
        pair[part] = text
        table = self.query_one("#task-examples", ExampleTable)
        table.update_cell(str(self._example), "input" if part == 0 else "output", preview(text))
        self._edited()

    @on(DataTable.RowHighlighted, "#task-examples")
    def _example_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row != self._example and 0 <= event.cursor_row < len(self.draft.examples):
            self._example = event.cursor_row
            self._show_example()

    @on(DataTable.RowSelected, "#task-examples")
    def _example_selected(self) -> None:
        if self.draft.examples:
            self.query_one("#example-input", PlainTextArea).focus()

    @on(OptionList.OptionSelected, "#task-list")
    def _task_selected(self, event: OptionList.OptionSelected) -> None:
        name = event.option.id
        if name is None or name == self.draft.stored:
            return
        self._confirm_discard(lambda: self._open(name))

    # -- actions -------------------------------------------------------------------------
    def action_add_example(self) -> None:
        """Add an empty example and put the cursor in its input."""
        self.draft.examples.append(["", ""])
        self._example = len(self.draft.examples) - 1
        self._fill_examples()
        self.query_one("#example-input", PlainTextArea).focus()
        self._edited()

    def action_delete_example(self) -> None:
        """Delete the highlighted example."""
        if not self.draft.examples:
            return
        del self.draft.examples[self._example]
        self._example = max(0, min(self._example, len(self.draft.examples) - 1))
        self._fill_examples()
        self._edited()

    def action_move_example(self, step: int) -> None:
        """Move the highlighted example up (-1) or down (+1)."""
        ex, i = self.draft.examples, self._example
        j = i + step
        if not ex or not 0 <= j < len(ex):
            return
        ex[i], ex[j] = ex[j], ex[i]
        self._example = j
        self._fill_examples()
        self._edited()

    @after_typing
    def action_save(self) -> None:
        """Validate and store the draft."""
        self._save()

    def _save(self) -> None:
        self._show_errors = True
        self._show_problems()
        try:
            task = validate(self.draft.to_spec())
        except TaskError as exc:
            self.notify(f"not saved: {len(exc.problems)} problem(s), shown next to the fields",
                        severity="error")
            return
        ws = self.rebase.workspace
        try:
            add_task(ws, task, replace=task.name == self.draft.stored)
        except EngineError as exc:
            self.query_one("#name-error", Static).display = True
            self.query_one("#name-error", Static).update(plain(f"✗ {exc}", 2000))
            self.notify(str(exc), severity="error")
            return
        self.draft.name, self.draft.stored = task.name, task.name
        self.draft.saved_spec = self.draft.to_spec()
        self.rebase.task_name = task.name
        self.refresh_state()
        self._show_problems()
        self.notify(f"saved task {task.name}")

    @after_typing
    def action_save_and_retrieve(self) -> None:
        """Save the task; once it is saved, go to the Retrieve stage, which ranks rows for it."""
        self._save()
        if self.draft.stored is not None and not self.draft.dirty:
            self.rebase.action_stage("retrieve")

    def action_revert(self) -> None:
        """Back to the task as stored, dropping the unsaved changes (after a confirmation)."""
        name = self.draft.stored
        if name is None:
            self.notify("this task was never saved: nothing to revert to (ctrl+n starts afresh)", severity="warning")
            return
        if not self.draft.dirty:
            self.notify(f"{name} has no unsaved changes", timeout=3)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._open(name)
                self.notify(f"reverted {name} to its stored version", timeout=3)

        self.app.push_screen(ConfirmDialog(f"Drop the unsaved changes to {name}?", yes="Revert"), answered)

    def action_new_task(self) -> None:
        """Start a new, empty task."""
        self._confirm_discard(self._new)

    def _new(self) -> None:
        self._show_errors = False
        self._example = 0
        self.rebase.live.load(TaskDraft(examples=[["", ""]]), "task")
        self._show_draft()
        self.query_one("#task-name", Input).focus()

    def _open(self, name: str) -> None:
        task = get_task(self.rebase.workspace, name)
        if task is None:
            self.notify(f"task {name} is gone", severity="error")
            self._fill_task_list()
            return
        self._show_errors = False
        self._example = 0
        self.rebase.live.load(TaskDraft.from_task(task), "task")
        self._show_draft()

    def _confirm_discard(self, then: Callable[[], object]) -> None:
        if not self.draft.dirty or not any(self.draft.to_spec().values()):
            then()
            return
        what = self.draft.stored or "the new task"

        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.app.push_screen(ConfirmDialog(f"Discard the unsaved changes to {what}?", yes="Discard"),
                             answered)

    def action_remove_task(self) -> None:
        """Remove the highlighted stored task (asks first)."""
        task_list = self.query_one("#task-list", TaskList)
        if task_list.highlighted is None:
            return
        name = task_list.get_option_at_index(task_list.highlighted).id
        if name is None:
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                remove_task(self.rebase.workspace, name)
            except EngineError as exc:
                self.notify(str(exc), severity="error")
                return
            if self.draft.stored == name:
                self.draft.stored, self.draft.saved_spec = None, None
                self.rebase.task_name = None
            self.refresh_state()
            self._show_problems()
            self.notify(f"removed task {name}")

        self.app.push_screen(ConfirmDialog(f"Remove task {name} and its pool?", yes="Remove"), answered)
