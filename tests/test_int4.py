"""int4 weight-only layers (tinygemm) on CPU: PyTorch's CPU int4 kernel, the same packing rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from playground.errors import ModelLoadError, PlaygroundError
from playground.generation import GREEDY
from playground.models import LoadOptions, load_model
from playground.models.int4 import (
    INT4_QUANTIZATION,
    Int4Error,
    Int4Linear,
    dequantize_groups,
    fits,
    quantize_groups,
    quantize_model_int4,
)
from playground.models.loader import cpu_has_native_bf16
from tests.helpers import generate_reference

pytestmark = pytest.mark.skipif(
    not hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu"), reason="no CPU int4 kernel in this torch"
)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def _build_int4_llama(folder: Path) -> Path:
    """A tiny Llama whose layers the int4 kernels take (the usual tiny one has hidden size 64)."""
    from tests.tiny_models import build_causal_lm

    return build_causal_lm(folder, hidden_size=128, intermediate_size=256)


@pytest.fixture(scope="module")
def llama128(tmp_path_factory) -> Path:
    return _build_int4_llama(tmp_path_factory.mktemp("tiny-llama-128"))


@pytest.fixture(scope="module")
def int4_loaded(llama128):
    return load_model(str(llama128), LoadOptions(precision="int4"))


def test_quantization_error_is_within_half_a_step():
    torch.manual_seed(0)
    w = torch.randn(64, 256)
    q, scales, zeros = quantize_groups(w, 128)
    assert q.dtype == torch.int32 and int(q.min()) >= 0 and int(q.max()) <= 15
    assert scales.shape == zeros.shape == (64, 2)
    deq = dequantize_groups(q, scales, zeros)
    # Round to nearest: no weight moves more than half a step of its group.
    step = scales.repeat_interleave(128, dim=1)
    assert bool(((deq - w).abs() <= step / 2 + 1e-6).all())
    assert _rel(deq, w) < 0.12
    # Weights that lie on a group's 16 levels come back exactly.
    on_grid = deq.clone()
    assert torch.allclose(dequantize_groups(*quantize_groups(on_grid, 128)), on_grid, atol=1e-5)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.bfloat16, 1e-2)])
def test_layer_matches_the_dequantized_matmul(dtype, tolerance):
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 64, bias=True)
    layer = Int4Linear.from_linear(linear, 128, dtype=dtype)
    assert layer.packed.dtype == torch.uint8 and layer.packed_for == "cpu"
    x = torch.randn(2, 5, 256, dtype=dtype)
    y = layer(x)
    assert y.shape == (2, 5, 64) and y.dtype == dtype
    deq = dequantize_groups(*quantize_groups(linear.weight.detach(), 128))
    reference = x.float() @ deq.T + linear.bias.detach()
    assert _rel(y, reference) < tolerance
    # ...and near the original layer: the quantization error, not a layout error.
    assert _rel(y, linear(x.float()).detach()) < 0.15


def test_shapes_the_kernels_refuse_stay_linear():
    assert fits(torch.nn.Linear(256, 64))
    for linear in (torch.nn.Linear(64, 64), torch.nn.Linear(192, 64), torch.nn.Linear(256, 24)):
        assert not fits(linear)
        with pytest.raises(ValueError, match="int4 needs"):
            Int4Linear.from_linear(linear)


def test_a_layer_packed_for_another_device_refuses_to_run():
    layer = Int4Linear.from_linear(torch.nn.Linear(128, 16))
    layer.packed_for = "cuda"  # as if it had been packed on a GPU and then moved to the CPU
    with pytest.raises(Int4Error, match="packed for cuda"):
        layer(torch.randn(1, 128, dtype=torch.bfloat16))


def test_quantize_model_swaps_decoder_layers_and_keeps_the_head(llama128, tiny_llama):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(llama128), dtype=torch.float32).eval()
    ids = torch.tensor([[1, 5, 9, 40, 77, 3, 12]])
    with torch.no_grad():
        before = model(ids).logits
    summary = quantize_model_int4(model, dtype=torch.float32)
    assert summary.quantized == 2 * 7 and summary.skipped == []  # q k v o gate up down, two layers
    assert summary.kernel_error is not None and summary.kernel_error < 1e-4
    assert 0.01 < summary.quantization_error < 0.12
    assert type(model.lm_head) is torch.nn.Linear
    assert isinstance(model.model.layers[0].mlp.down_proj, Int4Linear)
    with torch.no_grad():
        after = model(ids).logits
    assert _rel(after, before) < 0.25
    assert bool((after.argmax(-1) == before.argmax(-1)).float().mean() > 0.5)
    # Hidden size 64 is below a group: only down_proj (128 in, 64 out) fits; the rest stay as they were.
    small = AutoModelForCausalLM.from_pretrained(str(tiny_llama))
    summary = quantize_model_int4(small)
    assert summary.quantized == 2 and len(summary.skipped) == 12
    assert isinstance(small.model.layers[1].mlp.down_proj, Int4Linear)
    assert type(small.model.layers[1].mlp.up_proj) is torch.nn.Linear


def test_load_int4_on_cpu(int4_loaded, llama128):
    loaded = int4_loaded
    assert loaded.quantization == INT4_QUANTIZATION and loaded.device == "cpu"
    assert loaded.dtype == ("bfloat16" if cpu_has_native_bf16() else "float32")
    assert any("CPU kernel" in str(n) for n in loaded.notes)
    assert sum(isinstance(m, Int4Linear) for m in loaded.model.modules()) == 14
    full = load_model(str(llama128), LoadOptions(precision="fp32"))
    count = sum(p.numel() for p in full.model.parameters())
    assert f"{count / 1e6:,.0f}M parameters" in loaded.model_summary()
    assert "int4" in loaded.model_summary()


def test_int4_greedy_generation_and_fast_loops(int4_loaded):
    from playground.generation import generate_text
    from playground.generation.fast_decode import decode_rows, decode_tokens, eos_ids, row_bucket

    loaded = int4_loaded
    settings = GREEDY.with_(max_new_tokens=8)
    eos = eos_ids(loaded.model, loaded.tokenizer)
    ids = loaded.tokenizer("床前明月光，", return_tensors="pt")["input_ids"]
    reference = generate_reference(loaded, ids, settings)
    assert reference
    # The fast loops (eager steps on CPU) give generate()'s tokens through the int4 layers.
    with torch.inference_mode():
        assert list(decode_tokens(loaded.model, ids, settings, eos)) == reference
        rows = decode_rows(loaded.model, ids, lambda _ids, scores: scores, [8, 8, 4], eos)
    assert rows == [reference, reference, reference[:4]]
    assert row_bucket(1, loaded.model) == 4  # the bf16 route, unlike bitsandbytes layers
    answer = generate_text(loaded, "The quick brown fox", settings)
    assert 0 < answer.new_tokens <= 8


def test_int4_choices_and_refusals(tiny_llama, monkeypatch):
    from playground.models import int4, loader

    # The usual tiny Llama (hidden size 64): two layers int4, the note names what stayed.
    partly = load_model(str(tiny_llama), LoadOptions(precision="int4"))
    assert any("2 layers int4, 12 left as they were" in str(n) for n in partly.notes)
    monkeypatch.setattr(int4, "fits", lambda linear, group=128: False)
    with pytest.raises(ModelLoadError, match="none of .* layers"):
        load_model(str(tiny_llama), LoadOptions(precision="int4"))
    monkeypatch.setattr(int4, "unsupported_reason", lambda device: "no kernel here")
    with pytest.raises(ModelLoadError, match="no kernel here.*4bit \\(NF4\\) or bf16"):
        loader.check_loadable(str(tiny_llama), LoadOptions(precision="int4"))
    # On a GPU: int4 is bf16 compute, and auto stays NF4 (QLoRA's precision).
    monkeypatch.setattr(int4, "unsupported_reason", lambda device: None)
    monkeypatch.setattr(loader, "_cuda_available", lambda: True)
    monkeypatch.setattr(loader, "_bitsandbytes_available", lambda: True)
    assert loader._choose(LoadOptions(precision="int4")) == ("cuda", "bfloat16", INT4_QUANTIZATION, [])
    assert loader._choose(LoadOptions())[2].startswith("4-bit NF4")


def test_encoder_decoder_models_are_refused(tiny_t5):
    from playground.models.loader import check_loadable

    with pytest.raises(ModelLoadError, match="decoder-only"):
        check_loadable(str(tiny_t5), LoadOptions(precision="int4"))  # before a switch frees anything
    with pytest.raises(ModelLoadError, match="decoder-only"):
        load_model(str(tiny_t5), LoadOptions(precision="int4"))


def test_a_kernel_that_disagrees_is_a_load_error(llama128, monkeypatch):
    monkeypatch.setattr(Int4Linear, "forward", lambda self, x: torch.zeros(x.shape[0], self.out_features))
    with pytest.raises(ModelLoadError, match="disagrees"):
        load_model(str(llama128), LoadOptions(precision="int4"))


def test_adapters_are_refused_on_int4(int4_loaded, llama128, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from playground.models.adapters import attach_adapter

    base = AutoModelForCausalLM.from_pretrained(str(llama128))
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    folder = tmp_path / "lora"
    lora.save_pretrained(folder)
    with pytest.raises(PlaygroundError, match="4bit \\(NF4\\) or bf16 to use adapters"):
        attach_adapter(int4_loaded, folder)
    assert int4_loaded.adapters == {}
    # The same adapter fits the model loaded without int4.
    assert attach_adapter(load_model(str(llama128), LoadOptions(precision="fp32")), folder) == "lora"
