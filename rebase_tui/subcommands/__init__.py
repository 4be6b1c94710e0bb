"""One module per subcommand of `rebase-tui`; each defines ``register(sub, common)``."""
