"""One prompt format for training, evaluation and export (the Ollama Modelfile).

Two families of student:

* **base** (the tokenizer has no chat template): the paper's layout — the task's instruction, its
  demonstrations, then the input and the response::

      {instruction}

      Input: {example input}
      Output: {example output}

      Input: {input}
      Output: {output}<eos>

  The constant part (instruction + demonstrations) is the *system* text; it is empty when a run trains
  from a bare ``--data FILE`` without a task.
* **chat** (the tokenizer has a chat template): system = instruction + demonstrations, user = input,
  assistant = output, rendered by the tokenizer's own template.

Loss is on the response only: :func:`encode` returns labels that are ``-100`` on every prompt token and the
response tokens (ending in EOS) otherwise. :func:`prompt_text` is the text a model is given at inference;
:func:`ollama_template` turns the same function into an Ollama Go template, so a served model sees exactly
the training prompt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import EngineError

IGNORE_INDEX = -100
BASE = "base"
CHAT = "chat"
FORMATS = ("auto", BASE, CHAT)

# Placeholders rendered through the template to locate where system and input go (Modelfile export).
_SYS_MARK = "\x00REBASE_SYSTEM\x00"
_USER_MARK = "\x00REBASE_INPUT\x00"


@dataclass(frozen=True)
class PromptFormat:
    """How one run turns ``(input, output)`` into text: ``kind`` base or chat, plus the task context."""

    kind: str = BASE
    instruction: str = ""
    examples: tuple[tuple[str, str], ...] = field(default=())

    @property
    def system(self) -> str:
        """The constant context: instruction and demonstrations (the Modelfile's SYSTEM), the same text for
        both kinds (a chat template puts it in the system turn)."""
        parts = [self.instruction.strip()] if self.instruction.strip() else []
        parts += [f"Input: {inp}\nOutput: {out}" for inp, out in self.examples]
        return "\n\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "instruction": self.instruction,
                "examples": [{"input": i, "output": o} for i, o in self.examples]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PromptFormat:
        return cls(data.get("kind", BASE), data.get("instruction", ""),
                   tuple((e["input"], e["output"]) for e in data.get("examples", [])))


def choose_kind(tokenizer: Any, requested: str = "auto") -> str:
    """``chat`` when asked, or when auto and the tokenizer has a chat template; else ``base``."""
    if requested not in FORMATS:
        raise EngineError(f"unknown prompt format {requested!r}", fix="use auto, base or chat")
    if requested != "auto":
        if requested == CHAT and not getattr(tokenizer, "chat_template", None):
                raise EngineError("the student's tokenizer has no chat template, so --format chat cannot be used",
                              fix="use --format base (or auto)")
        return requested
    return CHAT if getattr(tokenizer, "chat_template", None) else BASE


def supports_system(tokenizer: Any) -> bool:
    """Whether the chat template accepts a system message (Gemma's, for one, raises on it)."""
    cached = getattr(tokenizer, "_rebase_supports_system", None)
    if cached is None:
        try:
            tokenizer.apply_chat_template([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
                                          tokenize=False, add_generation_prompt=True)
            cached = True
        except Exception:  # noqa: BLE001 - jinja2's TemplateError from raise_exception, or similar
            cached = False
        try:
            tokenizer._rebase_supports_system = cached
        except AttributeError:
            pass
    return cached


def _messages(system: str, user: str, assistant: str | None = None,
              tokenizer: Any = None) -> list[dict[str, str]]:
    """Chat messages; without system support the system text opens the user turn, then a blank line."""
    if system and tokenizer is not None and not supports_system(tokenizer):
        system, user = "", f"{system}\n\n{user}"
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": user})
    if assistant is not None:
        msgs.append({"role": "assistant", "content": assistant})
    return msgs


def _render_prompt(fmt: PromptFormat, tokenizer: Any, system: str, user: str) -> str:
    if fmt.kind == CHAT:
        return tokenizer.apply_chat_template(_messages(system, user, tokenizer=tokenizer), tokenize=False,
                                             add_generation_prompt=True)
    return (f"{system}\n\n" if system else "") + f"Input: {user}\nOutput:"


def prompt_text(fmt: PromptFormat, tokenizer: Any, input_text: str) -> str:
    """The text the model is given for ``input_text`` (training prompt = inference prompt)."""
    return _render_prompt(fmt, tokenizer, fmt.system, input_text)


def response_text(fmt: PromptFormat, tokenizer: Any, input_text: str, output: str) -> str:
    """The text the model must produce after :func:`prompt_text` (without the EOS token)."""
    if fmt.kind == CHAT:
        prompt = prompt_text(fmt, tokenizer, input_text)
        full = tokenizer.apply_chat_template(_messages(fmt.system, input_text, output, tokenizer=tokenizer),
                                             tokenize=False)
        if not full.startswith(prompt):
                raise EngineError("the student's chat template renders the prompt differently with and without the "
                              "answer, so the response cannot be separated from the prompt",
                              fix="train with --format base")
        text = full[len(prompt):]
        eos = tokenizer.eos_token or ""
        # The template closes the turn (often with the EOS token itself); keep the text up to that EOS.
        if eos and eos in text:
            text = text[: text.rindex(eos)]
        return text
    return " " + output


def encode(fmt: PromptFormat, tokenizer: Any, input_text: str, output: str,
           max_length: int | None = None) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` of one example: prompt tokens masked with -100, response + EOS trained.

    When the example is longer than ``max_length``, the prompt loses tokens from its start (the input and
    the response are what matter); if the response alone is too long, it is cut and its end is not trained
    as an end (no EOS).
    """
    prompt_ids = tokenizer(prompt_text(fmt, tokenizer, input_text),
                           add_special_tokens=fmt.kind != CHAT)["input_ids"]
    resp_ids = tokenizer(response_text(fmt, tokenizer, input_text, output), add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        resp_ids = [*resp_ids, tokenizer.eos_token_id]
    if max_length is not None and len(prompt_ids) + len(resp_ids) > max_length:
        keep_prompt = max(min(len(prompt_ids), max_length // 2), max_length - len(resp_ids))
        prompt_ids = prompt_ids[len(prompt_ids) - keep_prompt:] if keep_prompt else []
        resp_ids = resp_ids[: max_length - len(prompt_ids)]
    return [*prompt_ids, *resp_ids], [IGNORE_INDEX] * len(prompt_ids) + list(resp_ids)


def encode_prompt(fmt: PromptFormat, tokenizer: Any, input_text: str) -> list[int]:
    """The token ids of the inference prompt (exactly the prompt part of :func:`encode`)."""
    return tokenizer(prompt_text(fmt, tokenizer, input_text), add_special_tokens=fmt.kind != CHAT)["input_ids"]


def stop_strings(fmt: PromptFormat, tokenizer: Any) -> list[str]:
    """Strings that end a response: the EOS token (and the chat template's end-of-turn, when distinct)."""
    stops = [tokenizer.eos_token] if tokenizer.eos_token else []
    if fmt.kind == CHAT:
        for tok in getattr(tokenizer, "all_special_tokens", []):
            if any(key in tok for key in ("end", "eot", "im_end")) and tok not in stops:
                stops.append(tok)
    return stops


def _go_literal(text: str) -> str:
    """Literal text inside a Go template: ``{{`` must not start an action."""
    return text.replace("{{", '{{ "{{" }}')


def ollama_template(fmt: PromptFormat, tokenizer: Any) -> str:
    """An Ollama TEMPLATE that renders ``.System`` + ``.Prompt`` exactly as :func:`prompt_text` does."""
    if fmt.kind == CHAT:
        rendered = _render_prompt(fmt, tokenizer, _SYS_MARK if fmt.system else "", _USER_MARK)
        if fmt.system and not supports_system(tokenizer):
            before, after = rendered.split(_SYS_MARK + "\n\n" + _USER_MARK, 1)
            return (_go_literal(before) + "{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}"
                    + _go_literal(after))
        if _SYS_MARK not in rendered:
            before, after = rendered.split(_USER_MARK, 1)
            return _go_literal(before) + "{{ .Prompt }}" + _go_literal(after)
        before, rest = rendered.split(_SYS_MARK, 1)
        between, after = rest.split(_USER_MARK, 1)
        return (_go_literal(before) + "{{ .System }}" + _go_literal(between) + "{{ .Prompt }}"
                + _go_literal(after))
    before, after = _render_prompt(fmt, tokenizer, "", _USER_MARK).split(_USER_MARK, 1)
    return "{{ if .System }}{{ .System }}\n\n{{ end }}" + _go_literal(before) + "{{ .Prompt }}" + _go_literal(after)


def render_ollama_template(template: str, system: str, prompt: str) -> str:
    """Render a template from :func:`ollama_template` as Ollama would (for tests and previews)."""
    out = template.replace('{{ "{{" }}', "\x01")
    out = re.sub(r"\{\{ if \.System \}\}(.*?)\{\{ end \}\}", lambda m: m.group(1) if system else "", out,
                 flags=re.DOTALL)
    out = out.replace("{{ .System }}", system).replace("{{ .Prompt }}", prompt)
    return out.replace("\x01", "{{")


def format_examples(fmt: PromptFormat, tokenizer: Any, rows: Sequence[dict[str, str]],
                    max_length: int | None) -> list[tuple[list[int], list[int]]]:
    """:func:`encode` over rows of ``{"input", "output"}``."""
    return [encode(fmt, tokenizer, r["input"], r["output"], max_length) for r in rows]
