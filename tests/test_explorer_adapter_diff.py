"""Adapter vs base per reference character: the same numbers as two separate perplexity runs."""

from __future__ import annotations

import math

import pytest

from playground.evaluation.perplexity import perplexity
from playground.explorer.adapter_diff import adapter_vs_base
from playground.models import LoadOptions, load_model
from playground.models.access import exclusive_model
from playground.models.adapters import attach_adapter
from tests.helpers import save_random_lora

PAIRS = [
    ("USER: 續寫 ASSISTANT:", "床前明月光，疑是地上霜。"),
    ("Question: Is the", " quick brown fox plausible?"),
]


def test_differences_match_two_separate_perplexity_runs(tiny_llama, tmp_path):
    loaded = load_model(str(tiny_llama), LoadOptions(precision="fp32"))
    folder = tmp_path / "tuned"
    save_random_lora(tiny_llama, folder)
    name = attach_adapter(loaded, folder)
    diffs = adapter_vs_base(loaded, PAIRS, name)
    with exclusive_model(loaded, None):
        base = perplexity(loaded.model, loaded.tokenizer, PAIRS).examples
    with exclusive_model(loaded, name):
        tuned = perplexity(loaded.model, loaded.tokenizer, PAIRS).examples
    for chars, b, a in zip(diffs, base, tuned, strict=True):
        # One entry per character of the reference (plus eos), the split ones merged.
        assert "".join(c.text for c in chars).startswith(PAIRS[base.index(b)][1])
        assert math.fsum(c.base_nll for c in chars) == pytest.approx(math.fsum(b.nll), abs=1e-5)
        assert math.fsum(c.adapter_nll for c in chars) == pytest.approx(math.fsum(a.nll), abs=1e-5)
        assert math.fsum(c.difference for c in chars) == pytest.approx(
            math.fsum(a.nll) - math.fsum(b.nll), abs=1e-5
        )
    chinese = diffs[0]
    assert all(c.text and "\ufffd" not in c.text for c in chinese), "whole characters, not byte tokens"
    assert len(chinese) < len(base[0].tokens), "byte tokens of one character were merged"
    assert any(abs(c.difference) > 1e-4 for c in chinese), "the adapter changed something"
