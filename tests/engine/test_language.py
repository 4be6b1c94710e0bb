"""A task written in a non-Latin script with an English-only embedder is warned about at `task show` and at
retrieve time; an English task, or a multilingual embedder, is not."""

from __future__ import annotations

import json

from engine.language import embedder_warning, english_only, non_latin_scripts
from engine.tasks import read_task_file
from rebase_tui.cli import main
from tests.conftest import corpus

MULTILINGUAL = "sentence-transformers/distiluse-base-multilingual-cased"


def test_the_script_check():
    mconala = read_task_file(corpus("tasks", "mconala.json"))
    share, scripts = non_latin_scripts([t for e in mconala.examples for t in (e.input, e.output)])
    assert share > 0.5 and scripts[0] == "CJK" and "HIRAGANA" in scripts
    assert non_latin_scripts(["Ein Straßenmusiker spielt Gitarre.", "café"]) == (0.0, [])
    assert english_only("all-MiniLM-L6-v2") and english_only("sentence-transformers/multi-qa-MiniLM-L6-cos-v1")
    assert not english_only(MULTILINGUAL) and not english_only("BAAI/bge-m3") and not english_only("LaBSE")
    warning = embedder_warning(mconala, "all-MiniLM-L6-v2")
    assert warning is not None and warning.startswith("task mconala: ") and "cjk, hiragana" in warning
    assert MULTILINGUAL in warning
    assert embedder_warning(mconala, MULTILINGUAL) is None
    assert embedder_warning(read_task_file(corpus("tasks", "mnli.json")), "all-MiniLM-L6-v2") is None


def test_task_show_warns_and_keeps_its_json_a_task_file(tmp_path, capsys):
    w = str(tmp_path / "w")
    for name in ("mconala", "mnli"):
        assert main(["task", "add", str(corpus("tasks", f"{name}.json")), "-w", w]) == 0
    capsys.readouterr()
    assert main(["task", "show", "mconala", "-w", w]) == 0
    assert "warning: task mconala: " in " ".join(capsys.readouterr().out.split())
    assert main(["task", "show", "mconala", "--json", "-w", w]) == 0
    captured = capsys.readouterr()
    assert "reads English only" in captured.err and "warning" not in json.loads(captured.out)
    assert main(["task", "show", "mnli", "-w", w]) == 0
    assert "warning" not in capsys.readouterr().out
    assert main(["config", "embedder.model", MULTILINGUAL, "-w", w]) == 0
    capsys.readouterr()
    assert main(["task", "show", "mconala", "-w", w]) == 0
    assert "warning" not in capsys.readouterr().out


def test_retrieve_warns(small_datastore, capsys):
    assert main(["retrieve", str(corpus("tasks", "mconala.json")), "--top", "3", "-w", str(small_datastore)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: task mconala: " in err and "embedder all-MiniLM-L6-v2 reads English only" in err
