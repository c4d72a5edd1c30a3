"""Fused decoder layers (playground/training/fused/): their hand-written backward gives autograd's gradients,
packed rows attend example by example like the block-diagonal mask, and a training run with
them follows the autograd run."""

from __future__ import annotations

import json

import pytest
import torch

from playground.errors import PlaygroundError
from playground.training import Trainer, TrainingConfig
from playground.training import fused as fl
from playground.training.formatting import pad_batch
from playground.training.fused.attention import AttentionPlans
from playground.training.fused.elementwise import DropoutMasks
from playground.training.fused.layer import FusedLayer, run_layer
from playground.training.fused.lora_pairs import lora_pairs_backward, lora_pairs_forward, uses_bf16_pairs
from playground.training.loss import token_loss_sum
from playground.training.packing import pack_step
from tests.test_packing import colour_data, examples


def lora_model(folder, targets, dropout: float = 0.0):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=targets))
    with torch.no_grad():  # LoRA B starts at zero, which would leave A's gradient zero too
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.normal_(0, 0.3)
    model.train()
    return model, AutoTokenizer.from_pretrained(folder)


def loss_and_grads(model, batches) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    total = 0.0
    for batch in batches:
        loss, _ = token_loss_sum(model, batch)
        loss.backward()
        total += float(loss.detach())
    return total, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("arch", ["tiny_llama", "tiny_mistral"])
@pytest.mark.parametrize(
    "targets",
    [["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]],
)
@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize("kept", [(0, 0), (1, 0), (2, 1)])
def test_fused_layers_give_autograds_loss_and_gradients(request, arch, targets, packed, kept):
    """kept (activations, weights): (1, 0) the second layer keeps its activations from the forward,
    the first recomputes; (2, 1) both keep their activations, the second its weights too."""
    model, tok = lora_model(request.getfixturevalue(arch), targets)
    items = examples(tok)
    batches = pack_step(items, budget=10_000) if packed else [pad_batch(items, tok.pad_token_id)]
    want, want_grads = loss_and_grads(model, batches)
    assert fl.unsupported_reason(model, max_length=128) is None
    assert fl.install(model, *kept) == 2 and fl.installed(model)
    assert fl.kept_layers(model) == kept
    got, got_grads = loss_and_grads(model, batches)
    assert got == pytest.approx(want, rel=1e-5)
    assert set(got_grads) == set(want_grads) and len(got_grads) == 2 * 2 * len(targets)
    for name, g in got_grads.items():
        w = want_grads[name]
        assert float(w.abs().max()) > 0, name
        assert torch.allclose(g, w, atol=1e-5, rtol=1e-4), (name, float((g - w).abs().max()))
    # Evaluation (no grad) keeps the layers' own forward and gives the same loss.
    with torch.no_grad():
        assert float(token_loss_sum(model, batches[0])[0]) == pytest.approx(
            float(token_loss_sum(model.eval(), batches[0])[0]), rel=1e-5
        )


@pytest.mark.parametrize("kept", [fl.Keep.INPUT, fl.Keep.ACTIVATIONS, fl.Keep.WEIGHTS])
def test_dropout_masks_are_drawn_again_identically_for_the_backward(tiny_mistral, kept):
    """With LoRA dropout the backward re-draws the forward's masks (or keeps them): its gradients
    equal autograd's through the very same forward (same seed, so same masks)."""
    model, tok = lora_model(tiny_mistral, ["q_proj", "v_proj", "down_proj"], dropout=0.3)
    inner = model.get_base_model()
    layer = inner.model.layers[0]
    parts = fl.layer_parts(layer, inner.config)
    assert parts.dropout
    batch = pack_step(examples(tok), budget=10_000)[0]
    x = torch.randn(1, batch["input_ids"].shape[1], inner.config.hidden_size, requires_grad=True)
    cos, sin = inner.model.rotary_emb(x, position_ids=batch["position_ids"])
    plan = AttentionPlans().plan(x, None, batch["position_ids"])
    assert plan.gather is not None and plan.gather.shape[0] == len(examples(tok))
    params = parts.params()
    grad_out = torch.randn_like(x)

    want = run_layer(parts, plan, 1234, x, cos, sin)
    want_grads = torch.autograd.grad(want, [x, *params], grad_out)
    got = FusedLayer.apply(parts, plan, 1234, kept, x, cos, sin, *params)
    got_grads = torch.autograd.grad(got, [x, *params], grad_out)
    assert torch.allclose(got, want, atol=1e-6)
    for g, w in zip(got_grads, want_grads):
        assert torch.allclose(g, w, atol=1e-5, rtol=1e-4)
    # Another seed draws other masks (so the seed is what ties forward and backward together).
    assert not torch.allclose(run_layer(parts, plan, 99, x, cos, sin), want, atol=1e-4)


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(got.double() - want) / torch.linalg.vector_norm(want))


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_lora_on_a_bf16_base_runs_as_bf16_pairs_at_fp32_accuracy(dropout):
    """On a bf16 base the fp32 LoRA products run as sums of bf16 products (tensor cores on CUDA):
    their results agree with float64 math to fp32 accuracy, where plain bf16 LoRA would be 1e-3 off."""
    torch.manual_seed(0)
    tokens, inp, out, r, scale = 48, 64, 80, 8, 0.5
    x = torch.randn(tokens, inp).bfloat16()
    p = fl.Projection(
        torch.nn.Linear(inp, out, bias=False), torch.nn.Parameter(torch.randn(r, inp)),
        torch.nn.Parameter(torch.randn(out, r)), scale=scale, dropout=dropout,
    )  # fmt: skip
    assert uses_bf16_pairs(x, p)
    y = torch.zeros(tokens, out, dtype=torch.bfloat16)
    g = torch.randn(tokens, out).bfloat16()
    grads: dict[int, torch.Tensor] = {}
    dx = torch.zeros(tokens, inp, dtype=torch.bfloat16)
    with torch.no_grad():  # as in the fused layer's forward and backward
        lora = lora_pairs_forward(p, x, y, DropoutMasks(7, x.device))
        lora_pairs_backward(p, lora, g, dx, grads)

    keep = torch.ones(tokens, inp) if lora.mask is None else lora.mask.double()
    assert (dropout > 0) == (lora.mask is not None) and float(keep.mean()) < (1 if dropout else 2)
    a, b = p.lora_a.detach().double(), p.lora_b.detach().double()
    xd = x.double() * keep / (1 - dropout)
    xa = xd @ a.t() * scale
    want = {
        "xa": xa,
        "y": xa @ b.t(),
        "B": g.double().t() @ xa,
        "A": scale * (g.double() @ b).t() @ xd,
        "dx": scale * (g.double() @ b @ a) * keep / (1 - dropout),
    }
    r3 = lora.xa.double()
    got = {
        "xa": r3[:, :r] + r3[:, r : 2 * r],
        "y": y,
        "B": grads[id(p.lora_b)],
        "A": grads[id(p.lora_a)],
        "dx": dx,
    }
    assert torch.equal(r3[:, :r], r3[:, 2 * r :])  # [hi | lo | hi]
    for name in ("xa", "A", "B"):  # fp32 results
        assert _relative(got[name], want[name]) < 2e-5, name
    for name in ("y", "dx"):  # bf16 outputs: one rounding of the exact result
        assert _relative(got[name], want[name]) < 4e-3, name
    # The yardstick: plain bf16 LoRA weights miss the same gradient by far more.
    plain = scale * (g.double() @ b.bfloat16().double()).t() @ xd
    assert _relative(plain, want["A"]) > 1e-3


@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize("kept", [(0, 0), (2, 1)])
def test_fused_layers_on_a_bf16_base_are_as_close_to_fp32_as_autograd(tiny_llama, packed, kept):
    """The QLoRA set-up (bf16 base, fp32 LoRA) through the bf16 pair path: bf16 rounds differently
    in any two implementations, so the measure is the distance of the LoRA gradients from the same
    model's in fp32, against autograd's own distance in bf16."""
    model, tok = lora_model(tiny_llama, ["q_proj", "v_proj", "down_proj"])
    items = examples(tok)
    batches = pack_step(items, budget=10_000) if packed else [pad_batch(items, tok.pad_token_id)]
    exact_loss, exact = loss_and_grads(model, batches)
    model.to(torch.bfloat16)
    for name, p in model.named_parameters():
        if "lora_" in name:
            p.data = p.data.float()

    def distance(grads: dict[str, torch.Tensor]) -> float:
        assert all(g.dtype == torch.float32 for g in grads.values())
        diff = sum(float(torch.linalg.vector_norm(grads[k].double() - exact[k]) ** 2) for k in exact)
        return (diff / sum(float(torch.linalg.vector_norm(g.double()) ** 2) for g in exact.values())) ** 0.5

    _, autograd = loss_and_grads(model, batches)
    fl.install(model, *kept)
    loss, fused = loss_and_grads(model, batches)
    assert loss == pytest.approx(exact_loss, rel=1e-2)
    assert 1e-3 < distance(autograd) < 5e-2  # bf16 rounding, not a broken model
    assert distance(fused) < 1.25 * distance(autograd)


def _run(model, data, folder, **settings) -> tuple[dict, list[float]]:
    events: list[dict] = []
    settings = {"max_steps": 4, "eval_every": 2, "gradient_checkpointing": True, **settings}
    config = TrainingConfig(
        model=str(model), data=str(data), micro_batch=2, grad_accum=3, lr=1e-2, r=8, dropout=0.0,
        target_modules="q,v,down", save_every=0, output=str(folder / "adapter"), **settings,
    )  # fmt: skip
    Trainer(config, folder / "job", on_event=events.append).run()
    start = next(e for e in events if e["type"] == "start")
    return start, [e["loss"] for e in events if e["type"] == "step"]


def test_a_run_with_fused_layers_follows_the_autograd_run(tiny_llama, tmp_path):
    data = colour_data(tmp_path, n=14, input_repeats=4)
    torch.set_num_threads(1)
    fused_start, fused = _run(tiny_llama, data, tmp_path / "fused")  # auto: on under checkpointing
    plain_start, plain = _run(tiny_llama, data, tmp_path / "plain", fused_layers=False)
    assert fused_start["fused_layers"] is True and plain_start["fused_layers"] is False
    assert len(fused) == 4 and fused == pytest.approx(plain, rel=1e-4)
    assert (tmp_path / "fused" / "adapter" / "adapter_model.safetensors").is_file()
    # On CPU auto keeps no activations; a budget of one and a half layers' makes the last one keep them.
    assert fused_start["kept_layers"] == 0
    per_token = fl.kept_bytes_per_token(lora_model(tiny_llama, ["q_proj", "v_proj", "down_proj"])[0])
    budget = 1.5 * per_token * 2 * 512 / 2**30  # micro_batch x max_length tokens
    kept_start, kept = _run(tiny_llama, data, tmp_path / "kept", activation_memory_gb=budget)
    assert kept_start["kept_layers"] == 1 and kept_start["kept_weights"] == 0
    assert kept == pytest.approx(plain, rel=1e-4)


def test_kept_layers_fit_the_activation_budget(tiny_llama):
    model, _ = lora_model(tiny_llama, ["q_proj", "v_proj"], dropout=0.1)
    per_token = fl.kept_bytes_per_token(model)
    config = model.get_base_model().config
    # At least the residual, the attention tensors and the MLP's gate and up products, in fp32 here.
    assert per_token > 4 * (config.hidden_size + 4 * config.hidden_size + 2 * config.intermediate_size)
    assert fl.kept_layers_for(model, 0.9 * per_token * 100, tokens=100) == (0, 0)
    assert fl.kept_layers_for(model, 1.0 * per_token * 100, tokens=100) == (1, 0)
    # No more than there are; float weights have no dequantized copy to keep.
    assert fl.kept_weight_bytes(model) == 0
    assert fl.kept_layers_for(model, 50 * per_token * 100, tokens=100) == (2, 0)
    assert fl.kept_layers_for(model, -1, tokens=100) == (0, 0)
    with pytest.raises(PlaygroundError, match="activation_memory_gb"):
        TrainingConfig(model=str(tiny_llama), activation_memory_gb=-1).validate()
    assert TrainingConfig.from_dict({"activation_memory_gb": "auto"}).activation_memory_gb is None
    assert TrainingConfig.from_dict({"activation_memory_gb": "2.5"}).activation_memory_gb == 2.5
    with pytest.raises(PlaygroundError, match=r"'lots' is not a valid number \(or empty for auto\)"):
        TrainingConfig.from_dict({"activation_memory_gb": "lots"})


def test_fused_layers_step_aside_where_they_do_not_apply(tiny_mistral, tiny_llama, tmp_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps([{"instruction": "Say", "input": "a", "output": "b"}] * 6), encoding="utf-8")
    # The tiny Mistral's sliding window (128 tokens) is shorter than max_length 512: auto trains
    # through autograd, and asking for fused layers says why not.
    start, losses = _run(tiny_mistral, data, tmp_path / "auto", max_steps=1, eval_every=0)
    assert start["fused_layers"] is False and len(losses) == 1
    with pytest.raises(PlaygroundError, match="sliding-window"):
        _run(tiny_mistral, data, tmp_path / "asked", max_steps=1, fused_layers=True)
    with pytest.raises(PlaygroundError, match="choose one"):
        _run(tiny_llama, data, tmp_path / "both", max_steps=1, fused_layers=True, torch_compile=True)
    # Without gradient checkpointing autograd keeps activations and re-runs nothing: no fused layers.
    start, _ = _run(
        tiny_llama, data, tmp_path / "nockpt", max_steps=1, eval_every=0, gradient_checkpointing=False
    )
    assert start["fused_layers"] is False


def test_training_status_says_how_many_layers_keep_what():
    from playground.ui.training import progress_text

    start = {"type": "start", "method": "qlora", "device": "cuda", "packing": True, "fused_layers": True}
    text = progress_text([{**start, "kept_layers": 32, "kept_weights": 20}], {"state": "running"})
    assert "fused layers (32 keep their activations, 20 their weights too)" in text
    assert "fused layers (8 keep their activations)" in progress_text([{**start, "kept_layers": 8}], {})
    assert "keep" not in progress_text([{**start, "kept_layers": 0}], {})
