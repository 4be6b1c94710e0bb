"""rebase-tui: the Textual app and the `rebase-tui` command. Imports nothing heavy."""

__version__ = "0.1.0"
