"""Training presets per model size: settings a user starts from, as data (names live in the UI catalogue)."""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # The embedded 135M model on a CPU, in about a minute.
    "cpu_demo": dict(
        method="lora",
        r=8,
        alpha=16,
        target_modules="q,v",
        lr=1e-3,
        max_steps=30,
        micro_batch=4,
        grad_accum=1,
        max_length=256,
        eval_every=10,
        save_every=10,
        first_n=200,
        eval_size=4,  # the demo sets have 30 training rows; keep most of them for training
    ),
    # What the homework used for a 7B model.
    "qlora_7b_homework": dict(
        method="qlora",
        r=64,
        alpha=16,
        target_modules="q,v",
        lr=2e-4,
        max_steps=0,
        epochs=1,
        micro_batch=4,
        grad_accum=4,
        # Cuts nothing on the course data (a Tang pair is ~150 tokens), and makes the packing budget
        # (micro_batch x max_length = 4096 tokens) hold a whole 16-example step in one pass: at 512
        # a step spills a few tokens into a second pass that costs as much as the first.
        max_length=1024,
        eval_every=50,
        save_every=50,
        first_n=3000,
        eval_size=100,
    ),
}


def presets_for(gpu: bool) -> dict[str, dict[str, Any]]:
    """QLoRA needs a GPU: a CPU-only machine is offered only what it can run."""
    return {name: p for name, p in PRESETS.items() if gpu or p["method"] != "qlora"}


def preset_values(name: str) -> dict[str, Any]:
    """Every training setting under preset `name`: the defaults with the preset's changes."""
    from playground.training.config import TrainingConfig

    return TrainingConfig().replace(**PRESETS[name]).to_dict()
