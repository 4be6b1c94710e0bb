"""`rebase-tui score PREDICTIONS --data TEST`: score any system's answers with the task's metric."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("score", parents=[common],
                       help="score a JSONL of predictions against a test set (with 95%% confidence intervals)")
    p.add_argument("predictions", help='JSONL, one prediction per line in test order: {"prediction": "..."} '
                                       "or a JSON string")
    add_testset_options(p, required=True)
    p.add_argument("--task", metavar="TASK", help="the task (stored name or file): its metric and label set")
    p.add_argument("--against", metavar="PREDICTIONS",
                   help="a second system's predictions on the same test: adds the paired-bootstrap p-value")
    add_json_flag(p)
    p.set_defaults(func=run)


def add_testset_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    """--data, --metric, --input-col, --output-col (shared by `score` and `eval`)."""
    p.add_argument("--data", metavar="TEST", required=required,
                   help="the test set: BIG-Bench-Hard JSON, JSONL of {input, output}, SQuAD v1.1 JSON, MCoNaLa "
                        "JSON, or a Parquet/JSONL/CSV table with --input-col/--output-col")
    p.add_argument("--metric", metavar="M", help="exact, squad, accuracy, bleu, chrf (comma-separated for several; "
                                                 "default: the task's, else inferred from the test data)")
    p.add_argument("--input-col", metavar="COL", help="the input column of a table test set")
    p.add_argument("--output-col", metavar="COL", help="the reference column of a table test set")


def run(args: argparse.Namespace) -> int:
    from engine.student import metrics
    from engine.student.testsets import read_testset

    test = read_testset(args.data, input_col=args.input_col, output_col=args.output_col)
    task = None
    if getattr(args, "task", None):
        from engine.tasks import resolve_task

        with open_workspace(args) as ws:
            task = resolve_task(ws, args.task)
    choice = metrics.choose_metric(test.layout, test.references, task=task, explicit=args.metric)
    scored = _score(args.predictions, test, choice)
    doc = {"data": str(test.path), "n": len(test.items), "metrics": metrics.metrics_json(scored)}
    if args.against:
        other = _score(args.against, test, choice)
        doc["against"] = {"predictions": args.against, "metrics": metrics.metrics_json(other),
                          "p_value": {k: v for a, b in zip(other, scored, strict=True)
                                      for k, v in metrics.paired_bootstrap(a, b).items()}}
    if args.json:
        print_json(doc)
        return 0
    out = stdout_console()
    out.print(f"{args.predictions} on {test.path} ({len(test.items)} items; metric: "
              f"{', '.join(choice.metrics)} — {choice.why}):", markup=False)
    for name, value in doc["metrics"].items():
        line = f"  {name:<12} {metrics.format_value(name, value)}"
        if args.against:
            line += (f"   vs {metrics.format_value(name, doc['against']['metrics'][name])}"
                     f"   p = {doc['against']['p_value'][name]:.3f}")
        out.print(line, markup=False)
    return 0


def _score(path: str, test, choice) -> list:
    from engine.errors import EngineError
    from engine.student import metrics
    from engine.student.testsets import read_predictions

    predictions = read_predictions(path)
    if len(predictions) != len(test.items):
        raise EngineError(f"{path} holds {len(predictions)} predictions but {test.path} has {len(test.items)} "
                          "test items", fix="give exactly one prediction per test item, in test order")
    return metrics.score_all(choice, predictions, test.references)
