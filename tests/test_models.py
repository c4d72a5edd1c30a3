from __future__ import annotations

import threading
import time

import pytest
import torch

from playground.errors import ModelLoadError
from playground.models import EMBEDDED_KEY, LoadOptions, ModelManager, find_preset, load_model
from playground.models.loader import cpu_has_native_bf16
from playground.models.memory import MemoryBudget


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_mistral"])
def test_local_folder_loads_through_real_path(fixture, request):
    folder = request.getfixturevalue(fixture)
    loaded = load_model(str(folder), LoadOptions(precision="fp32"))
    assert loaded.device == "cpu" and loaded.dtype == "float32"
    assert type(loaded.model).__name__ == (
        "LlamaForCausalLM" if fixture == "tiny_llama" else "MistralForCausalLM"
    )
    assert loaded.model.dtype == torch.float32
    assert loaded.tokenizer.pad_token_id is not None
    assert loaded.context_length == 256


def test_four_bit_on_cpu_falls_back_and_says_so(tiny_llama):
    loaded = load_model(str(tiny_llama), LoadOptions(precision="4bit"))
    assert loaded.quantization is None
    assert any("CUDA" in str(n) for n in loaded.notes)
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert loaded.model.dtype == expected


def test_bf16_selectable(tiny_llama):
    assert load_model(str(tiny_llama), LoadOptions(precision="bf16")).model.dtype == torch.bfloat16


def test_clear_messages_for_bad_models(tmp_path, monkeypatch, tiny_llama):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache.*local folder|folder"):
        load_model("someone/no-such-model-xyz")
    with pytest.raises(ModelLoadError, match="neither a preset"):
        load_model("not a model id")
    with pytest.raises(ModelLoadError, match="No folder"):
        load_model(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(str(empty))
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((tiny_llama / "config.json").read_text())
    with pytest.raises(ModelLoadError, match="no weights"):
        load_model(str(no_weights))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="is an adapter"):
        load_model(str(adapter))
    with pytest.raises(ModelLoadError, match="Unknown precision"):
        LoadOptions(precision="3bit")


def test_presets_have_homework_templates():
    assert find_preset("yentinglin/Taiwan-LLM-7B-v2.0-chat").template == "taiwan-llama"
    assert find_preset("stablelm-3b-4e1t").template == "alpaca"
    assert find_preset(EMBEDDED_KEY).hf_id.endswith("SmolLM2-135M-Instruct")


def test_manager_switch_frees_previous_and_guards_use(tiny_llama, tiny_mistral):
    # Room for one model: switching evicts the first, once its user is done.
    manager = ModelManager(MemoryBudget(max_models=1))
    first = manager.load(str(tiny_llama), LoadOptions(precision="fp32"))
    assert manager.load(str(tiny_llama), LoadOptions(precision="fp32")) is first  # no reload
    order = []

    def user():
        with manager.use() as loaded:
            order.append(("use-start", loaded.name))
            time.sleep(0.5)
            order.append(("use-end", loaded.name))

    t = threading.Thread(target=user)
    t.start()
    time.sleep(0.1)
    second = manager.load(str(tiny_mistral), LoadOptions(precision="fp32"))
    order.append(("loaded", second.name))
    t.join()
    # The load waited for the running request; nobody saw a half-switched model.
    assert [o[0] for o in order] == ["use-start", "use-end", "loaded"]
    assert first.model is None  # freed
    assert manager.current is second


def test_embedded_default_answers(embedded_model):
    from playground.generation import GREEDY, generate_text

    prompt = embedded_model.default_template.render(
        "What is the capital of France?", tokenizer=embedded_model.tokenizer
    )
    out = generate_text(embedded_model, prompt, GREEDY.with_(max_new_tokens=20))
    assert "Paris" in out.text
    assert out.finished and not out.stopped
    assert embedded_model.tokenizer.eos_token == "<|im_end|>"


def test_failed_switch_keeps_a_model_loaded(tiny_llama, tmp_path, monkeypatch):
    manager = ModelManager(MemoryBudget(max_models=1))
    first = manager.load(str(tiny_llama), LoadOptions(precision="fp32"))
    with pytest.raises(ModelLoadError, match="No folder"):
        manager.load(str(tmp_path / "typo"))
    assert manager.current is first and first.model is not None  # nothing was freed

    # A failure while reading the weights (here: out of memory) brings the previous model back.
    import playground.models.manager as manager_module

    real = manager_module.load_model

    def failing(name, options=None, progress=None):
        if name == str(tmp_path / "big"):
            raise ModelLoadError("Out of GPU memory loading big.")
        return real(name, options, progress)

    big = tmp_path / "big"
    big.mkdir()
    for f in tiny_llama.iterdir():
        (big / f.name).symlink_to(f)
    monkeypatch.setattr(manager_module, "load_model", failing)
    with pytest.raises(ModelLoadError, match="previous model, tiny-llama.*loaded again"):
        manager.load(str(big), LoadOptions(precision="fp32"))
    assert manager.current is not None and manager.current.source == str(tiny_llama)
