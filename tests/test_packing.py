"""The training fast path: packing (same examples, loss and gradients as padding, in fewer passes)
and compiled decoder layers (the same steps as eager)."""

from __future__ import annotations

import json

import pytest
import torch

from playground.data_types import Example
from playground.errors import PlaygroundError
from playground.training import Trainer, TrainingConfig, format_example
from playground.training.formatting import IGNORE, FormattedExample, pad_batch
from playground.training.loss import token_loss_sum
from playground.training.packing import pack_rows, pack_step, packed_batch, real_tokens

WORDS = ["red", "blue", "green", "gold", "violet", "amber"]


def colour_data(folder, n: int = 12, input_repeats: int = 1, instruction: str = "Say the colour"):
    """A small instruction data file (JSON) of colour answers, inputs of 1..input_repeats numbers."""
    rows = [
        {
            "instruction": instruction,
            "input": f" {i}" * (1 + i % input_repeats),
            "output": f"{WORDS[i % 6]} fox",
        }
        for i in range(n)
    ]
    path = folder / "colours.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def examples(tokenizer, n: int = 7) -> list[FormattedExample]:
    rows = [
        Example(str(i), "Name the colour " * (1 + i % 3), f" {i}", f"{WORDS[i % 6]} fox " * (1 + i % 4))
        for i in range(n)
    ]
    return [format_example(e, tokenizer, "alpaca", max_length=128) for e in rows]


@pytest.fixture(scope="module", params=["tiny_llama", "tiny_mistral"])
def model_and_tokenizer(request):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = request.getfixturevalue(request.param)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), AutoTokenizer.from_pretrained(
        folder
    )


def test_rows_hold_every_example_once_within_the_budget():
    lengths = [50, 10, 40, 30, 30, 20, 70, 5]
    items = [FormattedExample(list(range(n)), [IGNORE] * n, n) for n in lengths]
    rows = pack_rows(items, budget=100)
    assert sorted(len(e.input_ids) for row in rows for e in row) == sorted(lengths)
    assert all(sum(len(e.input_ids) for e in row) <= 100 for row in rows)
    assert len(rows) == 3  # 255 tokens need at least 3 rows of 100
    # An example longer than the budget still trains, alone in its row.
    assert [len(r) for r in pack_rows([FormattedExample([1] * 150, [1] * 150, 0)], budget=100)] == [1]


def test_packed_row_restarts_positions_and_never_targets_an_examples_first_token():
    a = FormattedExample([1, 5, 6], [7, 5, 6], 1)  # full_text labels: the first token is a label too
    b = FormattedExample([1, 8], [9, 8], 1)
    batch = packed_batch([a, b])
    assert batch["input_ids"].tolist() == [[1, 5, 6, 1, 8]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert batch["labels"].tolist() == [[IGNORE, 5, 6, IGNORE, 8]]
    assert real_tokens(batch) == 5 and "attention_mask" not in batch


def test_packed_loss_and_gradients_equal_padded_ones(model_and_tokenizer):
    model, tok = model_and_tokenizer
    items = examples(tok)
    padded = pad_batch(items, tok.pad_token_id)
    rows = pack_step(items, budget=10_000)
    assert len(rows) == 1 and real_tokens(rows[0]) == real_tokens(padded) < padded["input_ids"].numel()

    def loss_and_grads(batches):
        model.zero_grad()
        total, count = 0.0, 0
        for batch in batches:
            loss, n = token_loss_sum(model, batch)
            loss.backward()
            total, count = total + float(loss.detach()), count + n
        return total, count, [p.grad.clone() for p in model.parameters()]

    want, want_n, want_grads = loss_and_grads([padded])
    got, got_n, got_grads = loss_and_grads(rows)
    assert got_n == want_n > 0
    assert got == pytest.approx(want, rel=1e-5)
    for g, w in zip(got_grads, want_grads):
        assert torch.allclose(g, w, atol=1e-5, rtol=1e-4)

    # The block-diagonal mask matters: one running position sequence lets examples see each other.
    leaky = dict(rows[0], position_ids=torch.arange(rows[0]["input_ids"].shape[1]).unsqueeze(0))
    with torch.no_grad():
        assert float(token_loss_sum(model, leaky)[0]) != pytest.approx(want, rel=1e-3)


def test_a_packed_run_follows_the_padded_run(tiny_llama, tmp_path):
    data = colour_data(tmp_path)
    torch.set_num_threads(1)
    histories, totals = {}, {}
    for packing in (False, True):
        steps = _run(tiny_llama, data, tmp_path / f"run-{packing}", packing=packing)
        histories[packing] = [e["loss"] for e in steps]
        totals[packing] = sum(e["tokens"] for e in steps)
    assert totals[True] == totals[False]  # padded steps count real tokens only
    assert histories[True] == pytest.approx(histories[False], rel=1e-4)


def _run(model, data, folder, **settings) -> list[dict]:
    events: list[dict] = []
    config = TrainingConfig(
        model=str(model), data=str(data), max_steps=settings.pop("max_steps", 6), micro_batch=2, grad_accum=3,
        lr=1e-2, r=8, dropout=0.0, target_modules="q,v", save_every=0, output=str(folder / "adapter"), **settings,
    )  # fmt: skip
    Trainer(config, folder / "job", on_event=events.append).run()
    start = next(e for e in events if e["type"] == "start")
    assert start["packing"] is settings.get("packing", True)
    return [e for e in events if e["type"] == "step"]


def test_compiled_layers_train_like_eager_ones(tiny_llama, tmp_path, monkeypatch):
    """torch_compile (a Training tab checkbox): every decoder layer compiled once, with packed rows
    of changing length, and the same losses as eager."""
    import playground.training.modeling as modeling

    data = colour_data(tmp_path, input_repeats=5, instruction="Say")
    torch.set_num_threads(1)
    compiled_layers: list[int] = []
    real = modeling.compile_layers
    monkeypatch.setattr(modeling, "compile_layers", lambda model: compiled_layers.append(real(model)))

    eager = [e["loss"] for e in _run(tiny_llama, data, tmp_path / "eager", max_steps=3)]
    compiled = [
        e["loss"] for e in _run(tiny_llama, data, tmp_path / "compiled", max_steps=3, torch_compile=True)
    ]
    assert compiled_layers == [2]  # both layers of the tiny Llama
    assert compiled == pytest.approx(eager, rel=1e-4)


def test_packing_is_refused_for_encoder_decoder_models(tiny_t5, tmp_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps([{"instruction": "Say", "input": "a", "output": "b"}] * 4), encoding="utf-8")
    config = TrainingConfig(model=str(tiny_t5), data=str(data), max_steps=1, packing=True, output="x")
    with pytest.raises(PlaygroundError, match="encoder-decoder"):
        Trainer(config, tmp_path / "job").run()
