"""Regenerate on the Review screen (``n``): the teacher is asked again for the source row of the example
under the cursor; the new example appears right below the old one, under the cursor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import EngineError
from engine.review import ExampleRecord
from rebase_tui.widgets import review_backend as backend

if TYPE_CHECKING:
    from rebase_tui.screens.review import ReviewScreen

    _Base = ReviewScreen
else:
    _Base = object


class ReviewRegenerate(_Base):
    """The regenerate action of :class:`~rebase_tui.screens.review.ReviewScreen`."""

    def action_regenerate(self) -> None:
        """Ask the teacher again for the source row of the example under the cursor."""
        row = self.example_list.current
        if row is None or not self.task_name:
            return
        if row.id in self._regenerating:
            self.notify(f"#{row.id} is already being regenerated")
            return
        self._regenerating.add(row.id)
        self.notify(f"asking the teacher again for #{row.id}'s source row…", timeout=3)
        self.run_worker(self._regenerate(row.id), name="regenerate", group="regenerate",
                        exit_on_error=False, description="regenerate an example")

    async def _regenerate(self, example_id: int) -> None:
        task = self.task_name
        try:
            result, examples = await backend.regenerate(self.rebase.workspace, task, example_id)
        except EngineError as exc:  # Ollama unreachable, model missing, example gone: nothing changed
            self.notify(str(exc), severity="error", timeout=10)
            return
        except Exception as exc:  # the UI never dies with the teacher
            from rebase_tui.jobs import describe_error

            self.notify(describe_error(exc), severity="error", timeout=10)
            return
        finally:
            self._regenerating.discard(example_id)
        if task != self.task_name:
            return
        if result.example_id is None:
            self.notify(f"#{example_id}: {result.reason}", severity="error", timeout=10)
            return
        self._show_regenerated(example_id, examples)
        if result.cached:
            self.notify(f"#{example_id} was already regenerated as #{result.example_id}", timeout=4)
        elif result.replaced:
            self.notify(f"#{example_id} regenerated → #{result.example_id} (pending; u undoes)", timeout=4)
        else:
            self.notify(f"#{example_id} regenerated → #{result.example_id} ({result.status}: {result.reason})",
                        severity="warning", timeout=8)

    def _show_regenerated(self, old_id: int, examples: list[ExampleRecord]) -> None:
        """Repaint the old example, put the new one right below it, and move the cursor to the new one."""
        new = [e for e in examples if e.id != old_id]
        known = [e for e in examples if e.id in self.queue.by_id]
        if known:
            self._paint_examples(known)
        if not new:
            return
        new_id = new[0].id
        if new_id not in self.queue.by_id or self.queue.index_of(new_id) is None:
            row = self.queue.update(new[0])
            at = self.queue.index_of(old_id)
            self.queue.shown.insert(at + 1 if at is not None else len(self.queue.shown), row)
            self.example_list.set_rows(self.queue.shown)
            self._paint_summary()
        idx = self.queue.index_of(new_id)
        if idx is not None:
            self.example_list.move_to(idx)
            self._details.pop(new_id, None)
            self._show_detail(new_id)
