"""Metrics on known predictions, and real greedy evaluation of a trained tiny student vs its base."""

from __future__ import annotations

import json

import pytest

from engine.student import runs, training_data
from engine.student.evaluate import EvalDone, EvalResult
from engine.student.loop import train
from engine.student.run_config import RunSettings
from rebase_tui.cli import main
from tests.conftest import corpus


def test_old_metrics_files_still_read():
    old = {"n": 3, "exact_match": 0.5, "accuracy": 1.0, "f1": 0.75, "model": "student", "data": "validation",
           "seconds": 1.5}
    m = EvalResult.from_json(old)
    assert (m.n, m.value("accuracy"), m.metrics["f1"]["ci95"]) == (3, 1.0, [0.75, 0.75])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_student):
    """A tiny student trained to answer every boolean expression with one fixed sentence."""
    from engine.workspace import Workspace

    root = tmp_path_factory.mktemp("evalws")
    rows = training_data.read_examples_file(corpus("teacher_outputs", "boolean_expressions.jsonl"))[:160]
    rows = [{"input": r["input"], "output": "The answer is True."} for r in rows]
    with Workspace(root / "ws") as ws:
        path = runs.create_run(ws, rows, RunSettings(student=str(tiny_student), method="full", epochs=1.0,
                                                     max_steps=40, lr=5e-3, batch_size=8, grad_accum=1,
                                                     max_length=96, eval_every=40, device="cpu", seed=0,
                                                     format="auto", threads=1, eval_fraction=0.1))
        end = list(train(path))[-1]
        assert end.status == "finished"
        runs.record(ws, path)
    return root / "ws", path


def test_eval_trained_beats_base_and_writes_files(trained_run, capsys):
    ws, path = trained_run
    assert main(["eval", path.name, "-w", str(ws), "--max-new-tokens", "8", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["n"] == 16 and trained["data"] == "validation"
    # the task's examples reason to "the answer is X": its metric is the exact answer
    assert trained["metric"] == ["exact"] and trained["metrics"]["exact"] == {"value": 1.0, "ci95": [1.0, 1.0]}
    preds = [json.loads(x) for x in (path / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 16 and preds[0]["prediction"] == "The answer is True." and preds[0]["correct"]
    assert preds[0]["answer"] == "True." and preds[0]["references"] == ["The answer is True."]
    assert main(["eval", path.name, "-w", str(ws), "--base", "--limit", "8", "--max-new-tokens", "8",
                 "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["n"] == 8 and both["metrics"]["exact"]["value"] == 1.0
    assert both["base"]["metrics"]["exact"]["value"] == 0.0
    assert both["base"]["p_value"]["exact"] < 0.05, "8 of 8 against 0 of 8 is no accident"
    saved = json.loads((path / "metrics.json").read_text())
    assert set(saved) == {"student:validation", "base:validation"}
    assert (path / "predictions-base.jsonl").exists()


def test_eval_on_a_bbh_file(trained_run):
    from engine.student.evaluate import evaluate

    _, path = trained_run
    bbh = corpus("bbh", "boolean_expressions.json")
    events = list(evaluate(path, bbh, limit=6, max_new_tokens=8, batch_size=3))
    done = events[-1]
    assert isinstance(done, EvalDone) and done.metrics.n == 6 and done.metrics.data == bbh.name
    refs = [json.loads(x)["references"] for x in (path / "predictions.jsonl").read_text().splitlines()]
    expected = [e["target"] for e in json.loads(bbh.read_text())["examples"][:6]]
    assert refs == [[t] for t in expected]
    # the student always says True: its exact score is exactly the share of True targets
    assert done.metrics.metric == ("exact",)
    assert done.metrics.value("exact") == pytest.approx(sum(t == "True" for t in expected) / 6)


def test_eval_unknown_run_is_named(tmp_path, capsys):
    assert main(["eval", "nope", "-w", str(tmp_path / "ws")]) == 1
    assert "unknown run 'nope'" in capsys.readouterr().err


def test_fit_context_keeps_prompt_and_new_tokens_inside_the_context():
    from engine.student.evaluate import fit_context

    assert fit_context(300, 256, 2048) == (300, 256)                  # room for both: unchanged
    assert fit_context(3000, 256, 2048) == (1792, 256)                # long prompt loses its start
    assert fit_context(300, 256, 256, max_length=96) == (96, 160)     # new tokens reaching the context
    assert fit_context(40, 256, 256) == (40, 216)
    assert fit_context(500, 300, 128) == (64, 64)                     # at least half the context for the prompt
    assert fit_context(500, 64, None, max_length=96) == (96, 64)      # unknown context: only max_length
    for prompt, new, ctx in [(1, 1, 2), (7, 1000, 16), (1000, 1, 16), (5, 5, 10)]:
        cap, n = fit_context(prompt, new, ctx)
        assert cap >= 1 and n >= 1 and cap + n <= ctx


@pytest.mark.parametrize("family,context", [("gpt2", 128), ("gpt2", 256), ("llama", 256)])
def test_generate_when_new_tokens_reach_the_context(tiny_student, family, context):
    """Asking for as many (or more) new tokens as the student has positions used to lose the prompt cap and
    run past the position table (IndexError); now the generation is shortened to fit."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from engine.student.evaluate import generate
    from engine.student.formatting import PromptFormat, encode_prompt

    tok = AutoTokenizer.from_pretrained(tiny_student)
    torch.manual_seed(1)
    common = dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                  pad_token_id=tok.pad_token_id)
    if family == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(n_positions=context, n_embd=32, n_layer=1, n_head=2, **common))
    else:
        model = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                             num_attention_heads=2, num_key_value_heads=2,
                                             max_position_embeddings=context, **common))
    model.eval()
    fmt = PromptFormat(instruction="Evaluate the boolean expression.",
                       examples=(("not ( True ) and ( True ) is", "The answer is False."),))
    rows = training_data.read_examples_file(corpus("teacher_outputs", "boolean_expressions.jsonl"))[:2]
    inputs = [rows[0]["input"], " ".join(r["input"] for r in rows) * 8]     # a short and an over-long prompt
    assert len(encode_prompt(fmt, tok, inputs[1])) > context
    asked: list[int] = []
    real_generate = model.generate

    def spy(**kw):
        asked.append(kw["input_ids"].shape[1] + kw["max_new_tokens"])
        return real_generate(**kw)

    model.generate = spy
    for new_tokens in (context, context + 50):
        texts = generate(model, tok, fmt, inputs, "cpu", new_tokens, max_length=context * 2)
        assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert asked == [context, context]          # prompt + new tokens fill the context, never more


def test_eval_student_beside_the_teacher(trained_run, capsys, standin):
    """The student always says "The answer is True." (every validation answer here); the teacher knows none of
    the answers: the paired p-value compares the two on the same items. A run trained on a bare file has no
    examples for the teacher to follow: --task names them."""
    ws, path = trained_run
    assert main(["eval", path.name, "-w", str(ws), "--limit", "6", "--max-new-tokens", "8", "--teacher",
                 "--task", str(corpus("tasks", "boolean_expressions.json")), "--host", standin.url,
                 "--model", "llama3.1:8b", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["system"] == "student" and doc["metrics"]["exact"]["value"] == 1.0
    assert doc["teacher"]["metrics"]["exact"]["value"] < 1.0 and 0 <= doc["teacher"]["p_value"]["exact"] <= 1
    assert (path / "predictions-teacher.jsonl").exists()
    assert "teacher:validation" in json.loads((path / "metrics.json").read_text())
