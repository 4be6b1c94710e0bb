"""Import boundaries, checked in fresh subprocesses (import-linter cannot see deferred imports).

- engine/ never imports textual, rich or rebase_tui;
- `rebase-tui --help`, `rebase-tui info` and the app module load no torch, transformers,
  sentence_transformers or peft, so they answer in well under a second.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import engine

HEAVY = ("torch", "transformers", "sentence_transformers", "peft")
UI = ("textual", "rich", "rebase_tui")

PROBE = """
import json, runpy, sys
mods = sys.argv[1:]
for m in mods:
    __import__(m)
print(json.dumps(sorted(k for k in sys.modules)))
"""

# Every module of every stage package: iter_modules would list the top level only, and a subpackage's
# modules would silently leave the boundary test.
ENGINE_MODULES = sorted(m.name for m in pkgutil.walk_packages(engine.__path__, prefix="engine.")
                        if not m.name.startswith("engine.demo_data"))
# The training worker and the modules that exist to run models import torch when called, never at import.


def loaded_after(*modules: str) -> set[str]:
    r = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return set(json.loads(r.stdout))


def roots(mods: set[str]) -> set[str]:
    return {m.split(".")[0] for m in mods}


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_module_imports_no_ui_and_nothing_heavy(module):
    found = roots(loaded_after(module))
    assert not found & set(UI), f"{module} imports {found & set(UI)}"
    assert not found & set(HEAVY), f"{module} imports {found & set(HEAVY)} at import time"


@pytest.mark.parametrize("module", ["rebase_tui.cli", "rebase_tui.app"])
def test_front_ends_import_nothing_heavy(module):
    found = roots(loaded_after(module))
    assert not found & set(HEAVY), f"{module} imports {found & set(HEAVY)}"


CLI_PROBE = """
import json, sys
from rebase_tui.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("\\n" + json.dumps(sorted(k.split(".")[0] for k in sys.modules)))
"""


@pytest.mark.parametrize("argv", [["--help"], ["info", "--no-ollama", "--json"], ["task", "list", "--json"]])
def test_cli_commands_load_no_torch(tmp_path, argv):
    r = subprocess.run([sys.executable, "-c", CLI_PROBE, "-w", str(tmp_path / "ws"), *argv],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    found = set(json.loads(r.stdout.strip().splitlines()[-1]))
    assert not found & set(HEAVY), f"`rebase-tui {' '.join(argv)}` loaded {found & set(HEAVY)}"


UI_ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent / "rebase_tui"


def test_the_ui_runs_no_sql_and_uses_no_private_engine_names():
    """Both front ends are thin: every query lives in the engine module that owns its table, and the UI
    reaches the engine only through its public names."""
    import re

    problems = []
    for path in sorted(UI_ROOT.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(UI_ROOT.parent)
        for lineno, line in enumerate(text.splitlines(), 1):
            if re.search(r"\.(execute|executemany|sql)\(|\.store\.(cursor|transaction)\(", line):
                problems.append(f"{rel}:{lineno}: runs SQL: {line.strip()}")
            if re.search(r"from engine[\w.]* import .*\b_[a-z]\w*", line) or re.search(r"\bengine\.[\w.]*\._[a-z]", line):
                problems.append(f"{rel}:{lineno}: uses a private engine name: {line.strip()}")
    assert not problems, "\n".join(problems)
