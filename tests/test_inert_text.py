"""Text from data never reaches the terminal as control sequences: the inert() function and the CLI console."""

from __future__ import annotations

import io

from rich.table import Table
from rich.text import Text

from rebase_tui.inert import SafeConsole, inert

NASTY = "a\x1b[2Jb\x1b]0;title\x07c\x9bd\u202ee\rf\x00g\x7f"


def test_inert_shows_every_control_visibly():
    out = inert(NASTY)
    assert out == "a␛[2Jb␛]0;title␇c\\x9bd\\u202ee␍f␀g␡"
    assert inert("tab\tand\nnewline stay") == "tab\tand\nnewline stay"
    assert not any(ord(ch) < 0x20 and ch not in "\t\n" for ch in out)


def test_the_cli_console_renders_data_inertly():
    buf = io.StringIO()
    console = SafeConsole(file=buf, force_terminal=True, width=200, highlight=False)
    table = Table("cell")
    table.add_row(NASTY)
    console.print(table)
    console.print(Text(NASTY))
    console.print(NASTY, markup=False)
    console.print(f"[bold]{'x'}[/bold]")
    written = buf.getvalue()
    # rich's own styling remains (ESC[1m for bold), but no escape from the data survives
    assert "\x1b[2J" not in written and "\x1b]0;" not in written and "\x07" not in written
    assert "\x9b" not in written and "\u202e" not in written and "\r" not in written
    assert written.count("␛[2J") == 3
    assert "\x1b[1m" in written
