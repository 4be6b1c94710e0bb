"""User settings: built-in defaults < workspace config.toml < environment < CLI flags.

Every setting has a dotted key (``teacher.host``), a type, a default, and optionally environment
variables. ``config.toml`` in the workspace holds the user's values as TOML tables
(``[teacher] host = "..."``). Invalid files are reported with the file, the key and the expected type.

A few environment variables are machine-wide defaults that other programs read too (``OLLAMA_HOST``): a
value saved in the workspace is a choice made for that workspace, so it wins over them (``fallback_env``);
the program's own variables (``REBASE_OLLAMA_HOST``) win over the file as usual.

``config.toml`` is written atomically (a temporary file renamed over it) under a lock file, so the app and
``rebase-tui config`` may both write it at any time without a torn or lost update; writing it never needs
the workspace's DuckDB file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
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
    fallback_env: tuple[str, ...] = ()
    """Environment variables used only when config.toml does not set the key (machine-wide defaults)."""


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
    Setting("teacher.host", str, "http://127.0.0.1:11434", ("REBASE_OLLAMA_HOST",),
            "Ollama server URL, or the OpenAI-compatible server's base URL (http://HOST:8000/v1)",
            fallback_env=("OLLAMA_HOST",)),
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
    Setting("retrieval.weights", str, "1,1,1", (), "weights IN,OUT,DS of the input, output and dataset scores "
            "(1,1,1: the paper)"),
    Setting("retrieval.per_dataset_cap", int, 0, (), "at most this many rows of one dataset (0: no cap)"),
    Setting("retrieval.dedupe", bool, False, (), "drop rows whose best-input cell text repeats an earlier result"),
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
    """Resolve every setting: CLI overrides > environment > config file > fallback environment > default."""
    environ = os.environ if environ is None else environ
    from_file = read_config_file(path) if path is not None else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for s in SETTINGS:
        values[s.key], sources[s.key] = s.default, "default"
        for name in s.fallback_env:
            if environ.get(name):
                values[s.key] = _convert(s, environ[name], f"environment variable {name}")
                sources[s.key] = f"env:{name}"
                break
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


def save_setting(path: Path, key: str, value: Any) -> Any:
    """Set one key in config.toml, keeping the user's other keys and tables; return the value as stored.

    The file is rewritten atomically under a lock file beside it, so concurrent writers (the app and
    ``rebase-tui config``) never tear it or lose each other's keys. ConfigError for an unknown key, a value
    of the wrong type, or a config.toml that is not valid (it is left as it is).
    """
    setting = SETTINGS_BY_KEY.get(key)
    if setting is None:
        raise ConfigError(f"unknown setting {key}", fix="known settings: " + ", ".join(SETTINGS_BY_KEY))
    converted = _convert(setting, value, "command line")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        read_config_file(path)  # validates what is there: never rewrite a file the user must fix first
        tables: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        section, name = key.split(".", 1)
        tables.setdefault(section, {})[name] = converted
        _write_atomically(path, _toml_text(tables))
    return converted


def _toml_text(tables: Mapping[str, Any]) -> str:
    lines = ["# rebase-tui workspace settings (see README: Configuration)"]

    def table(title: str, items: Mapping[str, Any]) -> None:
        lines.append(f"\n[{title}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sorted(items.items())
                     if not isinstance(v, dict))
        for k, v in sorted(items.items()):
            if isinstance(v, dict):
                table(f"{title}.{_toml_key(k)}", v)

    for section in sorted(tables):
        table(section, tables[section])
    return "\n".join(lines) + "\n"


def _toml_key(name: str) -> str:
    bare = name.replace("_", "").replace("-", "").isalnum()
    return name if bare else _toml_value(name)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``<path>.lock`` (advisory; where the platform has no flock, none)."""
    try:
        import fcntl
    except ImportError:  # Windows: the atomic rename still keeps the file whole
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file in the same folder, flush it to disk, rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
