"""`rebase-tui info`: the workspace, its schema and counts, effective config, versions, Ollama."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("info", parents=[common], help="show the workspace, its contents and settings")
    p.add_argument("--no-ollama", action="store_true", help="do not contact the Ollama host")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.info import workspace_info

    with open_workspace(args) as ws:
        info = workspace_info(ws, check_ollama=not args.no_ollama)
    if args.json:
        print_json(info)
        return 0
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    console.print(f"[bold]workspace[/]  {escape(str(info['workspace']))}  (schema v{info['schema_version']})")
    console.print(f"[bold]embedder[/]   {escape(str(info['embedder'] or 'none yet (set by the first ingest)'))}")
    _print_embedding(console, info["embedding"])
    counts = Table("table", "rows", title="contents", title_justify="left")
    for name, n in info["counts"].items():
        if name not in ("schema_migrations", "meta"):
            counts.add_row(name, f"{n:,}")
    console.print(counts)
    cfg = Table("setting", "value", "from", title="settings", title_justify="left")
    for key, value in info["config"].items():
        cfg.add_row(key, str(value), info["config_sources"][key])
    console.print(cfg)
    o = info["ollama"]
    if o is not None:
        openai = o.get("backend") == "openai"
        start = "start the server (`vllm serve MODEL`, `llama-server -m MODEL`)" if openai else \
            "start it with `ollama serve` or set OLLAMA_HOST"
        version = f"{len(o.get('models') or [])} model(s) served" if openai else f"version {o.get('version')}"
        state = f"[green]answers[/] ({escape(version)})" if o["reachable"] else \
            f"[red]not reachable[/] — {start} ({escape(str(o.get('error')))})"
        console.print(f"[bold]teacher[/]    {escape(o['host'])} ({'OpenAI-compatible' if openai else 'Ollama'}): {state}")
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    console.print(f"[bold]versions[/]   {versions}")
    return 0


def _print_embedding(console, embedding: dict) -> None:
    """What made the vectors, and what an ingest here would run (the engine chose it and says why)."""
    from rich.markup import escape

    v, i = embedding["vectors"], embedding["ingest"]
    if v["made_with"]:
        console.print(f"[bold]vectors[/]    {v['dim']}-d, made with {', '.join(v['made_with'])}", highlight=False)
    if v["rebuild"]:
        console.print(f"[yellow]           a --re-embed with {escape(v['rebuild']['model'])} is unfinished "
                      f"({v['rebuild']['state']}): run the ingest again with --re-embed[/]")
    if "error" in i:
        console.print(f"[bold]ingest[/]     [red]{escape(i['error'])}[/]")
        return
    console.print(f"[bold]ingest[/]     {i['backend']}/{i['precision']} on {i['device']} ({i['executor']}) — "
                  f"{escape(i['reason'])}", highlight=False)
    if "note" in i:
        console.print(f"           {escape(i['note'])}", highlight=False)
