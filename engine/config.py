"""User settings: built-in defaults < workspace config.toml < environment < CLI flags.

Every setting has a dotted key (``teacher.host``), a type, a default, and optionally environment
variables. ``config.toml`` in the workspace holds the user's values as TOML tables
(``[teacher] host = "..."``). Invalid files are reported with the file, the key and the expected type.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Setting:
    """One user setting: its dotted key, type, default, environment variables and help."""

    key: str
    type: type
    default: Any
    env: tuple[str, ...] = ()
    help: str = ""


SETTINGS: tuple[Setting, ...] = (
    Setting("embedder.model", str, "all-MiniLM-L6-v2", ("REBASE_EMBEDDER",),
            "sentence-transformers model name or local path"),
    Setting("embedder.batch_size", int, 64, (), "texts per embedding batch"),
    Setting("embedder.device", str, "auto", ("REBASE_DEVICE",), "auto, cpu or cuda"),
    Setting("embedder.threads", int, 0, (), "torch threads for `rebase-tui ingest` (0: all cores)"),
    Setting("embedder.precision", str, "auto", ("REBASE_PRECISION",),
            "auto, fp32, bf16 or fp16 for ingest (auto: bf16 on CPUs with AMX/AVX-512 BF16, fp16 on CUDA, "
            "else fp32); vectors are stored float32 either way"),
    Setting("embedder.backend", str, "torch", (), "torch, or openvino (CPU; pip install \"rebase-tui[openvino]\")"),
    Setting("embedder.batch_tokens", int, 16384, (), "padded tokens per embedding batch on CUDA (0: batch_size texts)"),
    Setting("embedder.executor", str, "local", (), "where ingest embeds: local (this process) or ray"),
    Setting("embedder.ray_address", str, "", ("REBASE_RAY_ADDRESS",),
            "Ray cluster to join (ray://HOST:10001); empty: start a local Ray on this machine"),
    Setting("embedder.ray_workers", int, 0, (), "embedder actors on Ray (0: one per GPU, else one per CPU)"),
    Setting("teacher.backend", str, "ollama", ("REBASE_TEACHER_BACKEND",),
            "ollama, or openai for an OpenAI-compatible server (vLLM, llama.cpp, LM Studio)"),
    Setting("retrieval.compact", str, "auto", ("REBASE_RETRIEVAL_COMPACT",),
            "exact retrieval from an int8 copy of the value vectors: auto (from 500k values), on or off"),
    Setting("teacher.host", str, "http://127.0.0.1:11434", ("REBASE_OLLAMA_HOST", "OLLAMA_HOST"),
            "Ollama server URL, or the OpenAI-compatible server's base URL (http://HOST:8000/v1)"),
    Setting("teacher.model", str, "llama3.1:8b", ("REBASE_TEACHER_MODEL",), "teacher model name"),
    Setting("teacher.temperature", float, 0.7, (), "sampling temperature"),
    Setting("teacher.seed", int, 0, (), "sampling seed (0: random)"),
    Setting("teacher.num_ctx", int, 4096, (), "context length asked of Ollama (an OpenAI-compatible server sets its own)"),
    Setting("teacher.num_predict", int, 1024, (), "max tokens per generation"),
    Setting("teacher.concurrency", int, 2, (), "requests in flight (match the server's parallel slots)"),
    Setting("teacher.timeout", float, 300.0, (), "idle-read timeout in seconds"),
    Setting("teacher.connect_timeout", float, 10.0, (), "connect timeout in seconds"),
    Setting("teacher.retries", int, 3, (), "retries per teacher call (connection errors, 5xx, cut streams)"),
    Setting("teacher.deadline", float, 1200.0, (), "overall limit in seconds for one teacher call, retries included"),
    Setting("teacher.max_reply_chars", int, 200_000, (), "longest teacher reply accepted, in characters"),
    Setting("retrieval.output_rule", str, "released", (),
            "what an example output that reasons contributes to retrieval: released (the text after "
            "'answer is ' as it stands, period kept, as the paper's code) or stripped (the closing period dropped)"),
    Setting("student.model", str, "", ("REBASE_STUDENT",), "Hugging Face causal LM (path or cached name)"),
    Setting("student.method", str, "lora", (), "lora or full"),
    Setting("student.epochs", float, 3.0, (), "training epochs"),
    Setting("student.lr", float, 2e-4, (), "learning rate"),
    Setting("student.batch_size", int, 8, (), "examples per batch"),
    Setting("student.grad_accum", int, 1, (), "gradient accumulation steps"),
    Setting("student.max_length", int, 1024, (), "max tokens per example"),
    Setting("student.device", str, "auto", (), "auto, cpu or cuda"),
    Setting("ui.theme", str, "rebase-dark", ("REBASE_THEME",), "TUI theme name"),
)
SETTINGS_BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}


def _convert(setting: Setting, value: Any, where: str) -> Any:
    """Coerce ``value`` to the setting's type or raise ConfigError naming ``where``."""
    t = setting.type
    if t is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, t) and not (t is not bool and isinstance(value, bool)):
        return value
    if isinstance(value, str) and where != "config":
        try:
            if t is int:
                return int(value)
            if t is float:
                return float(value)
            if t is bool:
                return value.strip().lower() in ("1", "true", "yes", "on")
        except ValueError:
            pass
    raise ConfigError(
        f"{where}: {setting.key} must be {t.__name__}, got {value!r}",
        fix=f"set {setting.key} to a {t.__name__} ({setting.help})",
    )


@dataclass
class Config:
    """The effective settings and where each came from (default, config, env:NAME, cli)."""

    values: dict[str, Any]
    sources: dict[str, str]
    path: Path | None = None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Nested ``{"teacher": {"host": ...}}`` form, as config.toml holds it."""
        out: dict[str, dict[str, Any]] = {}
        for key, value in self.values.items():
            section, name = key.split(".", 1)
            out.setdefault(section, {})[name] = value
        return out


def read_config_file(path: Path) -> dict[str, Any]:
    """Read config.toml into ``{dotted key: value}``, validating keys and types."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})", fix="fix the syntax or delete the file") from exc
    flat: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} must be a table like [{section}]",
                              fix="put settings under their section, e.g. [teacher] host = \"...\"")
        for name, value in table.items():
            key = f"{section}.{name}"
            if key == "keymap" or section == "keymap":
                continue
            setting = SETTINGS_BY_KEY.get(key)
            if setting is None:
                known = ", ".join(s.key for s in SETTINGS)
                raise ConfigError(f"{path}: unknown key {key}", fix=f"known keys: {known}")
            try:
                flat[key] = _convert(setting, value, "config")
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc.message}", fix=exc.fix) from None
    return flat


def load_config(path: Path | None, overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> Config:
    """Resolve every setting: CLI overrides > environment > config file > default."""
    environ = os.environ if environ is None else environ
    from_file = read_config_file(path) if path is not None else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for s in SETTINGS:
        values[s.key], sources[s.key] = s.default, "default"
        if s.key in from_file:
            values[s.key], sources[s.key] = from_file[s.key], "config"
        for name in s.env:
            if environ.get(name):
                values[s.key] = _convert(s, environ[name], f"environment variable {name}")
                sources[s.key] = f"env:{name}"
                break
        if overrides and overrides.get(s.key) is not None:
            values[s.key] = _convert(s, overrides[s.key], "command line")
            sources[s.key] = "cli"
    return Config(values, sources, path)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    s = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{s}"'


def save_setting(path: Path, key: str, value: Any) -> None:
    """Set one key in config.toml, keeping the user's other keys (rewrites the file atomically)."""
    setting = SETTINGS_BY_KEY.get(key)
    if setting is None:
        raise ConfigError(f"unknown setting {key}")
    current = read_config_file(path)
    current[key] = _convert(setting, value, "command line")
    sections: dict[str, dict[str, Any]] = {}
    for k, v in current.items():
        section, name = k.split(".", 1)
        sections.setdefault(section, {})[name] = v
    lines = ["# rebase-tui workspace settings (see README: Configuration)"]
    for section in sorted(sections):
        lines.append(f"\n[{section}]")
        lines += [f"{name} = {_toml_value(v)}" for name, v in sorted(sections[section].items())]
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
