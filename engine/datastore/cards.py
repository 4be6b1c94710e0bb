"""Dataset cards (``README.md``): front matter, the description a card gives, and label names.

A card's description is its summary or description section (else its whole prose), as plain text — code,
tables, HTML, headings, link targets and metadata bullets dropped — cut to :data:`DESCRIPTION_CHARS`
at a sentence boundary. It is what retrieval compares with a task's instruction (the dataset score).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from engine.datastore.cells import class_labels

DESCRIPTION_CHARS = 2000
"""Longest description kept (characters)."""


def parse_card(text: str) -> tuple[dict[str, Any], str]:
    """``(front matter dict, markdown body)`` of a dataset card (YAML front matter between ``---``)."""
    meta: dict[str, Any] = {}
    body = text
    m = re.match(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", text, re.S)
    if m:
        body = text[m.end():]
        try:
            import yaml

            loaded = yaml.safe_load(m.group(1))
            if isinstance(loaded, dict):
                meta = loaded
        except Exception:  # noqa: BLE001 - a broken front matter only costs us its hints
            meta = {}
    return meta, body


def _section(body: str, titles: Sequence[str]) -> str | None:
    """The text under the first heading whose title is one of ``titles`` (until a heading of its level)."""
    lines = body.splitlines()
    for title in titles:
        for i, line in enumerate(lines):
            m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
            if m and m.group(2).strip().lower() == title:
                level = len(m.group(1))
                out = []
                for nxt in lines[i + 1:]:
                    h = re.match(r"^(#{1,6})\s", nxt)
                    if h and len(h.group(1)) <= level:
                        break
                    out.append(nxt)
                text = clean_markdown("\n".join(out))
                if text:
                    return text
    return None


def clean_markdown(text: str) -> str:
    """Card markdown → plain prose: code, tables, HTML, headings, link targets and metadata bullets dropped."""
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", " ", text, flags=re.S | re.M)
    kept = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|") or re.match(r"^#{1,6}\s", s) or re.match(r"^[-*_=]{3,}$", s):
            continue
        if re.match(r"^[-*+]\s+\*\*[^*]{1,60}:?\*\*:?\s*", s):  # "- **Homepage:** ..." metadata bullets
            continue
        if "more information needed" in s.lower():
            continue
        kept.append(line)
    text = "\n".join(kept)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n\s*\n+", "\n\n", text)
    return text.strip()


def cut(text: str, limit: int = DESCRIPTION_CHARS) -> str:
    """``text`` cut to ``limit`` characters at a sentence (or word) boundary."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    stop = max(head.rfind(". "), head.rfind(".\n"))
    if stop > limit // 2:
        return head[: stop + 1]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip() + "…"


def card_description(body: str) -> str:
    """The description a card gives: its summary/description section, else its whole prose."""
    text = _section(body, ("dataset summary", "dataset description", "description", "summary"))
    if not text:
        text = clean_markdown(body)
    return cut(text)


def card_labels(meta: dict[str, Any], config: str | None = None) -> dict[str, list[str]]:
    """Label names from the ``dataset_info`` features of a card's front matter (of ``config``, or all)."""
    info = meta.get("dataset_info")
    infos = info if isinstance(info, list) else [info] if isinstance(info, dict) else []
    out: dict[str, list[str]] = {}
    for item in infos:
        if not isinstance(item, dict):
            continue
        if config is None or item.get("config_name") in (None, config):
            out.update(class_labels(item.get("features") or []))
    return out
