"""A run's configuration: the hyper-parameters chosen (:class:`RunSettings`) and what freezing the run added
(:class:`RunConfig`: id, task context, data hash, ``total_steps``), stored once as ``run.json``.

``run.json`` is one flat JSON object: the settings' keys, then ``id``, ``task``, ``instruction``,
``examples``, ``data``, ``total_steps`` and ``created``. Reading it ignores keys it does not know and fills
keys an older writer left out with their defaults, so every run directory ever written still loads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.errors import EngineError

RUN_FILE = "run.json"
METHODS = ("auto", "lora", "full")


@dataclass(frozen=True, slots=True)
class LoraSettings:
    """LoRA's rank, scaling and dropout (used when the method is, or resolves to, ``lora``)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What the user chose for a run (CLI flags, the Train screen's form, the workspace's ``student.*``).

    Construction validates: a RunSettings always describes a run that can be created.
    """

    student: str
    method: str = "auto"
    epochs: float = 3.0
    max_steps: int | None = None
    lr: float = 2e-4
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 1024
    eval_every: int | None = None
    device: str = "auto"
    seed: int = 0
    format: str = "auto"
    threads: int = 0
    trust_remote_code: bool = False
    gradient_checkpointing: bool = False
    group_by_length: bool = True
    eval_fraction: float = 0.1
    lora: LoraSettings = field(default_factory=LoraSettings)
    max_memory_mb: int | None = None
    """Address space the worker may add past its loaded model (Linux); None: no cap."""

    def __post_init__(self) -> None:
        if not self.student:
            raise EngineError("no student model is set",
                              fix="pass --student MODEL (a local folder or a cached Hugging Face name), or "
                                  "`rebase-tui config student.model MODEL`")
        for key in ("batch_size", "grad_accum", "max_length"):
            if int(getattr(self, key)) < 1:
                flag = key.replace("_", "-")
                raise EngineError(f"{flag} must be at least 1", fix=f"pass --{flag} N")
        if float(self.lr) <= 0 or float(self.epochs) <= 0:
            raise EngineError("--lr and --epochs must be positive", fix="pass positive values")
        if self.method not in METHODS:
            raise EngineError(f"unknown training method {self.method!r}", fix="use lora, full (or auto)")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.max_memory_mb is None:  # written only when asked, as before the field existed
            del out["max_memory_mb"]
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RunSettings:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in obj.items() if k in known}
        if isinstance(values.get("lora"), dict):
            lora_keys = {f.name for f in fields(LoraSettings)}
            values["lora"] = LoraSettings(**{k: v for k, v in values["lora"].items() if k in lora_keys})
        return cls(**values)


def settings_from_config(config: Any, **overrides: Any) -> RunSettings:
    """Run settings: the workspace's ``student.*`` settings, then non-None ``overrides`` (CLI/TUI values).

    The method comes from the workspace only when set there explicitly; its default is ``auto`` (full
    fine-tuning for tiny students, LoRA otherwise).
    """
    values: dict[str, Any] = {
        "student": config["student.model"], "epochs": config["student.epochs"], "lr": config["student.lr"],
        "batch_size": config["student.batch_size"], "grad_accum": config["student.grad_accum"],
        "max_length": config["student.max_length"], "device": config["student.device"],
    }
    if config.sources.get("student.method", "default") != "default":
        values["method"] = config["student.method"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return RunSettings(**values)


@dataclass(frozen=True, slots=True)
class DataInfo:
    """The frozen data of a run: where it came from, the hash of both splits, and their sizes."""

    source: str
    sha256: str
    train: int
    eval: int


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything the worker needs, written once by the parent before launch."""

    id: str
    settings: RunSettings
    data: DataInfo
    total_steps: int
    task: str | None = None
    instruction: str = ""
    examples: tuple[tuple[str, str], ...] = ()
    """The task's demonstrations ``(input, output)``, part of every prompt."""
    created: float = 0.0

    @property
    def eval_every(self) -> int:
        """Steps between validation losses (and checkpoints): the setting, else five times per run."""
        return self.settings.eval_every or max(1, self.total_steps // 5)

    def to_json(self) -> dict[str, Any]:
        return {**self.settings.to_json(), "id": self.id, "task": self.task, "instruction": self.instruction,
                "examples": [{"input": i, "output": o} for i, o in self.examples], "data": asdict(self.data),
                "total_steps": self.total_steps, "created": self.created}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RunConfig:
        data = obj.get("data") or {}
        return cls(id=obj["id"], settings=RunSettings.from_json(obj),
                   data=DataInfo(source=data.get("source", ""), sha256=data.get("sha256", ""),
                                 train=int(data.get("train", 0)), eval=int(data.get("eval", 0))),
                   total_steps=int(obj["total_steps"]), task=obj.get("task"),
                   instruction=obj.get("instruction") or "",
                   examples=tuple((e["input"], e["output"]) for e in obj.get("examples") or []),
                   created=float(obj.get("created") or 0.0))


def read_config(run_dir: Path) -> RunConfig:
    """The run's ``run.json``."""
    return RunConfig.from_json(json.loads((Path(run_dir) / RUN_FILE).read_text(encoding="utf-8")))


def write_config(run_dir: Path, cfg: RunConfig) -> None:
    (Path(run_dir) / RUN_FILE).write_text(json.dumps(cfg.to_json(), indent=2, ensure_ascii=False),
                                          encoding="utf-8")
