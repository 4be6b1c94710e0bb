"""Where exports go: output paths checked before anything is written, and writes that appear whole or not at all.

An export never lands on the workspace's own files (its DuckDB file, ``config.toml``, ``index/``, ``runs/``),
never replaces an existing path unless asked (``force``), and writes into a temporary name in the same folder
that is renamed into place at the end — so a failure or a kill leaves the old file (or nothing) and no
temporary behind. Every refusal is one :class:`~engine.errors.EngineError` naming the path and the fix.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.errors import EngineError

# The workspace's own entries: what it cannot work without (the store and its write-ahead log, the
# settings, the vector indexes, the training runs).
WORKSPACE_OWN = ("rebase.duckdb", "rebase.duckdb.wal", "config.toml", "index", "runs")


def _own_entry(out: Path, workspace: Path) -> str | None:
    """The workspace entry that ``out`` is or lies inside (None when it is neither)."""
    for name in WORKSPACE_OWN:
        own = workspace / name
        if out == own or own in out.parents:
            return name
    return None


def check_out(out: str | Path, *, folder: bool, force: bool = False, workspace: Path | None = None,
              earlier_export: Callable[[Path], bool] | None = None, flag: str = "--out") -> Path:
    """The resolved output path, or an EngineError when writing there would do harm or cannot work.

    ``folder``: the export is a folder (else a file). An existing file is replaced only with ``force``; an
    existing empty folder is used; a non-empty one only with ``force`` and when ``earlier_export`` recognises
    it (``--force`` never deletes a folder of something else). Nothing is written here.
    """
    if not str(out).strip():
        raise EngineError(f"{flag} is empty", fix=f"give {flag} a path")
    try:
        return _checked(Path(out).expanduser().resolve(), folder, force, workspace, earlier_export, flag)
    except OSError as exc:  # a name too long, a folder that cannot be read...
        raise EngineError(f"{flag} {out} cannot be used: {exc.strerror or exc}", fix="choose another path") from None


def _checked(path: Path, folder: bool, force: bool, workspace: Path | None,
             earlier_export: Callable[[Path], bool] | None, flag: str) -> Path:
    if workspace is not None:
        ws = Path(workspace).expanduser().resolve()
        own = _own_entry(path, ws)
        if own is not None:
            where = "is" if path == ws / own else "is inside"
            raise EngineError(f"{flag} {path} {where} the workspace's own {own}; an export would destroy it",
                              fix=f"choose a path outside it, e.g. {ws / 'exports' / path.name}")
        if path == ws or path in ws.parents:
            raise EngineError(f"{flag} {path} holds the workspace {ws}", fix="choose a new path for the export")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise EngineError(f"{flag} {path} cannot be created: {parent} is a file, not a folder",
                              fix="choose a path inside a folder")
    if path.exists() and not path.is_dir() and not path.is_file():
        raise EngineError(f"{flag} {path} is not a regular file (a device, a pipe or a socket)",
                          fix="choose a file path")
    if path.is_dir() and not folder:
        raise EngineError(f"{flag} {path} is a folder; this export writes one file",
                          fix=f"give {flag} a file path, e.g. {path / 'export.jsonl'}")
    if path.is_file() and folder:
        raise EngineError(f"{flag} {path} is a file; this export writes a folder", fix=f"give {flag} a new folder")
    if path.exists() and not force and not (path.is_dir() and not any(path.iterdir())):
        raise EngineError(f"{flag} {path} already exists", fix="pass --force to replace it, or choose another path")
    if path.is_dir() and any(path.iterdir()) and not (earlier_export is not None and earlier_export(path)):
        raise EngineError(f"{flag} {path} is a folder that is not an earlier export; --force replaces only those",
                          fix=f"give {flag} a new or empty folder")
    return path


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EngineError(f"cannot create folder {path.parent}: {exc.strerror}",
                          fix="choose a writable location") from None


def _temp_name(path: Path) -> Path:
    """A fresh hidden name beside ``path`` (several writers never share one)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary file beside ``path`` to write; it replaces ``path`` when the block ends, and is
    removed when the block fails (the old ``path`` stays as it was)."""
    _make_parent(path)
    tmp = _temp_name(path)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the user's umask applies
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EngineError(f"cannot write {path}: {exc.strerror or exc}", fix="choose a writable location") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path`` to fill; it takes ``path``'s place when the block ends (an
    existing folder there, already checked by :func:`check_out`, is removed only after the rename), and is
    removed when the block fails."""
    _make_parent(path)
    tmp = _temp_name(path)
    try:
        tmp.mkdir(0o777)
        yield tmp
        old = None
        if path.is_dir():
            old = _temp_name(path)
            path.rename(old)
        try:
            tmp.rename(path)
        except OSError:
            if old is not None:
                old.rename(path)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise EngineError(f"cannot write {path}: {exc.strerror or exc}", fix="choose a writable location") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
