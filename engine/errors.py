"""Expected failures: one clear message naming the thing, and the fix."""

from __future__ import annotations


class EngineError(Exception):
    """An expected problem the user can fix (bad file, unknown model, unreachable host...).

    ``message`` names the thing that is wrong; ``fix`` says what to do about it.
    ``exit_code`` is what the CLI exits with when this error ends a command.
    """

    exit_code = 1

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} — {self.fix}" if self.fix else self.message


class WorkspaceLocked(EngineError):
    """Another process holds the workspace's DuckDB file."""

    exit_code = 2


class ConfigError(EngineError):
    """The workspace's config.toml (or an override) is invalid."""
