"""Themes: one TOML file per theme in ``themes/`` (shipped inside the wheel as ``rebase_tui/_themes``),
plus the user's own in ``<user config dir>/rebase-tui/themes``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

THEME_FIELDS = ("primary", "secondary", "accent", "foreground", "background", "surface", "panel",
                "warning", "error", "success")

#: Every app-specific variable, with a default that works on any theme (built-in ones included).
VARIABLE_DEFAULTS: dict[str, str] = {
    "review-accepted": "green",
    "review-rejected": "red",
    "review-pending": "yellow",
    "review-edited": "dodgerblue",
    "score-high": "green",
    "score-low": "grey",
    "loss-train": "dodgerblue",
    "loss-eval": "orange",
    "stream-cursor": "magenta",
}


@dataclass(frozen=True)
class ThemeProblem:
    """A theme file that could not be loaded, and why."""

    path: Path
    reason: str


def theme_dirs() -> list[Path]:
    """Where themes are looked for: the installed package data, the source tree, the user's folder."""
    import platformdirs

    here = Path(__file__).resolve().parent
    dirs = [here / "_themes", here.parent / "themes",
            Path(platformdirs.user_config_dir("rebase-tui", appauthor=False)) / "themes"]
    return [d for d in dirs if d.is_dir()]


def load_theme_file(path: Path) -> Theme:
    """Parse and validate one theme file (raises ValueError with the reason)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ValueError(f"not valid TOML: {exc}") from None
    name = data.get("name") or path.stem
    unknown = set(data) - {"name", "dark", "variables", *THEME_FIELDS}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    variables = data.get("variables", {})
    for key, value in [*((k, data[k]) for k in THEME_FIELDS if k in data), *variables.items()]:
        try:
            Color.parse(value)
        except (ColorParseError, TypeError):
            raise ValueError(f"{key} = {value!r} is not a colour") from None
    if "primary" not in data:
        raise ValueError("primary colour missing")
    fields = {k: data[k] for k in THEME_FIELDS if k in data}
    return Theme(name=name, dark=bool(data.get("dark", True)), variables=dict(variables), **fields)


def discover_themes() -> tuple[list[Theme], list[ThemeProblem]]:
    """All loadable themes (first found wins per name) and the files that failed."""
    themes: dict[str, Theme] = {}
    problems: list[ThemeProblem] = []
    for d in theme_dirs():
        for path in sorted(d.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ValueError as exc:
                problems.append(ThemeProblem(path, str(exc)))
                continue
            themes.setdefault(theme.name, theme)
    return list(themes.values()), problems
