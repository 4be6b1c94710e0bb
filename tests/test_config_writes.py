"""config.toml is written atomically under a lock, without the workspace's database: concurrent writers
(the app and `rebase-tui config`) lose nothing, an invalid file is never overwritten, and the command works
while another process holds the workspace."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from engine.config import SETTINGS, read_config_file, save_setting
from engine.errors import ConfigError
from engine.workspace import Workspace, read_settings, write_setting

CLI = [sys.executable, "-m", "rebase_tui"]


def test_concurrent_writers_lose_no_key(tmp_path):
    path = tmp_path / "config.toml"
    keys = [s for s in SETTINGS if s.type is int][:6]
    errors: list[BaseException] = []

    def write(setting, n: int) -> None:
        try:
            for i in range(n):
                save_setting(path, setting.key, str(i + 1))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, 15)) for s in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert read_config_file(path) == {s.key: 15 for s in keys}
    assert not list(tmp_path.glob("*.tmp")), "a temporary file was left behind"


def test_an_invalid_file_is_not_overwritten(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[teacher]\ntemperature = "hot"\n')
    with pytest.raises(ConfigError, match="teacher.temperature must be float"):
        save_setting(path, "teacher.model", "x")
    assert path.read_text() == '[teacher]\ntemperature = "hot"\n'


def test_other_tables_survive_a_write(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[keymap]\n"review.accept" = "y"\n')
    save_setting(path, "teacher.model", "qwen2.5:7b")
    assert 'review.accept" = "y"' in path.read_text()
    assert read_config_file(path) == {"teacher.model": "qwen2.5:7b"}


def test_settings_without_the_store(tmp_path):
    ws_dir = tmp_path / "ws"
    cfg = write_setting(ws_dir, "teacher.concurrency", "4")
    assert cfg["teacher.concurrency"] == 4 and cfg.sources["teacher.concurrency"] == "config"
    assert read_settings(ws_dir)["teacher.concurrency"] == 4
    assert not (ws_dir / "rebase.duckdb").exists(), "writing a setting opened the database"


def test_config_command_works_while_another_process_holds_the_workspace(tmp_path):
    ws_dir = tmp_path / "ws"
    holder = Workspace(ws_dir)  # this process holds the DuckDB file, as the app does
    try:
        r = subprocess.run([*CLI, "-w", str(ws_dir), "config", "teacher.model", "qwen2.5:7b"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([*CLI, "-w", str(ws_dir), "config", "teacher.model", "--json"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"teacher.model": {"value": "qwen2.5:7b", "from": "config"}}
        # the holder sees the change when it looks again
        assert holder.reload_config() and holder.config["teacher.model"] == "qwen2.5:7b"
        assert not holder.reload_config()
    finally:
        holder.close()


def test_a_choice_wins_for_the_session_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REBASE_TEACHER_MODEL", "from-env")
    ws = Workspace(tmp_path / "ws")
    try:
        assert ws.config.sources["teacher.model"] == "env:REBASE_TEACHER_MODEL"
        ws.choose("teacher.model", "picked")
        assert ws.config["teacher.model"] == "picked"
        assert read_config_file(ws.config_path)["teacher.model"] == "picked"
        assert ws.overridden_by("teacher.model") == "REBASE_TEACHER_MODEL"
        assert ws.overridden_by("teacher.temperature") == ""
    finally:
        ws.close()
