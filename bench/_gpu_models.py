"""7B-shaped models with random weights for GPU benchmarks (no download is possible there).

Speed depends on the shapes, not on the weights, so a Llama-2-7B- or Mistral-7B-shaped model
built from its config measures what the real one would. The weights are initialised on the
GPU (seconds, where the CPU would take minutes) and saved once, so that benches load them
through the real `load_model` path, quantization included (bitsandbytes NF4, and int4 tinygemm
from playground/models/int4.py). The tokenizer is char-level for Chinese (one token per
character, close to the homework's Llama tokenizers on Tang poems).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHAPES: dict[str, dict[str, Any]] = {
    "llama": dict(  # Llama-2-7B
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
    ),
    "mistral": dict(  # Mistral-7B-v0.1 (grouped-query attention, sliding window 4096)
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=32768,
        sliding_window=4096,
        rms_norm_eps=1e-5,
    ),
    "tiny": dict(  # for trying the benches on a CPU
        vocab_size=32000,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
    ),
}
LABELS = {"llama": "Llama-2-7B shape", "mistral": "Mistral-7B shape", "tiny": "tiny shape"}
TANG_SAMPLE = REPO / ".gpu" / "tang256.json"
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]


def build_tokenizer(texts: list[str]) -> Any:
    """One token per CJK character or punctuation mark, one per ASCII word."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pattern = Regex(r"[A-Za-z]+|\s|.")
    pieces: dict[str, None] = {}
    splitter = pre_tokenizers.Split(pattern, behavior="isolated")
    for text in texts:
        for piece, _ in splitter.pre_tokenize_str(text):
            pieces.setdefault(piece)
    vocab = {tok: i for i, tok in enumerate(SPECIALS + [p for p in pieces if p not in SPECIALS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = splitter
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'user' %}USER: {{ m['content'] }} "
        "{% else %}ASSISTANT: {{ m['content'] }}</s>{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    )
    return fast


def tang_pairs(n: int) -> list[tuple[str, str]]:
    """Homework-style (prompt, output) pairs from the carried Tang sample, else synthetic ones."""
    from playground.prompts.templates import TEMPLATES

    template = TEMPLATES["taiwan-llama"]
    if TANG_SAMPLE.is_file():
        rows = json.loads(TANG_SAMPLE.read_text("utf-8"))
    else:
        rows = _synthetic_rows(256)
    rows = (rows * (n // len(rows) + 1))[:n]
    return [(template.render(r["instruction"] + r["input"]), r["output"]) for r in rows]


def _synthetic_rows(n: int) -> list[dict[str, str]]:
    import random

    rng = random.Random(0)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]

    def line(k: int) -> str:
        return "".join(rng.choice(chars) for _ in range(k)) + "，"

    rows = []
    for _ in range(n):
        k = rng.choice([5, 7])
        rows.append(
            {
                "instruction": "以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。",
                "input": line(k) + line(k),
                "output": "".join(line(k) for _ in range(rng.choice([2, 4, 6]))),
            }
        )
    return rows


def tokenizer_for_bench() -> Any:
    from playground.prompts.templates import TEMPLATES

    texts = [p + o for p, o in tang_pairs(256)]
    texts.append(TEMPLATES["taiwan-llama"].text + " Write a short story about a robot learning to paint.")
    return build_tokenizer(texts)


def build_model(shape: str, device: str = "cuda", dtype: str = "bfloat16", seed: int = 0) -> Any:
    """A random-weight model of `shape`, initialised directly on `device`."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig

    cfg_cls = MistralConfig if shape == "mistral" else LlamaConfig
    config = cfg_cls(
        **SHAPES[shape], bos_token_id=1, eos_token_id=2, pad_token_id=3, tie_word_embeddings=False
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    return model.eval()


def ensure_saved(shape: str, root: Path) -> Path:
    """Build and save the model once under `root`; later calls reuse the folder."""
    folder = root / shape
    if (folder / "config.json").is_file():
        return folder
    model = build_model(shape, device="cuda" if _cuda() else "cpu")
    tmp = root / f".tmp-{shape}"
    model.save_pretrained(tmp)
    tokenizer_for_bench().save_pretrained(tmp)
    del model
    tmp.rename(folder)
    return folder


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def weight_bytes(model: Any) -> int:
    """Bytes read per decode step: every parameter and buffer (quantized weights as stored)."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total


def copy_bandwidth(gib: float = 4.0) -> float:
    """Device-to-device copy rate in bytes/s, counting bytes read plus bytes written."""
    import torch

    n = int(gib * (1 << 30)) // 2
    a = torch.randn(n, dtype=torch.bfloat16, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(10):
        start.record()
        b.copy_(a)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    times.sort()
    del a, b
    return 2 * n * 2 / times[len(times) // 2]
