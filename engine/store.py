"""The workspace's DuckDB store: connection, cursors, transactions, numbered migrations.

Migrations are the files ``engine/migrations/NNNN_name.sql``, applied in order inside one transaction
each and recorded in ``schema_migrations``. DuckDB allows one read-write process per file, and a
connection must not be shared between threads: every thread takes its own :meth:`Store.cursor`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb

from engine.errors import EngineError, WorkspaceLocked

_MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """All migrations shipped with the engine as ``(version, name, sql)``, sorted by version."""
    found = []
    for entry in resources.files("engine.migrations").iterdir():
        m = _MIGRATION_RE.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    return found


def latest_version() -> int:
    """The schema version this engine creates."""
    all_ = migrations()
    return all_[-1][0] if all_ else 0


class Store:
    """One read-write DuckDB connection to ``path``; use :meth:`cursor` per thread or task."""

    def __init__(self, path: Path, *, migrate: bool = True) -> None:
        self.path = Path(path)
        try:
            self.con = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" in text.lower():
                holder = re.search(r"held in (.+?) \(PID (\d+)\)", text)
                who = f"process {holder.group(2)} ({holder.group(1)})" if holder else "another process"
                raise WorkspaceLocked(
                    f"workspace {self.path.parent} is in use by {who}",
                    fix="close that rebase-tui, or choose another workspace with -w DIR",
                ) from None
            raise EngineError(f"cannot open {self.path}: {text}",
                              fix="check the file, or choose another workspace with -w DIR") from None
        if migrate:
            self.migrate()

    # -- connection handling -------------------------------------------------------------
    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for this thread or task; closed on exit."""
        cur = self.con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor inside BEGIN/COMMIT; rolled back if the block raises."""
        with self.cursor() as cur:
            cur.begin()
            try:
                yield cur
            except BaseException:
                cur.rollback()
                raise
            cur.commit()

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        self.con.close()

    # -- schema --------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The highest migration recorded in this database (0 for a new file)."""
        with self.cursor() as cur:
            exists = cur.execute(
                "select count(*) from information_schema.tables where table_name = 'schema_migrations'"
            ).fetchall()[0][0]
            if not exists:
                return 0
            return cur.execute("select coalesce(max(version), 0) from schema_migrations").fetchall()[0][0]

    def migrate(self, target: int | None = None) -> list[int]:
        """Apply the migrations newer than the database's version (up to ``target``); return them."""
        current = self.schema_version()
        newest = latest_version()
        if current > newest:
            raise EngineError(
                f"workspace {self.path.parent} has schema version {current}, newer than this "
                f"rebase-tui understands ({newest})",
                fix="upgrade rebase-tui (pip install -U rebase-tui)",
            )
        applied = []
        with self.cursor() as cur:
            cur.execute("create table if not exists schema_migrations "
                        "(version integer primary key, name varchar, applied_at timestamp)")
        for version, name, sql in migrations():
            if version <= current or (target is not None and version > target):
                continue
            with self.transaction() as cur:
                cur.execute(sql)
                cur.execute("insert into schema_migrations values (?, ?, current_timestamp)", [version, name])
            applied.append(version)
        if applied:
            # Keep schema changes out of the WAL: replaying some DDL after a crash needs extensions
            # that an offline machine cannot fetch.
            with self.cursor() as cur:
                cur.execute("checkpoint")
        return applied

    def table_counts(self, tables: list[str] | None = None) -> dict[str, int]:
        """Row counts of the given (or all user) tables."""
        with self.cursor() as cur:
            names = [r[0] for r in cur.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'main' and table_type = 'BASE TABLE' order by table_name"
            ).fetchall()]
            if tables is not None:
                names = [n for n in tables if n in names]
            return {n: cur.execute(f'select count(*) from "{n}"').fetchall()[0][0] for n in names}

    # -- key/value metadata --------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A workspace-wide fact (e.g. the embedder's name), or None."""
        with self.cursor() as cur:
            rows = cur.execute("select value from meta where key = ?", [key]).fetchall()
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        """Record a workspace-wide fact."""
        with self.cursor() as cur:
            cur.execute("insert or replace into meta values (?, ?)", [key, value])
