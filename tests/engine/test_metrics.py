"""Metrics against cases whose answer is known by construction, against sacrebleu's own figures and the
official SQuAD v1.1 algorithm, and the test-set readers on files in every accepted layout."""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.student import metrics as M
from engine.student.testsets import read_predictions, read_testset
from engine.tasks import validate

DATA = Path(__file__).resolve().parent.parent / "data" / "testsets"


# -- exact: one case per BIG-Bench-Hard answer type -------------------------------------------------------
@pytest.mark.parametrize(("prediction", "target", "correct"), [
    # negative numbers (multistep_arithmetic_two): the sign is part of the answer
    ("The answer is 12.", "-12", False),
    ("So the answer is -12.", "-12", True),
    ("-12", "-12", True),
    ("The answer is 12", "12", True),
    # decimals: the point is kept
    ("the answer is 35", "3.5", False),
    ("the answer is 3.5.", "3.5", True),
    # brackets (dyck_languages): every bracket counts, one final period is trimmed
    ("The answer is ]", ") ] }", False),
    ("", ") ]", False),
    ("The answer is ) ] }.", ") ] }", True),
    ("The answer is )  ]   }", ") ] }", True),
    ("The answer is ) ]", ") ] }", False),
    # options: (B) matches B and (B), never (C)
    ("The answer is (B).", "(B)", True),
    ("B", "(B)", True),
    ("the answer is b", "(B)", True),
    ("The answer is (B) the second option", "(B)", True),
    ("The answer is (C).", "(B)", False),
    ("The answer is BC", "(B)", False),
    # exact words: True/False, valid/invalid, Yes/No
    ("The answer is True.", "True", True),
    ("true", "True", True),
    ("The answer is False.", "True", False),
    ("The answer is invalid.", "valid", False),
    ("The answer is \"valid\".", "valid", True),
    ("Yes, because the statement holds", "Yes", False),
    ("The answer is No.", "No", True),
    # sorted word lists (word_sorting)
    ("The answer is costume counterpart oven.", "costume counterpart oven", True),
    ("The answer is counterpart costume oven.", "costume counterpart oven", False),
    # inner punctuation kept (ruin_names-style free answers)
    ("The answer is dearth, wind, & fire.", "dearth, wind, & fire", True),
    ("The answer is dearth wind fire.", "dearth, wind, & fire", False),
])
def test_exact_answers(prediction, target, correct):
    assert M.exact_correct(prediction, target) is correct


def test_answer_extraction_takes_the_last_answer_and_its_line():
    text = "First I think the answer is (A). Then again, so the answer is (C).\nInput: next question"
    assert M.extract_answer(text) == "(C)."
    assert M.extract_answer("\n\n  True  \nmore") == "True"
    assert M.extract_answer("") == ""


# -- squad: the official algorithm over all references ----------------------------------------------------
def _official_normalize(s):
    """The SQuAD v1.1 evaluation script's normalize_answer, step by step as it is written there."""
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def _official_f1(prediction, ground_truth):
    prediction_tokens = _official_normalize(prediction).split()
    ground_truth_tokens = _official_normalize(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def _official(predictions, references):
    em = f1 = 0.0
    for p, refs in zip(predictions, references, strict=True):
        em += max(float(_official_normalize(p) == _official_normalize(g)) for g in refs)
        f1 += max(_official_f1(p, g) for g in refs)
    return em / len(predictions), f1 / len(predictions)


def test_squad_scores_against_every_reference():
    test = read_testset(DATA / "squad_layout.json")
    assert test.layout == "squad" and len(test.items) == 5
    assert test.items[0].input.startswith("Question: Where was the Pharos built? Context: The Pharos")
    # each prediction matches only a reference other than the first one
    predictions = ["Pharos", "third century BC", "an earthquake", "Fresnel", "20 nautical miles away"]
    scored = M.score("squad", predictions, test.references)
    em, f1 = _official(predictions, test.references)
    assert scored.values["exact_match"].value == pytest.approx(em) == pytest.approx(3 / 5)
    assert scored.values["f1"].value == pytest.approx(f1)
    first_only = M.score("squad", predictions, [refs[:1] for refs in test.references])
    assert first_only.values["exact_match"].value < scored.values["exact_match"].value


def test_squad_matches_the_official_algorithm_on_perturbed_answers():
    import random

    test = read_testset(DATA / "squad_layout.json")
    rng = random.Random(7)
    words = ["the", "a", "lighthouse", "Pharos", "BC", "of", "island", "20", "miles", ",", "Fresnel's", ""]
    for _ in range(50):
        preds = [" ".join(rng.sample(words, rng.randint(0, 5))) + rng.choice(["", ".", "!"]) for _ in test.items]
        scored = M.score("squad", preds, test.references)
        em, f1 = _official(preds, test.references)
        assert scored.values["exact_match"].value == pytest.approx(em)
        assert scored.values["f1"].value == pytest.approx(f1)


# -- bleu / chrf: sacrebleu's own figures -----------------------------------------------------------------
def test_bleu_and_chrf_equal_sacrebleu_with_several_references():
    import sacrebleu

    preds = ["xs[::-1]", "len( s )", "sorted(d)", "open(path).read()", "print(x)"]
    refs = [["xs[::-1]", "list(reversed(xs))"], ["len(s)"], ["sorted(d.keys())", "sorted(d)"], ["open(path).read()"],
            ["print(y)"]]
    streams = [[r[0] for r in refs], [r[1] if len(r) > 1 else None for r in refs]]
    bleu = M.score("bleu", preds, refs)
    chrf = M.score("chrf", preds, refs)
    assert bleu.values["bleu"].value == pytest.approx(sacrebleu.corpus_bleu(preds, streams).score, abs=1e-9)
    assert chrf.values["chrf"].value == pytest.approx(
        sacrebleu.corpus_chrf(preds, streams, word_order=2).score, abs=1e-9)
    lo, hi = bleu.values["bleu"].ci95
    assert 0 <= lo <= bleu.values["bleu"].value <= hi <= 100 + 1e-9


def test_mconala_layout_and_code_metrics_chosen():
    test = read_testset(DATA / "mconala_layout.json")
    assert test.layout == "mconala" and len(test.items) == 4
    assert test.items[1].input == "文字列の長さ", "intent stands in for an empty rewritten_intent"
    choice = M.choose_metric(test.layout, test.references)
    assert choice.metrics == ("bleu", "chrf")
    perfect = M.score_all(choice, [r[0] for r in test.references], test.references)
    assert [s.values[s.metric].value for s in perfect] == [pytest.approx(100.0), pytest.approx(100.0)]


# -- accuracy over a label set ----------------------------------------------------------------------------
def test_accuracy_maps_answers_to_the_label_set():
    labels = ("Entailment", "Neutral", "Contradiction")
    preds = ["Entailment", "the answer is neutral.", "I think it is a contradiction", "Entailment or Neutral",
             "entail", "Contradiction."]
    refs = [["Entailment"], ["Neutral"], ["Contradiction"], ["Neutral"], ["Entailment"], ["Neutral"]]
    scored = M.score("accuracy", preds, refs, labels=labels)
    assert scored.correct == [True, True, True, False, False, False]
    assert scored.values["accuracy"].value == pytest.approx(0.5)


def test_metric_chosen_from_the_task_or_the_data():
    mnli = validate({"name": "nli", "instruction": "Classify.", "examples": [
        {"input": "a", "output": "Neutral"}, {"input": "b", "output": "Entailment"},
        {"input": "c", "output": "Contradiction"}]})
    choice = M.choose_metric("jsonl", [["Neutral"], ["Contradiction"]], task=mnli)
    assert choice.metrics == ("accuracy",) and set(choice.labels) == {"Neutral", "Entailment", "Contradiction"}
    cot = validate({"name": "arith", "instruction": "Compute.", "examples": [
        {"input": "1+1", "output": "1 plus 1 is 2. So the answer is 2."}]})
    assert M.choose_metric("jsonl", [["2"]], task=cot).metrics == ("exact",)
    # a reasoning validation split ("not True = False. So the answer is False.") is not code
    reasoning = [["not True = False. So the answer is False."], ["True or x = True. So the answer is True."]]
    assert M.choose_metric("jsonl", reasoning, task=cot).metrics == ("exact",)
    assert M.choose_metric("jsonl", reasoning).metrics == ("exact",)
    bbh = read_testset(DATA / "bbh_mixed.json")
    assert M.choose_metric(bbh.layout, bbh.references).metrics == ("exact",), "dyck brackets are not code"
    assert M.choose_metric("jsonl", [["2"]], explicit="bleu, chrf").metrics == ("bleu", "chrf")
    with pytest.raises(EngineError, match="unknown metric rouge"):
        M.choose_metric("jsonl", [["2"]], explicit="rouge")


# -- confidence intervals and paired bootstrap --------------------------------------------------------------
def test_confidence_interval_and_paired_bootstrap():
    refs = [[str(i)] for i in range(200)]
    good = [f"The answer is {i}." if i % 10 else "no idea" for i in range(200)]           # 90 %
    bad = [f"The answer is {i}." if i % 2 else "no idea" for i in range(200)]             # 50 %
    a, b = M.score("exact", bad, refs), M.score("exact", good, refs)
    assert b.values["exact"].value == pytest.approx(0.9)
    lo, hi = b.values["exact"].ci95
    assert lo < 0.9 < hi and hi - lo < 0.12
    assert M.score("exact", good, refs).values == b.values, "a fixed seed: the same interval every time"
    assert M.paired_bootstrap(a, b)["exact"] < 0.01
    assert M.paired_bootstrap(b, b)["exact"] == pytest.approx(1.0)
    perfect = M.score("exact", [f"{i}" for i in range(200)], refs)
    assert perfect.values["exact"].ci95 == (1.0, 1.0)


def test_count_mismatch_is_an_error():
    with pytest.raises(EngineError, match="3 predictions for 2 test items"):
        M.score("exact", ["a", "b", "c"], [["a"], ["b"]])


# -- readers ----------------------------------------------------------------------------------------------
def test_readers_on_every_layout(tmp_path):
    bbh = read_testset(DATA / "bbh_mixed.json")
    assert bbh.layout == "bbh" and len(bbh.items) == 9 and bbh.items[0].references == ("] ]",)
    refs = read_testset(DATA / "refs.jsonl")
    assert refs.layout == "jsonl" and refs.items[0].references == ("blue", "light blue")
    table = read_testset(DATA / "table.csv", input_col="question", output_col="gold")
    assert [(i.input, i.references) for i in table.items][0] == ("Is 7 odd?", ("yes",))
    pq = tmp_path / "t.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq_mod

    pq_mod.write_table(pa.table({"q": ["x", "y"], "a": ["1", "2"]}), pq)
    assert read_testset(pq, input_col="q", output_col="a").references == [("1",), ("2",)]


@pytest.mark.parametrize(("content", "message"), [
    ('{"hello": 1}', "none of the accepted layouts"),
    ("", "holds no test items"),
    ('{"input": "x"}\n', "line 1 needs a string input and an output"),
    ('{"examples": [{"input": "x"}]}', "example 1 needs a string input and a non-empty target"),
    ('{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q", "answers": []}]}]}]}',
     "question 1 has no question text or no answers"),
    ("not json at all", "line 1 is not valid JSON"),
])
def test_bad_test_files_get_one_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(EngineError, match=re.escape(message)) as err:
        read_testset(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_column_and_missing_file(tmp_path):
    with pytest.raises(EngineError, match="no column 'answer'"):
        read_testset(DATA / "table.csv", input_col="question", output_col="answer")
    with pytest.raises(EngineError, match="does not exist"):
        read_testset(tmp_path / "nope.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(EngineError, match="not UTF-8"):
        read_testset(tmp_path / "bin.json")


# -- the `score` command ------------------------------------------------------------------------------------
def test_score_command_json_shape(tmp_path, capsys):
    from rebase_tui.cli import main

    test = read_testset(DATA / "bbh_mixed.json")
    preds = tmp_path / "p.jsonl"
    lines = [json.dumps({"prediction": f"So the answer is {r[0]}."}) for r in test.references]
    lines[2] = json.dumps("The answer is 42.")                       # a plain JSON string, and wrong
    preds.write_text("\n".join(lines) + "\n")
    assert main(["score", str(preds), "--data", str(DATA / "bbh_mixed.json"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"data", "n", "metrics"} and doc["n"] == 9
    assert set(doc["metrics"]) == {"exact"} and set(doc["metrics"]["exact"]) == {"value", "ci95"}
    assert doc["metrics"]["exact"]["value"] == pytest.approx(8 / 9, abs=1e-6)
    assert read_predictions(preds)[2] == "The answer is 42."
    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(lines[:3]) + "\n")
    assert main(["score", str(short), "--data", str(DATA / "bbh_mixed.json")]) == 1
    err = capsys.readouterr().err
    assert "holds 3 predictions" in err and "has 9 test items" in err and "Traceback" not in err


@pytest.mark.slow
def test_real_test_sets_read_and_choose_their_metric():
    """The publishers' real files beside the repository: every BIG-Bench-Hard test set, SQuAD, MCoNaLa."""
    from tests.conftest import shared_data

    for path in sorted(shared_data("bbh_test").glob("*.json")):
        test = read_testset(path)
        assert test.layout == "bbh" and len(test.items) >= 140
        assert M.choose_metric(test.layout, test.references).metrics == ("exact",)
        perfect = M.score("exact", [f"So the answer is {r[0]}." for r in test.references], test.references)
        assert perfect.values["exact"].value == 1.0, path.name
    squad = read_testset(shared_data("testsets", "squad_dev_v1.1_part.json"))
    assert squad.layout == "squad" and len(squad.items) == 810
    assert sum(len(r) > 1 for r in squad.references) > 700
    preds = [r[-1] for r in squad.references]
    scored = M.score("squad", preds, squad.references)
    assert (scored.values["exact_match"].value, scored.values["f1"].value) == \
        pytest.approx(_official(preds, squad.references))
    mconala = read_testset(shared_data("testsets", "mconala_ja_test.json"))
    assert mconala.layout == "mconala" and len(mconala.items) == 210
    assert M.choose_metric(mconala.layout, mconala.references).metrics == ("bleu", "chrf")
