"""`rebase-tui models`: the models installed on the Ollama host."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("models", parents=[common], help="list the models installed on the Ollama host")
    p.add_argument("--host", metavar="URL", help="Ollama URL (default: config teacher.host, else $OLLAMA_HOST)")
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

    with open_workspace(args, {"teacher.host": args.host}) as ws:
        settings = TeacherSettings.from_config(ws.config)
    models = models_sync(settings)
    if args.json:
        print_json({"host": settings.url, "models": [m.to_json() for m in models]})
        return 0
    from rich.table import Table

    console = stdout_console()
    if not models:
        console.print(f"no models are installed on {settings.url} — `ollama pull llama3.1:8b`, for example")
        return 0
    table = Table("name", "size", "family", "parameters", "quantization", title=f"models on {settings.url}",
                  title_justify="left")
    for m in models:
        table.add_row(m.name, _size(m.size), m.family, m.parameter_size, m.quantization)
    console.print(table)
    return 0
