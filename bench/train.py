"""Benchmark: training throughput of our worker vs a plain transformers Trainer, and padding per batch.

    python bench/train.py                                  # defaults below (CPU, ~1-2 minutes)
    python bench/train.py --steps 80 --layers 4 --dim 256 --batch-size 8 --max-length 256 --threads 1 --repeats 3

Both sides train the same random-init GPT-2-style model (saved once to a temp folder, BPE tokenizer trained
on the data), on the same examples of ../shared/data/teacher_outputs/mnli.jsonl formatted by
engine.student.formatting (prompt masked, EOS appended), same batch size, gradient accumulation, max length, AdamW
and gradient clipping, no length grouping on either side, one process at a time, same torch thread count.

Throughput is measured by wall clock and by CPU time of the training process (``time.process_time``; with
one torch thread, CPU time measures work done and is robust to other load on a shared machine); the ratios
are medians over ``--repeats`` pairs with alternating order.

* **ours**: the real path — ``python -m engine.student.worker RUN_DIR`` started by ``engine.student.supervise.start``,
  events written to events.jsonl and followed by ``engine.student.supervise.follow``. Throughput = real
  (non-padding) tokens / seconds between the first step event at or after ``--skip`` and the last one
  (worker start-up and model load excluded).
* **Trainer**: ``transformers.Trainer`` with a collator producing the same tensors from the same batches in
  the same order (a sequential sampler over our seeded epoch order); a callback times steps ``--skip``..end
  and counts real tokens of those steps.

Also prints the fraction of real tokens per padded batch for the data at that batch size and max length:
random batches, our length-grouped batches (``group_by_length``, the default), and first-fit packing into
``max_length`` rows (a bound for reference; our loop does not pack).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import SHARED_DATA, build_student

DATA = SHARED_DATA / "teacher_outputs" / "mnli.jsonl"


def run_ours(ws, rows, student: Path, args) -> dict:
    from engine.student import runs, supervise
    from engine.student.events import RunEnded, StepMetrics
    from engine.student.run_config import RunSettings

    settings = RunSettings(student=str(student), method="full", epochs=1.0, max_steps=args.steps, lr=1e-3,
                           batch_size=args.batch_size, grad_accum=args.grad_accum, max_length=args.max_length,
                           eval_every=args.steps, device=args.device, seed=0, format="base", threads=args.threads,
                           group_by_length=False, eval_fraction=0.0)
    path = runs.create_run(ws, rows, settings, source=str(DATA), eval_rows=[])
    handle = supervise.start(path)
    steps = []
    end = None
    for ev in supervise.follow(path, handle.offset, poll_s=0.1):
        if isinstance(ev, StepMetrics):
            steps.append(ev)
        elif isinstance(ev, RunEnded):
            end = ev
    supervise.wait(handle, timeout=30)
    if end is None or end.status != "finished":
        raise SystemExit(f"our run did not finish: {end}\n{(path / 'stderr.log').read_text()[-3000:]}")
    first = next(s for s in steps if s.step >= args.skip)
    last = steps[-1]
    return {"tokens_per_s": (last.tokens - first.tokens) / (last.elapsed_s - first.elapsed_s),
            "tokens_per_cpu_s": (last.tokens - first.tokens) / (last.cpu_s - first.cpu_s),
            "steps_timed": last.step - first.step, "final_loss": last.loss, "events": len(steps)}


def run_trainer(rows, student: Path, args) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    from engine.student.formatting import BASE, PromptFormat, encode
    from engine.student.schedule import collate, epoch_batches

    if args.threads:
        torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(student)
    fmt = PromptFormat(BASE)
    data = [encode(fmt, tok, r["input"], r["output"], args.max_length) for r in rows]

    # the same batches in the same order as our loop (its seeded epoch order, no grouping)
    lengths = [len(x) for x, _ in data]
    order: list[int] = []
    epoch = 0
    while len(order) < args.steps * args.batch_size * args.grad_accum:
        order += [i for b in epoch_batches(lengths, args.batch_size, 0, epoch, False) for i in b]
        epoch += 1

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(order)

        def __getitem__(self, i):
            return data[order[i]]

    class SameOrderTrainer(Trainer):
        def _get_train_sampler(self, *a, **k):
            return torch.utils.data.SequentialSampler(self.train_dataset)

    counted = {"tokens": 0}

    def collator(batch):
        ids, mask, labels = collate(batch, tok.pad_token_id)
        counted["tokens"] += int(mask.sum())
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    marks: dict[int, tuple[float, float, int]] = {}

    class Timer(TrainerCallback):
        def on_step_end(self, targs, state, control, **kw):
            marks[state.global_step] = (time.perf_counter(), time.process_time(), counted["tokens"])

    model = AutoModelForCausalLM.from_pretrained(student)
    targs = TrainingArguments(output_dir=tempfile.mkdtemp(prefix="bench-trainer-"), max_steps=args.steps,
                              per_device_train_batch_size=args.batch_size,
                              gradient_accumulation_steps=args.grad_accum, learning_rate=1e-3, max_grad_norm=1.0,
                              weight_decay=0.0, save_strategy="no", eval_strategy="no", logging_steps=10 ** 9,
                              report_to="none", disable_tqdm=True, dataloader_num_workers=0,
                              use_cpu=args.device == "cpu", remove_unused_columns=False, seed=0)
    SameOrderTrainer(model=model, args=targs, train_dataset=DS(), data_collator=collator,
            callbacks=[Timer()]).train()
    # tokens of a step are counted when its batches are collated, i.e. before its step end
    t0, c0, tok0 = marks[args.skip]
    t1, c1, tok1 = marks[args.steps]
    return {"tokens_per_s": (tok1 - tok0) / (t1 - t0), "tokens_per_cpu_s": (tok1 - tok0) / (c1 - c0),
            "steps_timed": args.steps - args.skip}


def padding_report(rows, student: Path, args) -> dict:
    from transformers import AutoTokenizer

    from engine.student.formatting import BASE, PromptFormat, encode
    from engine.student.schedule import epoch_batches, padding_stats

    tok = AutoTokenizer.from_pretrained(student)
    lengths = [len(encode(PromptFormat(BASE), tok, r["input"], r["output"], args.max_length)[0]) for r in rows]
    plain = padding_stats(lengths, epoch_batches(lengths, args.batch_size, 0, 0, False))
    grouped = padding_stats(lengths, epoch_batches(lengths, args.batch_size, 0, 0, True))
    bins: list[int] = []
    for n in sorted(lengths, reverse=True):
        for k, used in enumerate(bins):
            if used + n <= args.max_length:
                bins[k] += n
                break
        else:
            bins.append(n)
    packed = sum(lengths) / (len(bins) * args.max_length)
    return {"examples": len(lengths), "mean_length": sum(lengths) / len(lengths), "random": plain,
            "grouped": grouped, "packed_first_fit": packed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=600)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--skip", type=int, default=10, help="steps excluded from timing (warm-up)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2, help="ours/Trainer pairs, alternating who goes first")
    args = ap.parse_args()
    if not DATA.exists():
        raise SystemExit(f"{DATA} is not present (the shared data folder sits beside the repository)")
    os.environ["OMP_NUM_THREADS"] = str(args.threads or "")
    rows = [json.loads(x) for x in DATA.read_text(encoding="utf-8").splitlines()[: args.examples]]
    from engine.workspace import Workspace

    ratios_wall, ratios_cpu = [], []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        student = Path(tmp) / "student"
        build_student(student, rows, args.layers, args.dim)
        with Workspace(Path(tmp) / "ws") as ws:
            for r in range(args.repeats):  # alternate who goes first: a shared machine drifts
                if r % 2 == 0:
                    ours, plain = run_ours(ws, rows, student, args), run_trainer(rows, student, args)
                else:
                    plain, ours = run_trainer(rows, student, args), run_ours(ws, rows, student, args)
                ratios_wall.append(ours["tokens_per_s"] / plain["tokens_per_s"])
                ratios_cpu.append(ours["tokens_per_cpu_s"] / plain["tokens_per_cpu_s"])
                print(f"repeat {r + 1}: ours {ours['tokens_per_s']:,.0f} tok/s ({ours['tokens_per_cpu_s']:,.0f} per "
                      f"CPU-s, {ours['events']} step events), Trainer {plain['tokens_per_s']:,.0f} tok/s "
                      f"({plain['tokens_per_cpu_s']:,.0f} per CPU-s)", flush=True)
        pad = padding_report(rows, student, args)
    wall, cpu = statistics.median(ratios_wall), statistics.median(ratios_cpu)
    print(f"model: GPT-2 style, {args.layers} layers x {args.dim} dims; {args.examples} mnli examples; batch "
          f"{args.batch_size} x accum {args.grad_accum}; max length {args.max_length}; device {args.device}; "
          f"{args.threads} thread(s); {args.steps} steps, steps {args.skip}..{args.steps} timed; "
          f"{args.repeats} repeat(s), order alternating")
    print(f"ratio ours/Trainer, real tokens per second (median): wall clock {wall:.3f}, CPU time {cpu:.3f} "
          f"(overhead by CPU time {max(0.0, 1 - cpu) * 100:.1f}%; goal <= 5%)")
    print(f"real-token fraction per batch (batch {args.batch_size}, {pad['examples']} examples, mean "
          f"{pad['mean_length']:.0f} tokens): random {pad['random']:.3f}, length-grouped {pad['grouped']:.3f}, "
          f"first-fit packing {pad['packed_first_fit']:.3f}")


if __name__ == "__main__":
    main()
