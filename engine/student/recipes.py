"""Named training recipes: a set of run settings chosen together (``train --recipe NAME``).

A recipe sits between the workspace's ``student.*`` settings and the user's explicit choices: it replaces the
workspace's values for the settings it names, and every flag or form field the user sets wins over it.

* ``default`` — the workspace's settings and :class:`~engine.student.run_config.RunSettings`' defaults (a
  validation hold-out, cosine decay, full fine-tuning for tiny students).
* ``paper`` — the ReBase paper's released training code: LoRA r 8, alpha 16, dropout 0; learning rate 3e-4 for
  one epoch, a linear schedule after 20 warm-up steps, weight decay 0.01; examples up to 2,048 tokens; batch 2
  with 4 accumulation steps (8 examples per optimizer step); every example trained on (no validation
  hold-out); and 4-bit base weights (QLoRA) when the run trains on a CUDA GPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from engine.errors import EngineError


@dataclass(frozen=True, slots=True)
class Recipe:
    """A named set of run settings. ``values`` are :class:`RunSettings` fields (LoRA's as ``lora_r``,
    ``lora_alpha``, ``lora_dropout``); ``load_in_4bit_on_cuda`` asks for 4-bit base weights exactly when the
    run's device is a CUDA GPU (4-bit weights need one), so the same recipe also runs on a CPU."""

    name: str
    summary: str
    values: Mapping[str, Any] = field(default_factory=dict)
    load_in_4bit_on_cuda: bool = False


RECIPES: Mapping[str, Recipe] = MappingProxyType({
    "default": Recipe("default", "the workspace's student.* settings and the built-in defaults"),
    "paper": Recipe(
        "paper", "the ReBase paper's code: LoRA r 8, alpha 16, dropout 0, lr 3e-4, 1 epoch, linear after 20 "
                 "warm-up steps, weight decay 0.01, length 2048, batch 2x4",
        MappingProxyType({
            "method": "lora", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "lr": 3e-4, "epochs": 1.0,
            "scheduler": "linear", "warmup_steps": 20, "weight_decay": 0.01, "max_length": 2048,
            "batch_size": 2, "grad_accum": 4, "eval_fraction": 0.0,
        }),
        load_in_4bit_on_cuda=True),
})


def get_recipe(name: str | None) -> Recipe:
    """The recipe called ``name`` (``default`` for None); an EngineError listing the known ones otherwise."""
    recipe = RECIPES.get(name or "default")
    if recipe is None:
        raise EngineError(f"unknown training recipe {name!r}", fix=f"use one of: {', '.join(RECIPES)}")
    return recipe
