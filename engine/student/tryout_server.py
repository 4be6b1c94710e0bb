"""``python -m engine.student.tryout_server RUN_DIR [--device D] [--no-base]``: a run's student (and its
untrained base) loaded once in a process of its own, answering inputs sent as JSON lines.

A front end keeps this process while its "try" view is open: torch's generation then never competes with the
front end's own thread (a Python GIL is per process), and closing the view ends the process, which gives the
memory back. The protocol, one JSON document per line:

* in (stdin): ``{"id": N, "text": "...", "max_new_tokens": 256, "which": ["student", "base"],
  "references": [...], "layout": "jsonl"}`` — references (optional) let the answer be judged;
* out (stdout): ``{"type": "loading", "which"}``, ``{"type": "loaded", "which", "seconds", "device"}``,
  ``{"type": "text", "id", "which", "text"}`` (the answer so far, about ten times a second),
  ``{"type": "answer", "id", "which", "text", "answer", "seconds", "first_token_s", "tokens", "truncated",
  "correct"}`` and ``{"type": "error", "id", "which", "message"}`` (``id`` null: loading failed, the
  process exits 1).

End of stdin ends the process. Anything a library prints goes to stderr, never into the protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

#: Seconds between two "text" messages of one answer (the final text always follows in "answer").
TEXT_INTERVAL_S = 0.1


class Channel:
    """The protocol's output: the process's original stdout, kept for JSON lines alone."""

    def __init__(self) -> None:
        self.out: IO[str] = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # prints from libraries land on stderr

    def send(self, **doc: Any) -> None:
        self.out.write(json.dumps(doc, ensure_ascii=False) + "\n")
        self.out.flush()


def _describe(exc: BaseException) -> str:
    from engine.errors import EngineError

    return str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"


def _load(channel: Channel, run_dir: Path, device: str, base: bool) -> dict[str, Any]:
    from engine.student.tryout import WarmModel

    models: dict[str, Any] = {}
    for which in ("student", "base") if base else ("student",):
        channel.send(type="loading", which=which)
        model = WarmModel(run_dir, base=which == "base", device=device)
        models[which] = model
        channel.send(type="loaded", which=which, seconds=round(model.load_seconds, 3), device=model.device)
    return models


def _streamer(channel: Channel, rid: Any, which: str) -> Callable[[str], None]:
    """Sends the answer so far, at most every TEXT_INTERVAL_S seconds."""
    last = [0.0]

    def on_text(so_far: str) -> None:
        now = time.monotonic()
        if now - last[0] >= TEXT_INTERVAL_S:
            last[0] = now
            channel.send(type="text", id=rid, which=which, text=so_far)

    return on_text


def _answer(channel: Channel, models: dict[str, Any], task: Any, request: dict[str, Any]) -> None:
    from engine.student.tryout import judge

    rid, text = request.get("id"), str(request.get("text", ""))
    references = tuple(str(r) for r in request.get("references") or ())
    for which in request.get("which") or list(models):
        model = models.get(which)
        if model is None:
            channel.send(type="error", id=rid, which=which, message=f"{which} is not loaded in this process")
            continue
        try:
            got = model.answer(text, task, int(request.get("max_new_tokens") or 256), _streamer(channel, rid, which))
            correct = judge(task, str(request.get("layout") or "jsonl"), references, got.text)
        except Exception as exc:  # noqa: BLE001 - one failed answer is reported; the process serves on
            channel.send(type="error", id=rid, which=which, message=_describe(exc))
            continue
        channel.send(type="answer", id=rid, which=which, text=got.text, answer=got.answer,
                     seconds=round(got.seconds, 3), first_token_s=got.first_token_s, tokens=got.tokens,
                     truncated=got.truncated, correct=correct)


def serve(run_dir: Path, device: str = "auto", base: bool = True, stdin: IO[str] | None = None) -> int:
    """Load the run's models, then answer each request line until stdin ends; the exit status."""
    from engine.student.tryout import run_context

    channel = Channel()
    try:
        _, task = run_context(run_dir)
        models = _load(channel, run_dir, device, base)
    except Exception as exc:  # noqa: BLE001 - the front end shows the one line
        channel.send(type="error", id=None, which="", message=_describe(exc))
        return 1
    for line in stdin or sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError:
            channel.send(type="error", id=None, which="", message=f"not a JSON request: {line[:80]!r}")
            continue
        _answer(channel, models, task, request)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.student.tryout_server")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--no-base", action="store_true", help="load the trained student only")
    args = parser.parse_args(argv)
    return serve(args.run_dir, args.device, base=not args.no_base)


if __name__ == "__main__":
    sys.exit(main())
