"""A run's configuration: the hyper-parameters chosen (:class:`RunSettings`) and what freezing the run added
(:class:`RunConfig`: id, task context, data hash, ``total_steps``), stored once as ``run.json``.

``run.json`` is one flat JSON object: the settings' keys, then ``id``, ``task``, ``instruction``,
``examples``, ``data``, ``total_steps``, ``created`` and, for a run that continues another, ``init_from``. Reading it ignores keys it does not know and fills
keys an older writer left out with the values that writer's runs used (the defaults; a warm-up of 3 % of the
steps), so every run directory ever written still loads and shows how it was trained.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.student.recipes import get_recipe
from engine.student.schedule import SCHEDULERS, default_warmup

RUN_FILE = "run.json"
METHODS = ("auto", "lora", "full")
# Override keys that set a field of RunSettings.lora (flags and form fields are flat).
LORA_KEYS = {"lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout"}


@dataclass(frozen=True, slots=True)
class LoraSettings:
    """LoRA's rank, scaling and dropout (used when the method is, or resolves to, ``lora``)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05

    def __post_init__(self) -> None:
        if int(self.r) < 1 or not float(self.alpha) > 0:
            raise EngineError(f"LoRA rank {self.r} and alpha {self.alpha} must be positive",
                              fix="pass --lora-r N and --lora-alpha N of at least 1")
        if not 0 <= float(self.dropout) < 1:
            raise EngineError(f"LoRA dropout {self.dropout} is out of range", fix="pass --lora-dropout in [0, 1)")


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
    recipe: str = "default"
    """The recipe the settings started from (:mod:`engine.student.recipes`), recorded for ``runs`` (checked
    where settings are made, :func:`settings_from_config`, not when a run is read back)."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay, on matrices and embeddings (never on biases and norms)."""
    warmup_steps: int | None = None
    """Steps of linear warm-up to ``lr``; None: 3 % of the run (resolved when the run is created)."""
    scheduler: str = "cosine"
    """After warm-up: ``cosine`` decay to 10 % of ``lr``, or ``linear`` decay towards 0."""
    load_in_4bit: bool = False
    """Base weights quantized to 4 bits (NF4, QLoRA); LoRA only, needs a CUDA GPU and bitsandbytes."""

    def __post_init__(self) -> None:
        if not self.student:
            raise EngineError("no student model is set",
                              fix="pass --student MODEL (a local folder or a cached Hugging Face name), or "
                                  "`rebase-tui config student.model MODEL`")
        for key in ("batch_size", "grad_accum", "max_length"):
            if int(getattr(self, key)) < 1:
                flag = key.replace("_", "-")
                raise EngineError(f"{flag} must be at least 1", fix=f"pass --{flag} N")
        if not _positive(self.lr) or not _positive(self.epochs):
            raise EngineError("--lr and --epochs must be positive", fix="pass positive values")
        if self.method not in METHODS:
            raise EngineError(f"unknown training method {self.method!r}", fix="use lora, full (or auto)")
        if not (math.isfinite(float(self.weight_decay)) and float(self.weight_decay) >= 0):
            raise EngineError(f"weight decay {self.weight_decay} must be a number of at least 0",
                              fix="pass --weight-decay 0.01 (0 turns it off)")
        if self.warmup_steps is not None and int(self.warmup_steps) < 0:
            raise EngineError(f"warm-up steps {self.warmup_steps} must be at least 0", fix="pass --warmup-steps N")
        if self.scheduler not in SCHEDULERS:
            raise EngineError(f"unknown learning-rate schedule {self.scheduler!r}",
                              fix=f"use --scheduler {' or '.join(SCHEDULERS)}")
        if not 0 <= float(self.eval_fraction) < 1:
            raise EngineError(f"eval fraction {self.eval_fraction} is out of range",
                              fix="pass --eval-fraction in [0, 1) (0 trains on every example)")
        if self.load_in_4bit and self.method == "full":
            raise EngineError("4-bit base weights cannot be fully fine-tuned (only LoRA adapters train on them)",
                              fix="use --lora with --load-in-4bit, or drop --load-in-4bit")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.max_memory_mb is None:  # written only when asked, as before the field existed
            del out["max_memory_mb"]
        return out

    def describe(self, method: str | None = None) -> str:
        """The hyper-parameters on one line (``runs`` lists it): ``method`` is the resolved one when known."""
        method = method or self.method
        parts = [f"{self.recipe}:" if self.recipe != "default" else "", method]
        if method != "full":
            parts.append(f"r{self.lora.r}/a{self.lora.alpha}/d{self.lora.dropout:g}")
        warmup = "" if self.warmup_steps is None else f" ({self.warmup_steps} warm-up)"
        parts += [f"lr {self.lr:g} {self.scheduler}{warmup}", f"wd {self.weight_decay:g}",
                  f"batch {self.batch_size}x{self.grad_accum}", f"len {self.max_length}"]
        if self.load_in_4bit:
            parts.append("4-bit")
        return " ".join(p for p in parts if p)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RunSettings:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in obj.items() if k in known}
        if isinstance(values.get("lora"), dict):
            lora_keys = {f.name for f in fields(LoraSettings)}
            values["lora"] = LoraSettings(**{k: v for k, v in values["lora"].items() if k in lora_keys})
        return cls(**values)


def _positive(x: float) -> bool:
    return math.isfinite(float(x)) and float(x) > 0


def recipe_values(config: Any, recipe: str | None = None) -> dict[str, Any]:
    """The settings a run starts from before the user's own choices, flat (LoRA's as ``lora_r``,
    ``lora_alpha``, ``lora_dropout``): :class:`RunSettings`' defaults, then the workspace's ``student.*``
    settings, then the recipe's. What the Train form shows for a recipe; ``load_in_4bit`` is left out (a
    recipe decides it by the device, see :func:`settings_from_config`).

    The method comes from the workspace only when set there explicitly; its default is ``auto`` (full
    fine-tuning for tiny students, LoRA otherwise).
    """
    chosen = get_recipe(recipe)
    values: dict[str, Any] = {f.name: f.default for f in fields(RunSettings)
                              if f.default is not MISSING and f.name != "load_in_4bit"}
    values.update({flat: getattr(LoraSettings(), key) for flat, key in LORA_KEYS.items()})
    values.update({
        "student": config["student.model"], "epochs": config["student.epochs"], "lr": config["student.lr"],
        "batch_size": config["student.batch_size"], "grad_accum": config["student.grad_accum"],
        "max_length": config["student.max_length"], "device": config["student.device"],
    })
    if config.sources.get("student.method", "default") != "default":
        values["method"] = config["student.method"]
    values.update(chosen.values)
    values["recipe"] = chosen.name
    return values


def settings_from_config(config: Any, **overrides: Any) -> RunSettings:
    """Run settings: :func:`recipe_values` for ``overrides["recipe"]`` (default ``default``), then the
    non-None ``overrides`` (CLI flags, form fields): explicit values win over the recipe, the recipe over the
    workspace. LoRA's settings are given flat (``lora_r``, ``lora_alpha``, ``lora_dropout``). A recipe that
    wants 4-bit weights on CUDA gets them when the device is (or ``auto`` finds) a CUDA GPU, unless
    ``load_in_4bit`` is given.
    """
    values = recipe_values(config, overrides.get("recipe"))
    values.update({k: v for k, v in overrides.items() if v is not None and k != "recipe"})
    values["lora"] = LoraSettings(**{key: values.pop(flat) for flat, key in LORA_KEYS.items()})
    if get_recipe(values["recipe"]).load_in_4bit_on_cuda and overrides.get("load_in_4bit") is None:
        values["load_in_4bit"] = _trains_on_cuda(str(values.get("device") or "auto"))
    return RunSettings(**values)


def _trains_on_cuda(device: str) -> bool:
    """Whether a run on ``device`` trains on a CUDA GPU (``auto``: when torch sees one)."""
    if device.startswith("cuda"):
        return True
    if device != "auto":
        return False
    import torch

    return bool(torch.cuda.is_available())


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
    init_from: str | None = None
    """The folder of the weights training starts from (another run's final model: a LoRA adapter or full
    weights) instead of the student's own; None for a run from the student."""

    @property
    def eval_every(self) -> int:
        """Steps between validation losses (and checkpoints): the setting, else five times per run."""
        return self.settings.eval_every or max(1, self.total_steps // 5)

    def to_json(self) -> dict[str, Any]:
        return {**self.settings.to_json(), "id": self.id, "task": self.task, "instruction": self.instruction,
                "examples": [{"input": i, "output": o} for i, o in self.examples], "data": asdict(self.data),
                "total_steps": self.total_steps, "created": self.created,
                **({"init_from": self.init_from} if self.init_from else {})}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RunConfig:
        data = obj.get("data") or {}
        settings = RunSettings.from_json(obj)
        if settings.warmup_steps is None:  # written before warm-up was a setting: the share it used
            settings = replace(settings, warmup_steps=default_warmup(int(obj["total_steps"])))
        return cls(id=obj["id"], settings=settings,
                   data=DataInfo(source=data.get("source", ""), sha256=data.get("sha256", ""),
                                 train=int(data.get("train", 0)), eval=int(data.get("eval", 0))),
                   total_steps=int(obj["total_steps"]), task=obj.get("task"),
                   instruction=obj.get("instruction") or "",
                   examples=tuple((e["input"], e["output"]) for e in obj.get("examples") or []),
                   created=float(obj.get("created") or 0.0), init_from=obj.get("init_from") or None)


def trust_notice(cfg: RunConfig) -> str | None:
    """The line a front end shows when it loads a run that runs its student's own code (None otherwise): the
    choice was made when the run was created and is read back from the workspace, so it is said each time."""
    if not cfg.settings.trust_remote_code:
        return None
    return (f"note: run {cfg.id} was created with --trust-remote-code, so loading {cfg.settings.student} "
            "runs that model's own Python code")


def read_config(run_dir: Path) -> RunConfig:
    """The run's ``run.json``."""
    return RunConfig.from_json(json.loads((Path(run_dir) / RUN_FILE).read_text(encoding="utf-8")))


def write_config(run_dir: Path, cfg: RunConfig) -> None:
    (Path(run_dir) / RUN_FILE).write_text(json.dumps(cfg.to_json(), indent=2, ensure_ascii=False),
                                          encoding="utf-8")
