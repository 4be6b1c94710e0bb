"""Workspaces: creation, migrations, locking, config precedence and errors, `info`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from engine.config import load_config, read_config_file, save_setting
from engine.errors import ConfigError, WorkspaceLocked
from engine.store import Store, latest_version
from engine.workspace import Workspace, resolve_workspace_dir

CLI = [sys.executable, "-m", "rebase_tui"]


def test_workspace_created_on_first_use(tmp_path):
    path = tmp_path / "a" / "b"
    with Workspace(path) as ws:
        assert ws.store.schema_version() == latest_version()
        counts = ws.store.table_counts()
    for sub in ("index", "runs", "exports"):
        assert (path / sub).is_dir()
    assert (path / "rebase.duckdb").is_file()
    for table in ("datasets", "rows", "cells", "cell_values", "tasks", "retrievals", "examples", "runs"):
        assert counts[table] == 0


def test_workspace_choice_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("REBASE_WORKSPACE", str(tmp_path / "env"))
    assert resolve_workspace_dir(tmp_path / "cli") == tmp_path / "cli"
    assert resolve_workspace_dir(None) == tmp_path / "env"
    monkeypatch.delenv("REBASE_WORKSPACE")
    default = resolve_workspace_dir(None)
    assert default.name == "default" and "rebase-tui" in str(default)
    # The default lives under the (isolated) user data dir.
    assert str(default).startswith(str(tmp_path.parent)) or "XDG" not in str(default)


def test_migration_from_older_schema_keeps_data(tmp_path):
    db = tmp_path / "ws" / "rebase.duckdb"
    db.parent.mkdir()
    old = Store(db, migrate=False)
    assert old.migrate(target=1) == [1]
    old.set_meta("embedder.name", "kept")
    assert old.schema_version() == 1
    old.close()
    with Workspace(tmp_path / "ws") as ws:
        assert ws.store.schema_version() == latest_version()
        assert ws.store.get_meta("embedder.name") == "kept"
        with ws.store.cursor() as cur:
            versions = [r[0] for r in cur.execute("select version from schema_migrations order by 1").fetchall()]
        assert versions == list(range(1, latest_version() + 1))
    # Opening again applies nothing.
    with Workspace(tmp_path / "ws") as ws:
        assert ws.store.migrate() == []


def test_newer_schema_is_refused(tmp_path):
    with Workspace(tmp_path / "ws") as ws, ws.store.cursor() as cur:
        cur.execute("insert into schema_migrations values (999, '0999_future.sql', current_timestamp)")
    with pytest.raises(Exception, match="newer than this rebase-tui"):
        Workspace(tmp_path / "ws")


HOLDER = textwrap.dedent("""
    import sys, time
    from engine.workspace import Workspace
    ws = Workspace(sys.argv[1])
    print("held", flush=True)
    time.sleep(60)
""")


def test_second_process_gets_one_line_and_exit_2(tmp_path):
    ws_dir = tmp_path / "ws"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(ws_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = subprocess.run([*CLI, "-w", str(ws_dir), "info", "--json"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 2
        assert r.stdout == ""
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert str(ws_dir) in lines[0] and str(holder.pid) in lines[0]
        assert "Traceback" not in r.stderr
        with pytest.raises(WorkspaceLocked):
            Workspace(ws_dir)
    finally:
        holder.kill()
        holder.wait()


def test_config_precedence(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[teacher]\nhost = "http://file:1"\nmodel = "from-file"\n[student]\nepochs = 2\n')
    env = {"OLLAMA_HOST": "http://env:2", "REBASE_TEACHER_MODEL": "from-env"}
    cfg = load_config(path, {"teacher.model": "from-cli"}, environ=env)
    assert cfg["teacher.model"] == "from-cli" and cfg.sources["teacher.model"] == "cli"
    # OLLAMA_HOST is a machine-wide default: a host saved for the workspace wins over it
    assert cfg["teacher.host"] == "http://file:1" and cfg.sources["teacher.host"] == "config"
    assert load_config(tmp_path / "none.toml", None, environ=env).sources["teacher.host"] == "env:OLLAMA_HOST"
    assert cfg["student.epochs"] == 2.0 and cfg.sources["student.epochs"] == "config"
    assert cfg["embedder.model"] == "all-MiniLM-L6-v2" and cfg.sources["embedder.model"] == "default"
    # REBASE_OLLAMA_HOST wins over OLLAMA_HOST and over the file.
    cfg = load_config(path, None, environ={**env, "REBASE_OLLAMA_HOST": "http://mine:3"})
    assert cfg["teacher.host"] == "http://mine:3" and cfg.sources["teacher.host"] == "env:REBASE_OLLAMA_HOST"


@pytest.mark.parametrize("text, needle", [
    ('[teacher]\ntemperature = "hot"\n', "teacher.temperature must be float"),
    ('[teacher]\nconcurrency = 1.5\n', "teacher.concurrency must be int"),
    ('[teacher]\nhots = "x"\n', "unknown key teacher.hots"),
    ('[teacher\nhost = 1\n', "not valid TOML"),
    ('teacher = 3\n', "teacher must be a table"),
])
def test_config_errors_name_file_key_and_type(tmp_path, text, needle):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    assert needle in str(info.value) and str(path) in str(info.value)


def test_bad_cli_value_is_named():
    with pytest.raises(ConfigError, match="command line: teacher.concurrency must be int"):
        load_config(None, {"teacher.concurrency": "many"})


def test_save_setting_keeps_other_keys(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[teacher]\nmodel = "qwen2.5:7b"\n')
    save_setting(path, "ui.theme", "rebase-light")
    assert read_config_file(path) == {"teacher.model": "qwen2.5:7b", "ui.theme": "rebase-light"}


def test_invalid_config_reported_by_cli(tmp_path):
    ws_dir = tmp_path / "ws"
    ws_dir.mkdir()
    (ws_dir / "config.toml").write_text('[teacher]\ntemperature = "hot"\n')
    r = subprocess.run([*CLI, "-w", str(ws_dir), "info", "--json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert "config.toml" in r.stderr and "teacher.temperature must be float" in r.stderr
    assert "Traceback" not in r.stderr


def test_info_json(tmp_path):
    ws_dir = tmp_path / "ws"
    r = subprocess.run([*CLI, "info", "-w", str(ws_dir), "--json"], capture_output=True, text=True,
                       timeout=60, env={**__import__("os").environ, "OLLAMA_HOST": "http://127.0.0.1:9"})
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["workspace"] == str(ws_dir)
    assert info["schema_version"] == latest_version()
    assert info["counts"]["datasets"] == 0
    assert info["config"]["teacher.host"] == "http://127.0.0.1:9"
    assert info["config_sources"]["teacher.host"] == "env:OLLAMA_HOST"
    assert info["versions"]["duckdb"] and info["versions"]["textual"] == "8.2.8"
    assert info["ollama"]["reachable"] is False and info["ollama"]["host"] == "http://127.0.0.1:9"


def test_config_command_sets_and_shows(tmp_path):
    ws_dir = tmp_path / "ws"
    r = subprocess.run([*CLI, "-w", str(ws_dir), "config", "teacher.model", "qwen2.5:7b"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*CLI, "-w", str(ws_dir), "config", "teacher.model", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert json.loads(r.stdout) == {"teacher.model": {"value": "qwen2.5:7b", "from": "config"}}
    r = subprocess.run([*CLI, "-w", str(ws_dir), "config", "teacher.nope", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "unknown setting teacher.nope" in r.stderr
