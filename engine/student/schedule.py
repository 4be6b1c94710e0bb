"""What each optimizer step trains on, and at which learning rate: the schedule, the seeded order of every
epoch's micro-batches, and their collation into padded tensors. Pure functions of their arguments (torch is
needed only to build tensors), so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
import random
from typing import Any

Encoded = tuple[list[int], list[int]]  # (input_ids, labels) of one example
SCHEDULERS = ("cosine", "linear")
WARMUP_FRACTION = 0.03


def default_warmup(total: int) -> int:
    """Warm-up steps when none are set: 3 % of the run, at least one step."""
    return max(1, round(WARMUP_FRACTION * total))


def get_lr(step: int, total: int, lr: float, warmup: int, scheduler: str = "cosine", min_ratio: float = 0.1) -> float:
    """The learning rate of optimizer step ``step`` (1-based) of ``total``.

    Linear warm-up reaches ``lr`` at step ``warmup``; then ``cosine`` decays to ``min_ratio * lr`` at the last
    step, and ``linear`` decays as transformers' linear schedule does (``lr * (total - step + 1) / (total -
    warmup)``: the full rate on the first step after warm-up, ``lr / (total - warmup)`` on the last). The one
    difference from transformers is the warm-up's first step, which trains at ``lr / warmup`` instead of 0.
    """
    if warmup and step <= warmup:
        return lr * step / warmup
    if scheduler == "linear":
        return lr * max(0.0, (total - step + 1) / max(1, total - warmup))
    progress = (step - warmup) / max(1, total - warmup)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[list[int]]:
    """The micro-batches of one epoch: a seeded shuffle; with grouping, similar lengths share a batch.

    Grouping sorts windows of ``batch_size * 32`` shuffled examples by length, cuts batches, then shuffles
    the batches (like transformers' ``group_by_length``): far less padding, still a random order.
    """
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


def collate(examples: list[Encoded], pad_id: int) -> tuple[Any, Any, Any]:
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


class EpochOrder:
    """Micro-batch ``m`` of the whole run (epoch after epoch), computing one epoch's order at a time."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int, group_by_length: bool) -> None:
        self.lengths, self.batch_size, self.seed, self.group = lengths, batch_size, seed, group_by_length
        self.per_epoch = math.ceil(len(lengths) / batch_size)
        self._epoch = -1
        self._batches: list[list[int]] = []

    def micro_batch(self, m: int) -> list[int]:
        epoch = m // self.per_epoch
        if epoch != self._epoch:
            self._epoch = epoch
            self._batches = epoch_batches(self.lengths, self.batch_size, self.seed, epoch, self.group)
        return self._batches[m % self.per_epoch]
