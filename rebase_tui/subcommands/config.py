"""`rebase-tui config [KEY [VALUE]]`: show the effective settings, or set one in config.toml."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("config", parents=[common],
                       help="show settings, or set one in the workspace's config.toml")
    p.add_argument("key", nargs="?", help="a setting such as teacher.model")
    p.add_argument("value", nargs="?", help="the new value (omit to show the current one)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.config import SETTINGS_BY_KEY
    from engine.errors import ConfigError

    with open_workspace(args) as ws:
        if args.key and args.key not in SETTINGS_BY_KEY:
            raise ConfigError(f"unknown setting {args.key}",
                              fix="known settings: " + ", ".join(SETTINGS_BY_KEY))
        if args.key and args.value is not None:
            ws.set_setting(args.key, args.value)
        cfg = ws.config
    keys = [args.key] if args.key else list(cfg.values)
    if args.json:
        print_json({k: {"value": cfg[k], "from": cfg.sources[k]} for k in keys})
        return 0
    console = stdout_console()
    for k in keys:
        console.print(f"{k} = {cfg[k]!r}  [dim]({cfg.sources[k]}: {SETTINGS_BY_KEY[k].help})[/]")
    return 0
