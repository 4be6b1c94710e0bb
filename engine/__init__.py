"""rebase-tui's headless pipeline (ReBase: retrieval-based distillation).

This package never imports textual, rich or rebase_tui, and imports heavy libraries (torch,
transformers, sentence_transformers, peft) only inside the functions that need them.
"""
