"""The training loop, in the manner of nanoGPT's train.py: set up, then step, report, validate, checkpoint.

``train(run_dir)`` reads only the run directory (``run.json``, ``train.jsonl``, ``eval.jsonl``), trains the
student (LoRA via peft, or full fine-tuning) and yields the events of :mod:`engine.student.events` — the
same objects the worker (:mod:`engine.student.worker`) writes as JSON lines. Tests train in-process with
this generator; the CLI and the TUI run it in a child process.

Resume is a branch, not a subsystem: load the newest checkpoint, continue at the next step, end at the same
final step (the data order of every epoch is a pure function of the seed, so no example is skipped or
repeated).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.rate import RateMeter
from engine.student.events import (
    CheckpointSaved,
    EvalMetrics,
    RunEnded,
    RunStarted,
    StepMetrics,
    TrainEvent,
    TrainingFault,
)
from engine.student.formatting import PromptFormat, choose_kind, encode
from engine.student.model import (
    check_student,
    checkpoints,
    choose_method,
    count_parameters,
    forward_loss,
    free_memory,
    has_final_model,
    is_out_of_memory,
    load_model,
    load_optimizer_state,
    load_tokenizer,
    model_context,
    read_checkpoint_state,
    resolve_device,
    save_checkpoint,
    save_final,
    start_weights,
    uses_bf16_autocast,
)
from engine.student.run_config import read_config
from engine.student.schedule import Encoded, EpochOrder, collate, default_warmup, get_lr
from engine.student.training_data import read_jsonl

log = logging.getLogger(__name__)

MAX_GRAD_NORM = 1.0
KEEP_CHECKPOINTS = 2
REPORT_EVERY_S = 0.25  # step events are time-batched: a few lines a second, whatever the step rate
HINTS_MEMORY = ["lower --batch-size (raise --grad-accum to keep the effective batch)", "use --lora instead of --full",
                "add --gradient-checkpointing", "lower --max-length"]
HINTS_NAN = ["lower --lr (e.g. by 10x)", "use --lora", "check the data for empty outputs",
             "fp32 instead of bf16 (--device cpu to confirm)"]


# -- the loop -------------------------------------------------------------------------------
def train(run_dir: str | Path, stop_requested: Callable[[], bool] | None = None) -> Iterator[TrainEvent]:
    """Train (or resume) the run in ``run_dir``, yielding events; ends with one :class:`RunEnded`.

    ``stop_requested`` is polled at every step boundary (the worker sets it from SIGINT): when it returns
    True the loop saves a checkpoint and ends ``stopped``. Closing the generator also saves a checkpoint.
    Expected faults (missing or incompatible model, out of memory, NaN loss) end ``failed`` with a message,
    a fix and hints; finished steps stay in the last checkpoint.
    """
    run = _Attempt(Path(run_dir))
    try:
        yield from _steps(run, stop_requested or (lambda: False))
    except TrainingFault as exc:
        yield run.ended("failed", exc.reason, exc.message, exc.fix or "", exc.hints)
    except EngineError as exc:
        yield run.ended("failed", "config", exc.message, exc.fix or "")
    except Exception as exc:  # noqa: BLE001 - out of memory is expected; anything else propagates
        if not is_out_of_memory(exc):
            raise
        run.release_model()
        yield run.ended("failed", "oom", f"out of memory at step {run.counters.step + 1} ({type(exc).__name__})",
                        "resume is possible from the last checkpoint; or start a new run with smaller settings",
                        HINTS_MEMORY)
    except GeneratorExit:
        if run.dirty:
            run.save_checkpoint()
        raise
    finally:
        run.lift_memory_cap()


def _steps(run: _Attempt, stop_requested: Callable[[], bool]) -> Iterator[TrainEvent]:
    run.resume()
    yield run.setup()
    while run.counters.step < run.total:
        if stop_requested():
            if run.dirty:
                yield run.checkpoint()
            yield run.ended("stopped", "stop requested", f"stopped at step {run.counters.step} of {run.total}",
                            f"resume with `rebase-tui train --resume {run.cfg.id}`")
            return
        step = run.train_step()
        metrics = run.report(step)
        if metrics is not None:
            yield metrics
        if step % run.eval_every == 0 or step == run.total:
            validation = run.validate()
            if validation is not None:
                yield validation
        if step % run.checkpoint_every == 0 or step == run.total:
            yield run.checkpoint()
    save_final(run.run_dir, run.model, run.tokenizer, run.fmt, run.cfg, run.method)
    yield run.ended("finished", "done", f"finished {run.total} steps")


@dataclass
class Counters:
    """What a checkpoint's ``state.json`` holds: the loop's position, time and losses."""

    step: int = 0
    elapsed_s: float = 0.0
    tokens: int = 0
    train_loss: float | None = None
    eval_loss: float | None = None

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Counters:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in known})


class _Attempt:
    """One attempt at a run (a fresh start or a resume): the model, optimizer, data and counters that the
    loop's named steps share. ``elapsed_s`` in :class:`Counters` is the time of earlier attempts; this
    attempt's time is added when saved or reported."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.cfg = read_config(run_dir)
        self.settings = self.cfg.settings
        self.total = self.cfg.total_steps
        self.eval_every = self.cfg.eval_every
        self.checkpoint_every = self.eval_every
        self.counters = Counters()
        self.t_start = time.monotonic()
        self.latest: Path | None = None
        self.model: Any = None
        self.optimizer: Any = None
        self.dirty = False
        self.rlimit: tuple[int, int] | None = None

    # -- setup -------------------------------------------------------------------------------
    def resume(self) -> None:
        """Continue from the newest complete checkpoint, if any (a finished run is refused)."""
        done = checkpoints(self.run_dir)
        if not done:
            return
        self.latest = done[-1]
        self.counters = Counters.from_json(read_checkpoint_state(self.latest))
        if self.counters.step >= self.total and has_final_model(self.run_dir):
            raise TrainingFault("config", f"run {self.cfg.id} already finished ({self.total} steps)",
                                fix="start a new run, or evaluate this one with `rebase-tui eval`")

    def setup(self) -> RunStarted:
        """Device, tokenizer, prompt format, data, model and optimizer; the ``started`` event."""
        import torch

        s = self.settings
        self.device = resolve_device(s.device)
        check_student(s.student)
        torch.manual_seed(s.seed)
        self.tokenizer = load_tokenizer(s.student, s.trust_remote_code)
        kind = choose_kind(self.tokenizer, s.format)
        self.fmt = PromptFormat(kind, self.cfg.instruction, self.cfg.examples)
        (self.run_dir / "format.json").write_text(json.dumps(self.fmt.to_json(), indent=2, ensure_ascii=False),
                                                  encoding="utf-8")
        n_total, n_train = self._load_model()
        truncated = self._encode_data()
        self.order = EpochOrder([len(x) for x, _ in self.train_data], s.batch_size, s.seed, s.group_by_length)
        self.warmup = s.warmup_steps if s.warmup_steps is not None else default_warmup(self.total)
        self.losses: list[float] = []
        self.examples_seen = 0
        self.last_report = 0.0
        self.meters = {"tokens": RateMeter(), "examples": RateMeter(), "steps": RateMeter()}
        self.meters["tokens"].update(self.counters.tokens)
        self.meters["examples"].update(0)
        self.meters["steps"].update(self.counters.step)
        return RunStarted(run=self.cfg.id, start_step=self.counters.step, total_steps=self.total,
                          method=self.method, device=self.device, dtype=self.dtype, format=kind,
                          parameters=n_total, trainable=n_train, train_examples=len(self.train_data),
                          eval_examples=len(self.eval_data), resumed=self.latest is not None, truncated=truncated,
                          max_length=self.max_length)

    def _encode_data(self) -> int:
        """Tokenize both frozen splits; return how many training examples lost their prompt's start.

        Examples are cut at ``max_length``, or at the model's context when that is shorter (a recipe's 2,048
        tokens on a 1,024-position model would otherwise index past its position table).
        """
        context = model_context(self.model)
        self.max_length = max_length = min(self.settings.max_length, context or self.settings.max_length)
        rows = read_jsonl(self.run_dir / "train.jsonl")
        self.train_data = [encode(self.fmt, self.tokenizer, r["input"], r["output"], max_length) for r in rows]
        self.eval_data = [encode(self.fmt, self.tokenizer, r["input"], r["output"], max_length)
                          for r in read_jsonl(self.run_dir / "eval.jsonl")]
        return sum(1 for r, (x, _) in zip(rows, self.train_data, strict=True)
                   if len(x) >= max_length
                   and len(encode(self.fmt, self.tokenizer, r["input"], r["output"], None)[0]) > max_length)

    def _load_model(self) -> tuple[int, int]:
        """The model (from the newest checkpoint when resuming) and its optimizer; ``(parameters, trainable)``."""
        s = self.settings
        self.method = "lora" if s.load_in_4bit else s.method
        if self.method == "auto":
            self.method = choose_method("auto", count_parameters(s.student, s.trust_remote_code))
        latest = self.latest
        adapter, full = start_weights(self.cfg, latest, self.method)
        self.model, self.dtype = load_model(
            s.student, self.device, method=self.method, trust_remote_code=s.trust_remote_code,
            adapter=adapter, full_weights=full,
            gradient_checkpointing=s.gradient_checkpointing, lora=s.lora, load_in_4bit=s.load_in_4bit)
        if s.max_memory_mb:
            self.rlimit = _cap_memory(s.max_memory_mb)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = _adamw(self.params, s.lr, s.weight_decay)
        if latest is not None:
            load_optimizer_state(self.optimizer, latest, self.device)
        self.bf16 = uses_bf16_autocast(self.device)
        self.model.train()
        return sum(p.numel() for p in self.model.parameters()), sum(p.numel() for p in self.params)

    # -- one optimizer step ------------------------------------------------------------------
    def train_step(self) -> int:
        """Accumulate gradients over ``grad_accum`` micro-batches, clip, step; return the new step number."""
        import torch

        s, step = self.settings, self.counters.step + 1
        self.lr = get_lr(step, self.total, s.lr, self.warmup, s.scheduler)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        step_loss, step_tokens = 0.0, 0
        for j in range(s.grad_accum):
            idx = self.order.micro_batch((step - 1) * s.grad_accum + j)
            batch = self._batch([self.train_data[i] for i in idx])
            loss = forward_loss(self.model, batch, self.bf16)
            if not torch.isfinite(loss):
                raise TrainingFault("nan", f"the loss became {float(loss.detach())} at step {step}",
                                    fix="start a new run with a lower --lr", hints=HINTS_NAN)
            (loss / s.grad_accum).backward()
            step_loss += float(loss.detach()) / s.grad_accum
            step_tokens += int(batch[1].sum())
            self.examples_seen += len(idx)
        self.grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.counters.step = step
        self.counters.tokens += step_tokens
        self.step_tokens = step_tokens
        self.dirty = True
        self.losses.append(step_loss)
        return step

    def _batch(self, examples: list[Encoded]) -> tuple[Any, Any, Any]:
        ids, mask, labels = collate(examples, self.tokenizer.pad_token_id)
        return ids.to(self.device), mask.to(self.device), labels.to(self.device)

    def report(self, step: int) -> StepMetrics | None:
        """A ``step`` event when one is due (time-batched; always at validation steps and the last step)."""
        now = time.monotonic()
        if now - self.last_report < REPORT_EVERY_S and step != self.total and step % self.eval_every:
            return None
        self.last_report = now
        tps = self.meters["tokens"].update(self.counters.tokens)
        eps = self.meters["examples"].update(self.examples_seen)
        self.meters["steps"].update(step)
        self.counters.train_loss = sum(self.losses) / len(self.losses)
        self.losses.clear()
        elapsed = self.counters.elapsed_s + now - self.t_start
        return StepMetrics(step=step, total_steps=self.total,
                           epoch=round(step * self.settings.grad_accum / self.order.per_epoch, 4),
                           loss=round(self.counters.train_loss, 6), lr=self.lr, grad_norm=round(self.grad_norm, 6),
                           tokens=self.counters.tokens,
                           tokens_per_s=_r(tps if tps else self.step_tokens / max(1e-9, elapsed)),
                           examples_per_s=_r(eps), eta_s=_r(self.meters["steps"].eta(step, self.total)),
                           elapsed_s=round(elapsed, 3), cpu_s=round(time.process_time(), 3))

    def validate(self) -> EvalMetrics | None:
        """The token-weighted mean loss over the validation split (None without one)."""
        import torch

        if not self.eval_data:
            return None
        self.model.eval()
        loss_sum, count = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(self.eval_data), self.settings.batch_size):
                batch = self._batch(self.eval_data[i:i + self.settings.batch_size])
                n = int((batch[2][:, 1:] != -100).sum())
                if n:
                    loss_sum += float(forward_loss(self.model, batch, self.bf16)) * n
                    count += n
        self.model.train()
        if not count:
            return None
        self.counters.eval_loss = round(loss_sum / count, 6)
        return EvalMetrics(step=self.counters.step, eval_loss=self.counters.eval_loss)

    # -- saving and ending -------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        state = {**vars(self.counters), "elapsed_s": self.counters.elapsed_s + time.monotonic() - self.t_start}
        path = save_checkpoint(self.run_dir, self.model, self.optimizer, state, KEEP_CHECKPOINTS)
        self.dirty = False
        return path

    def checkpoint(self) -> CheckpointSaved:
        path = self.save_checkpoint()
        return CheckpointSaved(step=self.counters.step, path=str(path.relative_to(self.run_dir)))

    def ended(self, status: str, reason: str = "", message: str = "", fix: str = "",
              hints: list[str] | None = None) -> RunEnded:
        c = self.counters
        return RunEnded(status=status, step=c.step, reason=reason, message=message, fix=fix,
                        hints=list(hints or []), train_loss=c.train_loss, eval_loss=c.eval_loss,
                        elapsed_s=round(c.elapsed_s + time.monotonic() - self.t_start, 3))

    def release_model(self) -> None:
        """Drop the model and optimizer and give their memory back (after running out of it)."""
        self.model = self.optimizer = None
        self.lift_memory_cap()
        free_memory()

    def lift_memory_cap(self) -> None:
        if self.rlimit is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, self.rlimit)
            self.rlimit = None


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


def _adamw(params: list[Any], lr: float, weight_decay: float) -> Any:
    """AdamW, fused (one kernel for all parameters, as the Trainer's default) where torch supports it.

    Weight decay applies to matrices and embeddings only, never to biases and norm weights (the vectors):
    the rule of nanoGPT and of transformers' Trainer. Without decay there is a single parameter group, as
    in runs made before decay was a setting, so their checkpoints' optimizer state still loads.
    """
    import torch

    groups: list[dict[str, Any]] = [{"params": params, "weight_decay": 0.0}]
    if weight_decay:
        groups = [g for g in ({"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}) if g["params"]]
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.AdamW(groups, lr=lr)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
