"""The training loop: one readable function in the manner of nanoGPT, yielding typed events.

``train(run_dir)`` reads only the run directory (``run.json``, ``train.jsonl``, ``eval.jsonl``), trains the
student (LoRA via peft, or full fine-tuning), and yields :class:`TrainEvent` objects — the same objects the
worker (:mod:`engine.student.worker`) writes as JSON lines, and :mod:`engine.student.supervise` reads back. Tests
train in-process with this generator; the CLI and the TUI run it in a child process.

Checkpoints (``checkpoints/step-NNNNNN/``) hold weights as safetensors, optimizer state through
``torch.save`` (tensors and numbers only, loaded with ``weights_only=True``) and counters as JSON. Resume is a
branch, not a subsystem: load the newest checkpoint, continue at the next step, end at the same final step
(the data order of every epoch is a pure function of the seed).

Event protocol (one JSON object per line; ``type`` plus fields, ``time`` is Unix seconds):

* ``started``: run, start_step, total_steps, method, device, dtype, format, parameters, trainable,
  train_examples, eval_examples, resumed
* ``step``: step, total_steps, epoch, loss (mean since the previous step event), lr, grad_norm, tokens,
  tokens_per_s, examples_per_s, eta_s, elapsed_s, cpu_s (CPU seconds of this process)
* ``eval``: step, eval_loss
* ``checkpoint``: step, path
* ``finished`` / ``stopped`` / ``failed``: step, reason, message, fix, hints, train_loss, eval_loss, elapsed_s
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.events import Event
from engine.rate import RateMeter

log = logging.getLogger(__name__)

# LoRA target modules per architecture (attention + MLP projections); others fall back to peft's table,
# then to every linear layer.
LORA_TARGETS: dict[str, list[str]] = {
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "gptj": ["q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    "bloom": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "falcon": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"],
}
_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
for _name in ("llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3",
              "olmo", "olmo2", "smollm3", "granite", "cohere", "stablelm"):
    LORA_TARGETS[_name] = _LLAMA_LIKE
FULL_FINETUNE_MAX_PARAMS = 50_000_000
HINTS_MEMORY = ["lower --batch-size (raise --grad-accum to keep the effective batch)", "use --lora instead of --full",
                "add --gradient-checkpointing", "lower --max-length"]


# -- events ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrainEvent(Event):
    """Base of training events; ``type`` is the protocol name, ``time`` when it happened."""

    time: float = field(default_factory=time.time, kw_only=True)
    type = "event"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}


@dataclass(frozen=True, slots=True)
class RunStarted(TrainEvent):
    run: str
    start_step: int
    total_steps: int
    method: str
    device: str
    dtype: str
    format: str
    parameters: int
    trainable: int
    train_examples: int
    eval_examples: int
    resumed: bool = False
    truncated: int = 0
    type = "started"


@dataclass(frozen=True, slots=True)
class StepMetrics(TrainEvent):
    step: int
    total_steps: int
    epoch: float
    loss: float
    lr: float
    grad_norm: float
    tokens: int
    tokens_per_s: float | None
    examples_per_s: float | None
    eta_s: float | None
    elapsed_s: float
    cpu_s: float = 0.0
    type = "step"


@dataclass(frozen=True, slots=True)
class EvalMetrics(TrainEvent):
    step: int
    eval_loss: float
    type = "eval"


@dataclass(frozen=True, slots=True)
class CheckpointSaved(TrainEvent):
    step: int
    path: str
    type = "checkpoint"


@dataclass(frozen=True, slots=True)
class RunEnded(TrainEvent):
    """The last event of a worker's life: ``status`` is finished, stopped or failed."""

    status: str
    step: int
    reason: str = ""
    message: str = ""
    fix: str = ""
    hints: list[str] = field(default_factory=list)
    train_loss: float | None = None
    eval_loss: float | None = None
    elapsed_s: float = 0.0

    @property
    def type(self) -> str:  # type: ignore[override]
        return self.status

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "type": self.status}


EVENT_TYPES: dict[str, type[TrainEvent]] = {
    "started": RunStarted, "step": StepMetrics, "eval": EvalMetrics, "checkpoint": CheckpointSaved,
}


def event_from_json(obj: dict[str, Any]) -> TrainEvent:
    """The dataclass of one protocol line (unknown keys are ignored, so old readers survive new fields)."""
    kind = obj.get("type")
    if kind in ("finished", "stopped", "failed"):
        cls: type[TrainEvent] = RunEnded
        obj = {**obj, "status": kind}
    elif kind in EVENT_TYPES:
        cls = EVENT_TYPES[kind]
    else:
        raise ValueError(f"unknown event type {kind!r}")
    names = {f for f in cls.__dataclass_fields__}
    return cls(**{k: v for k, v in obj.items() if k in names})


class TrainingFault(EngineError):
    """A run cannot go on: ``reason`` is oom, nan, model, data or config; ``hints`` say what to try."""

    def __init__(self, reason: str, message: str, fix: str | None = None, hints: list[str] | None = None):
        super().__init__(message, fix)
        self.reason = reason
        self.hints = hints or []


# -- pure helpers ---------------------------------------------------------------------------
def get_lr(step: int, total: int, lr: float, warmup: int, min_ratio: float = 0.1) -> float:
    """Linear warmup to ``lr`` over ``warmup`` steps, then cosine decay to ``min_ratio * lr`` (1-based step)."""
    if warmup and step <= warmup:
        return lr * step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[list[int]]:
    """The micro-batches of one epoch: a seeded shuffle; with grouping, similar lengths share a batch.

    Grouping sorts windows of ``batch_size * 32`` shuffled examples by length, cuts batches, then shuffles
    the batches (like transformers' ``group_by_length``): far less padding, still a random order.
    """
    import random

    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not group_by_length:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    window = batch_size * 32
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w:w + window], key=lambda i: -lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int):
    """Right-pad a micro-batch: ``(input_ids, attention_mask, labels)`` tensors (labels -100 on padding)."""
    import torch

    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for row, (x, y) in enumerate(examples):
        ids[row, :len(x)] = torch.tensor(x)
        mask[row, :len(x)] = 1
        labels[row, :len(y)] = torch.tensor(y)
    return ids, mask, labels


def padding_stats(lengths: list[int], batches: list[list[int]]) -> float:
    """Fraction of real (non-padding) tokens over all padded batches."""
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    return real / padded if padded else 1.0


# -- model loading --------------------------------------------------------------------------
def resolve_device(requested: str) -> str:
    """``auto`` → cuda when available, else cpu; ``cuda`` without a GPU is a clear error."""
    import torch

    if requested in ("auto", "", None):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingFault("config", "--device cuda was asked but torch sees no GPU",
                            fix="use --device cpu or auto, or install a CUDA build of torch")
    if requested not in ("cpu",) and not requested.startswith("cuda"):
        raise TrainingFault("config", f"unknown device {requested!r}", fix="use auto, cpu or cuda")
    return requested


def check_student(student: str, trust_remote_code: bool = False) -> None:
    """Fail early, with a fix, when the student is neither a local model folder nor in the local HF cache."""
    path = Path(student).expanduser()
    if path.exists():
        if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
            raise TrainingFault("model", f"student {student} is not a Hugging Face model folder (no config.json)",
                                fix="point --student at a folder saved with save_pretrained")
        return
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(student, "config.json")
    except Exception:  # noqa: BLE001 - an invalid repo id is just "not found"
        found = None
    if not isinstance(found, str):
        raise TrainingFault("model", f"student model {student!r} is neither a local folder nor in the "
                            "Hugging Face cache (this machine is offline)",
                            fix="download it once where there is network (huggingface-cli download NAME) "
                                "or pass a local folder to --student")


def load_tokenizer(student: str, trust_remote_code: bool = False):
    """The student's tokenizer, with a pad token (EOS when it has none)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(student, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - any load failure is reported with its cause
        raise _model_fault(student, exc) from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    if tok.eos_token_id is None:
        raise TrainingFault("model", f"the tokenizer of {student} has no EOS token",
                            fix="use a causal LM whose tokenizer defines eos_token")
    return tok


def _model_fault(student: str, exc: Exception) -> TrainingFault:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    if "trust_remote_code" in text:
        return TrainingFault("model", f"student {student} needs its own code ({text})",
                             fix="re-run with --trust-remote-code if you trust that model's code")
    return TrainingFault("model", f"cannot load student {student} as a causal language model ({text})",
                         fix="use a Hugging Face causal LM (GPT-2, Llama, Qwen, SmolLM...) saved locally")


def load_model(student: str, device: str, *, method: str, trust_remote_code: bool = False,
               adapter: Path | None = None, full_weights: Path | None = None, trainable: bool = True,
               gradient_checkpointing: bool = False, lora: dict[str, Any] | None = None):
    """The model for training or inference: base weights (or a full checkpoint), plus a LoRA adapter.

    Returns ``(model, dtype_name)``. On CUDA with bf16 support, LoRA bases load in bf16.
    """
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.float32
    if device.startswith("cuda") and torch.cuda.is_bf16_supported() and method == "lora":
        dtype = torch.bfloat16
    source = str(full_weights) if full_weights is not None else student
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001
        raise _model_fault(student, exc) from None
    model.to(device)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if method == "lora":
        from peft import LoraConfig, PeftModel, get_peft_model

        if gradient_checkpointing:
            model.enable_input_require_grads()
        if adapter is not None:
            model = PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
        else:
            opts = lora or {}
            targets = LORA_TARGETS.get(model.config.model_type)
            if targets is None:
                from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as peft_map

                targets = peft_map.get(model.config.model_type, "all-linear")
            present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
            if isinstance(targets, list):
                targets = [t for t in targets if t in present] or "all-linear"
            cfg = LoraConfig(r=int(opts.get("r", 16)), lora_alpha=int(opts.get("alpha", 32)),
                             lora_dropout=float(opts.get("dropout", 0.05)), target_modules=targets,
                             fan_in_fan_out=model.config.model_type == "gpt2",  # GPT-2's Conv1D layers
                             task_type="CAUSAL_LM")
            model = get_peft_model(model, cfg)
    return model, str(dtype).replace("torch.", "")


def choose_method(requested: str | None, n_params: int) -> str:
    """``lora``/``full`` as asked; ``auto`` → full for tiny models (< 50 M parameters), LoRA otherwise."""
    if requested in ("lora", "full"):
        return requested
    return "full" if n_params < FULL_FINETUNE_MAX_PARAMS else "lora"


def count_parameters(student: str, trust_remote_code: bool = False) -> int:
    """Parameters of the student, from its config (no weights loaded)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(student, trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001
        raise _model_fault(student, exc) from None
    return sum(p.numel() for p in model.parameters())


# -- checkpoints ----------------------------------------------------------------------------
def checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of the run, oldest first (a half-written one has no state.json)."""
    root = Path(run_dir) / "checkpoints"
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith("step-") and (p / "state.json").exists())


def save_checkpoint(run_dir: Path, model, optimizer, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``checkpoints/step-NNNNNN`` atomically (temp folder renamed); keep the newest ``keep``."""
    import torch

    root = Path(run_dir) / "checkpoints"
    root.mkdir(exist_ok=True)
    final = root / f"step-{state['step']:06d}"
    tmp = root / f".tmp-{state['step']:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def final_model_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "model"


def _save_final(run_dir: Path, model, tokenizer, fmt, cfg: dict[str, Any], method: str) -> Path:
    out = final_model_dir(run_dir)
    tmp = Path(run_dir) / ".model-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "format.json").write_text(json.dumps({**fmt.to_json(), "method": method, "student": cfg["student"],
                                                 "max_length": cfg["max_length"]}, indent=2,
                                                ensure_ascii=False), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


# -- the loop -------------------------------------------------------------------------------
def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text
                                              or "not enough memory" in text)


def train(run_dir: str | Path, stop_requested: Callable[[], bool] | None = None) -> Iterator[TrainEvent]:
    """Train (or resume) the run in ``run_dir``, yielding events; ends with one :class:`RunEnded`.

    ``stop_requested`` is polled at every step boundary (the worker sets it from SIGINT): when it returns
    True the loop saves a checkpoint and ends ``stopped``. Closing the generator also saves a checkpoint.
    Expected faults (missing or incompatible model, out of memory, NaN loss) end ``failed`` with a message,
    a fix and hints; finished steps stay in the last checkpoint.
    """
    run_dir = Path(run_dir)
    cfg = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    t_start = time.monotonic()
    state: dict[str, Any] = {"step": 0, "elapsed_s": 0.0, "tokens": 0, "train_loss": None, "eval_loss": None}
    ctx: dict[str, Any] = {}
    try:
        yield from _train(run_dir, cfg, state, ctx, t_start, stop_requested or (lambda: False))
    except TrainingFault as exc:
        yield _ended("failed", state, t_start, exc.reason, exc.message, exc.fix or "", exc.hints)
    except EngineError as exc:
        yield _ended("failed", state, t_start, "config", exc.message, exc.fix or "", [])
    except Exception as exc:  # noqa: BLE001 - out of memory is expected; anything else propagates
        if not _is_oom(exc):
            raise
        ctx.pop("model", None), ctx.pop("optimizer", None)
        if ctx.get("rlimit") is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, ctx.pop("rlimit"))
        _free_memory()
        yield _ended("failed", state, t_start, "oom",
                     f"out of memory at step {state['step'] + 1} ({type(exc).__name__})",
                     "resume is possible from the last checkpoint; or start a new run with smaller settings",
                     HINTS_MEMORY)
    except GeneratorExit:
        if ctx.get("dirty"):
            save_checkpoint(run_dir, ctx["model"], ctx["optimizer"], _state_json(state, t_start))
        raise
    finally:
        if ctx.get("rlimit") is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, ctx["rlimit"])


def _cap_memory(extra_mb: int) -> tuple[int, int] | None:
    """Cap this process's address space at its current size + ``extra_mb``: an allocation past the budget
    then fails as an out-of-memory error (a recorded ``failed`` run) instead of summoning the system's OOM
    killer on a shared machine. Returns the previous limits (restored when training ends). Linux only."""
    try:
        import resource

        size_kb = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                       if line.startswith("VmSize:"))
    except (ImportError, OSError, StopIteration):
        log.warning("max_memory_mb is only supported on Linux; ignored")
        return None
    old = resource.getrlimit(resource.RLIMIT_AS)
    limit = size_kb * 1024 + extra_mb * 1024 * 1024
    if old[1] != resource.RLIM_INFINITY:
        limit = min(limit, old[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, old[1]))
    return old


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _state_json(state: dict[str, Any], t_start: float) -> dict[str, Any]:
    return {**state, "elapsed_s": state["elapsed_s"] + (time.monotonic() - t_start)}


def _ended(status: str, state: dict[str, Any], t_start: float, reason: str = "", message: str = "",
           fix: str = "", hints: list[str] | None = None) -> RunEnded:
    return RunEnded(status=status, step=state["step"], reason=reason, message=message, fix=fix,
                    hints=list(hints or []), train_loss=state.get("train_loss"), eval_loss=state.get("eval_loss"),
                    elapsed_s=round(state["elapsed_s"] + time.monotonic() - t_start, 3))


def _train(run_dir: Path, cfg: dict[str, Any], state: dict[str, Any], ctx: dict[str, Any], t_start: float,
           stop_requested: Callable[[], bool]) -> Iterator[TrainEvent]:
    import torch

    from engine.student.formatting import PromptFormat, choose_kind, encode
    from engine.student.training_data import read_jsonl

    total = int(cfg["total_steps"])
    done = checkpoints(run_dir)
    if done:
        saved = json.loads((done[-1] / "state.json").read_text(encoding="utf-8"))
        state.update(saved)
        if state["step"] >= total and (final_model_dir(run_dir) / "format.json").exists():
            raise TrainingFault("config", f"run {cfg['id']} already finished ({total} steps)",
                                fix="start a new run, or evaluate this one with `rebase-tui eval`")
    # -- setup: device, tokenizer, format, data
    device = resolve_device(cfg.get("device", "auto"))
    student = cfg["student"]
    trc = bool(cfg.get("trust_remote_code"))
    check_student(student, trc)
    torch.manual_seed(int(cfg.get("seed", 0)))
    tokenizer = load_tokenizer(student, trc)
    kind = choose_kind(tokenizer, cfg.get("format", "auto"))
    fmt = PromptFormat(kind, cfg.get("instruction", ""),
                       tuple((e["input"], e["output"]) for e in cfg.get("examples", [])))
    (run_dir / "format.json").write_text(json.dumps(fmt.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    max_length = int(cfg["max_length"])
    train_rows = read_jsonl(run_dir / "train.jsonl")
    eval_rows = read_jsonl(run_dir / "eval.jsonl")
    train_data = [encode(fmt, tokenizer, r["input"], r["output"], max_length) for r in train_rows]
    eval_data = [encode(fmt, tokenizer, r["input"], r["output"], max_length) for r in eval_rows]
    lengths = [len(x) for x, _ in train_data]
    n_cut = sum(1 for r, (x, _) in zip(train_rows, train_data, strict=True)
                if len(x) >= max_length and _would_exceed(fmt, tokenizer, r, max_length))
    # -- model
    method = cfg.get("method") or "auto"
    if method == "auto":
        method = choose_method("auto", count_parameters(student, trc))
    latest = done[-1] if done else None
    model, dtype_name = load_model(
        student, device, method=method, trust_remote_code=trc,
        adapter=latest if latest is not None and method == "lora" else None,
        full_weights=latest if latest is not None and method == "full" else None,
        gradient_checkpointing=bool(cfg.get("gradient_checkpointing")), lora=cfg.get("lora"))
    if cfg.get("max_memory_mb"):
        ctx["rlimit"] = _cap_memory(int(cfg["max_memory_mb"]))
    params = [p for p in model.parameters() if p.requires_grad]
    n_total = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in params)
    optimizer = _adamw(params, float(cfg["lr"]), float(cfg.get("weight_decay", 0.0)))
    if latest is not None and (latest / "optimizer.pt").exists():
        optimizer.load_state_dict(torch.load(latest / "optimizer.pt", map_location=device, weights_only=True))
    ctx.update(model=model, optimizer=optimizer, dirty=False)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if device.startswith("cuda") and torch.cuda.is_bf16_supported() else None)
    yield RunStarted(run=cfg["id"], start_step=state["step"], total_steps=total, method=method, device=device,
                     dtype=dtype_name, format=kind, parameters=n_total, trainable=n_train,
                     train_examples=len(train_data), eval_examples=len(eval_data), resumed=latest is not None,
                     truncated=n_cut)

    bs, accum = int(cfg["batch_size"]), int(cfg["grad_accum"])
    seed, group = int(cfg.get("seed", 0)), bool(cfg.get("group_by_length", True))
    warmup = int(cfg.get("warmup_steps", max(1, round(0.03 * total))))
    eval_every = int(cfg.get("eval_every") or max(1, total // 5))
    ckpt_every = int(cfg.get("checkpoint_every") or eval_every)
    keep = int(cfg.get("keep_checkpoints", 2))
    pad_id = tokenizer.pad_token_id
    mb_per_epoch = math.ceil(len(train_data) / bs)
    batch_cache: dict[int, list[list[int]]] = {}

    def micro_batch(m: int) -> list[int]:
        epoch = m // mb_per_epoch
        if epoch not in batch_cache:
            batch_cache.clear()
            batch_cache[epoch] = epoch_batches(lengths, bs, seed, epoch, group)
        return batch_cache[epoch][m % mb_per_epoch]

    def evaluate_loss() -> float | None:
        if not eval_data:
            return None
        model.eval()
        loss_sum, count = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(eval_data), bs):
                ids, mask, labels = (t.to(device) for t in collate(eval_data[i:i + bs], pad_id))
                n = int((labels[:, 1:] != -100).sum())
                if n == 0:
                    continue
                if autocast is not None:
                    with autocast:
                        out = model(input_ids=ids, attention_mask=mask, labels=labels)
                else:
                    out = model(input_ids=ids, attention_mask=mask, labels=labels)
                loss_sum += float(out.loss) * n
                count += n
        model.train()
        return loss_sum / count if count else None

    model.train()
    meter_tok, meter_ex, meter_step = RateMeter(), RateMeter(), RateMeter()
    examples_seen = 0
    meter_tok.update(0), meter_ex.update(0), meter_step.update(state["step"])
    losses: list[float] = []
    last_emit = 0.0
    while state["step"] < total:
        if stop_requested():
            if ctx["dirty"]:
                path = save_checkpoint(run_dir, model, optimizer, _state_json(state, t_start), keep)
                ctx["dirty"] = False
                yield CheckpointSaved(step=state["step"], path=str(path.relative_to(run_dir)))
            yield _ended("stopped", state, t_start, "stop requested", f"stopped at step {state['step']} of {total}",
                         f"resume with `rebase-tui train --resume {cfg['id']}`")
            return
        step = state["step"] + 1
        lr = get_lr(step, total, float(cfg["lr"]), warmup)
        for group_ in optimizer.param_groups:
            group_["lr"] = lr
        step_loss, step_tokens = 0.0, 0
        for j in range(accum):
            idx = micro_batch((step - 1) * accum + j)
            ids, mask, labels = (t.to(device) for t in collate([train_data[i] for i in idx], pad_id))
            if autocast is not None:
                with autocast:
                    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            else:
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            if not torch.isfinite(loss):
                raise TrainingFault("nan", f"the loss became {float(loss.detach())} at step {step}",
                                    fix="start a new run with a lower --lr",
                                    hints=["lower --lr (e.g. by 10x)", "use --lora", "check the data for empty "
                                           "outputs", "fp32 instead of bf16 (--device cpu to confirm)"])
            (loss / accum).backward()
            step_loss += float(loss.detach()) / accum
            step_tokens += int(mask.sum())
            examples_seen += len(idx)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, float(cfg.get("max_grad_norm", 1.0))))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] = step
        state["tokens"] += step_tokens
        ctx["dirty"] = True
        losses.append(step_loss)
        now = time.monotonic()
        if now - last_emit >= 0.25 or step == total or step % eval_every == 0:
            last_emit = now
            tps = meter_tok.update(state["tokens"])
            eps = meter_ex.update(examples_seen)
            meter_step.update(step)
            state["train_loss"] = sum(losses) / len(losses)
            losses.clear()
            elapsed = state["elapsed_s"] + now - t_start
            yield StepMetrics(step=step, total_steps=total, epoch=round(step * accum / mb_per_epoch, 4),
                              loss=round(state["train_loss"], 6), lr=lr, grad_norm=round(grad_norm, 6),
                              tokens=state["tokens"], tokens_per_s=_r(tps if tps else step_tokens / max(1e-9, elapsed)),
                              examples_per_s=_r(eps), eta_s=_r(meter_step.eta(step, total)),
                              elapsed_s=round(elapsed, 3), cpu_s=round(time.process_time(), 3))
        if step % eval_every == 0 or step == total:
            ev = evaluate_loss()
            if ev is not None:
                state["eval_loss"] = round(ev, 6)
                yield EvalMetrics(step=step, eval_loss=state["eval_loss"])
        if step % ckpt_every == 0 or step == total:
            path = save_checkpoint(run_dir, model, optimizer, _state_json(state, t_start), keep)
            ctx["dirty"] = False
            yield CheckpointSaved(step=step, path=str(path.relative_to(run_dir)))
    _save_final(run_dir, model, tokenizer, fmt, cfg, method)
    yield _ended("finished", state, t_start, "done", f"finished {total} steps")


def _adamw(params: list, lr: float, weight_decay: float):
    """AdamW, fused (one kernel for all parameters, as the Trainer's default) where torch supports it."""
    import torch

    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _would_exceed(fmt, tokenizer, row: dict[str, str], max_length: int) -> bool:
    from engine.student.formatting import encode

    return len(encode(fmt, tokenizer, row["input"], row["output"], None)[0]) > max_length


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
