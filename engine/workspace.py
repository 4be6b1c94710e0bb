"""A workspace: a directory holding the DuckDB store, index files, runs, exports and config.toml.

Chosen by ``-w/--workspace DIR``, else ``$REBASE_WORKSPACE``, else ``<user data dir>/rebase-tui/default``.
Created on first use. One process at a time may hold it open (DuckDB's single-writer rule); a second
one gets :class:`~engine.errors.WorkspaceLocked` naming the holder.

Its settings (``config.toml``) are not behind that lock: :func:`read_settings` and :func:`write_setting`
read and write them without opening the store, so ``rebase-tui config`` works while the app holds the
workspace, and the app picks the change up (:meth:`Workspace.reload_config`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.config import Config, load_config, save_setting
from engine.errors import EngineError
from engine.store import Store

DB_NAME = "rebase.duckdb"
CONFIG_NAME = "config.toml"


def default_workspace_dir() -> Path:
    """``<user data dir>/rebase-tui/default`` (platformdirs)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("rebase-tui", appauthor=False)) / "default"


def resolve_workspace_dir(cli_value: str | os.PathLike[str] | None = None,
                          environ: Mapping[str, str] | None = None) -> Path:
    """The workspace directory: CLI value, else $REBASE_WORKSPACE, else the default."""
    environ = os.environ if environ is None else environ
    if cli_value:
        return Path(cli_value).expanduser().resolve()
    if environ.get("REBASE_WORKSPACE"):
        return Path(environ["REBASE_WORKSPACE"]).expanduser().resolve()
    return default_workspace_dir()


def read_settings(path: Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """The effective settings of the workspace at ``path``, without opening its store."""
    return load_config(Path(path) / CONFIG_NAME, overrides)


def write_setting(path: Path, key: str, value: Any) -> Config:
    """Save one setting in the config.toml of the workspace at ``path`` (atomically, without opening its
    store: another process may hold it) and return the effective settings."""
    save_setting(Path(path) / CONFIG_NAME, key, value)
    return read_settings(path)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class Workspace:
    """An open workspace: its paths, its effective config and its (read-write) store.

    Use as a context manager, or call :meth:`close`. ``overrides`` are CLI-level settings
    (``{"teacher.host": ...}``) that win over environment, config file and defaults.
    """

    def __init__(self, path: Path, overrides: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise EngineError(f"workspace {self.path} is a file, not a directory",
                              fix="choose a directory with -w DIR")
        try:
            for sub in ("", "index", "runs", "exports"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EngineError(f"cannot create workspace {self.path}: {exc.strerror}",
                              fix="choose a writable directory with -w DIR") from None
        self.overrides = dict(overrides or {})
        self._config_stamp = _stamp(self.config_path)
        self.config: Config = load_config(self.config_path, self.overrides)
        self.store = Store(self.path / DB_NAME)

    @classmethod
    def open(cls, cli_value: str | os.PathLike[str] | None = None,
             overrides: Mapping[str, Any] | None = None) -> Workspace:
        """Open (creating if needed) the workspace chosen by CLI value / environment / default."""
        return cls(resolve_workspace_dir(cli_value), overrides)

    # -- paths ---------------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def index_dir(self) -> Path:
        return self.path / "index"

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    @property
    def exports_dir(self) -> Path:
        return self.path / "exports"

    # -- settings ------------------------------------------------------------------------
    def set_setting(self, key: str, value: Any) -> None:
        """Persist one setting in config.toml and refresh the effective config."""
        save_setting(self.config_path, key, value)
        self._config_stamp = _stamp(self.config_path)
        self.config = load_config(self.config_path, self.overrides)

    def choose(self, key: str, value: Any) -> Config:
        """A choice made in a form: saved in config.toml and in effect at once, everywhere.

        Where the environment or a command-line flag overrides the saved value, the choice still wins for
        the rest of this session (the user just made it), and the environment wins again next time —
        :meth:`overridden_by` names that variable so the form can say so.
        """
        stored = save_setting(self.config_path, key, value)
        if self.config.sources.get(key, "default") not in ("default", "config"):
            self.overrides[key] = stored
        self._config_stamp = _stamp(self.config_path)
        self.config = load_config(self.config_path, self.overrides)
        return self.config

    def overridden_by(self, key: str) -> str:
        """The environment variable a value saved for ``key`` would lose to at the next start, or empty."""
        from engine.config import SETTINGS_BY_KEY

        setting = SETTINGS_BY_KEY.get(key)
        return next((name for name in (setting.env if setting else ()) if os.environ.get(name)), "")

    def reload_config(self) -> bool:
        """Re-read config.toml when it changed on disk (``rebase-tui config`` while the app runs); True when
        it did. ConfigError when the new file is not valid (the settings in effect stay as they were)."""
        stamp = _stamp(self.config_path)
        if stamp == self._config_stamp:
            return False
        self._config_stamp = stamp
        self.config = load_config(self.config_path, self.overrides)
        return True

    # -- lifetime ------------------------------------------------------------------------
    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
