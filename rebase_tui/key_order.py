"""Stage-wide keys act on what was typed before them.

A priority binding (``ctrl+j``, ``ctrl+s``) runs its action as soon as the app reads the key, while the
characters typed just before it are still queued for the focused field: a pasted path followed at once by
``ctrl+j`` would start with only its first characters. :func:`after_typing` runs such an action from the
focused widget's own queue instead, after every key queued there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from textual.dom import DOMNode

F = TypeVar("F", bound=Callable[..., Any])


def after_typing(action: F) -> F:
    """Decorate an ``action_*`` method of a screen or widget: it runs once the focused widget has handled
    the keys queued before the one that triggered it."""

    @functools.wraps(action)
    def run(self: DOMNode, *args: Any) -> None:
        focused = self.screen.focused  # this screen's field (a dialog over it has its own queue)
        if focused is None:
            action(self, *args)
        else:
            focused.call_later(action, self, *args)

    return run  # type: ignore[return-value]
