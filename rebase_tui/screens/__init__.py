"""One screen per ReBase stage (each the base of its own mode)."""
