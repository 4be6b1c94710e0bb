"""`rebase-tui config [KEY [VALUE]]`: show the effective settings, or set one in config.toml.

Settings live in the workspace's ``config.toml``, which is written atomically without opening the
workspace's database: this works while the app (or another command) holds the workspace, and a running
app picks the change up within a second.
"""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, print_json, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("config", parents=[common],
                       help="show settings, or set one in the workspace's config.toml")
    p.add_argument("key", nargs="?", help="a setting such as teacher.model")
    p.add_argument("value", nargs="?", help="the new value (omit to show the current one)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.config import SETTINGS_BY_KEY
    from engine.errors import ConfigError, EngineError
    from engine.workspace import read_settings, resolve_workspace_dir, write_setting

    path = resolve_workspace_dir(getattr(args, "workspace", None))
    if path.exists() and not path.is_dir():
        raise EngineError(f"workspace {path} is a file, not a directory", fix="choose a directory with -w DIR")
    if args.key and args.key not in SETTINGS_BY_KEY:
        raise ConfigError(f"unknown setting {args.key}", fix="known settings: " + ", ".join(SETTINGS_BY_KEY))
    try:
        cfg = write_setting(path, args.key, args.value) if args.key and args.value is not None \
            else read_settings(path)
    except OSError as exc:
        raise EngineError(f"cannot write {path / 'config.toml'}: {exc.strerror}",
                          fix="check the folder's permissions, or choose another workspace with -w DIR") from None
    keys = [args.key] if args.key else list(cfg.values)
    if args.json:
        print_json({k: {"value": cfg[k], "from": cfg.sources[k]} for k in keys})
        return 0
    from rich.text import Text

    console = stdout_console()
    for k in keys:  # values are the user's text: never read as markup
        console.print(Text.assemble(f"{k} = {cfg[k]!r}  ", (f"({cfg.sources[k]}: {SETTINGS_BY_KEY[k].help})", "dim")))
    return 0
