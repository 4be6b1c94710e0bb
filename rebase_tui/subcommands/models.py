"""`rebase-tui models`: the models the teacher's server offers (installed on Ollama, or served by an
OpenAI-compatible server: `GET /v1/models`)."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from rebase_tui.subcommands.transform import add_teacher_flags

    p = sub.add_parser("models", parents=[common], help="list the models the teacher's server offers")
    add_teacher_flags(p)
    add_json_flag(p)
    p.set_defaults(func=run)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def run(args: argparse.Namespace) -> int:
    from engine.teacher.client import TeacherSettings, models_sync

    overrides = {"teacher.backend": args.backend, "teacher.host": args.host, "teacher.model": args.model}
    with open_workspace(args, overrides) as ws:
        settings = TeacherSettings.from_config(ws.config)
    models = models_sync(settings)
    if args.json:
        print_json({"host": settings.url, "backend": settings.backend, "models": [m.to_json() for m in models]})
        return 0
    from rich.table import Table

    console = stdout_console()
    if not models:
        hint = "`ollama pull llama3.1:8b`, for example" if settings.backend == "ollama" else \
            "start the server with a model (`vllm serve MODEL`)"
        console.print(f"no models are offered by {settings.url} — {hint}", markup=False)
        return 0
    table = Table("name", "size", "family", "parameters", "quantization", "context",
                  title=f"models on {settings.url}", title_justify="left")
    for m in models:
        table.add_row(m.name, _size(m.size) if m.size else "", m.family, m.parameter_size, m.quantization,
                      f"{m.context:,}" if m.context else "")
    console.print(table)
    return 0
