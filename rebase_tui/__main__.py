"""`python -m rebase_tui` is the `rebase-tui` command."""

from rebase_tui.cli import main

raise SystemExit(main())
