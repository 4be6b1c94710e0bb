"""Numbered schema migrations (NNNN_name.sql), applied by engine.store in order."""
