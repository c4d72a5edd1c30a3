"""Decoding settings: one dataclass, turned into `generate()` keyword arguments in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from playground.errors import PlaygroundError


@dataclass(frozen=True)
class DecodingSettings:
    """`do_sample=False` is greedy (or beam search when num_beams > 1)."""

    do_sample: bool = True
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    num_beams: int = 1
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    max_new_tokens: int = 256
    seed: int | None = 0
    # Tokens below min_p x the top token's probability are dropped (0 = off).
    min_p: float = 0.0
    # Locally typical sampling's mass (1 = off).
    typical_p: float = 1.0
    # Generation ends once the answer contains one of these; the string itself is cut off.
    stop: tuple[str, ...] = ()

    def validate(self) -> DecodingSettings:
        problems = []
        if self.do_sample and self.temperature <= 0:
            problems.append("temperature must be above 0 when sampling (use greedy for 0)")
        if not 0 < self.top_p <= 1:
            problems.append("top-p must be in (0, 1]")
        if self.top_k < 0:
            problems.append("top-k must be 0 (off) or more")
        if self.num_beams < 1:
            problems.append("beams must be 1 or more")
        if self.max_new_tokens < 1:
            problems.append("max new tokens must be 1 or more")
        if self.repetition_penalty <= 0:
            problems.append("repetition penalty must be above 0")
        if not 0 <= self.min_p < 1:
            problems.append("min-p must be in [0, 1)")
        if not 0 < self.typical_p <= 1:
            problems.append("typical-p must be in (0, 1]")
        if self.no_repeat_ngram_size < 0:
            problems.append("no-repeat n-gram size must be 0 (off) or more")
        if problems:
            raise PlaygroundError("Decoding settings: " + "; ".join(problems) + ".")
        return self

    @property
    def mode(self) -> str:
        """Columns with the same mode can share one batched generate call."""
        if self.num_beams > 1:
            return "beam"
        return "sample" if self.do_sample else "greedy"

    def generate_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "max_new_tokens": int(self.max_new_tokens),
            "do_sample": bool(self.do_sample),
            "num_beams": int(self.num_beams),
            "repetition_penalty": float(self.repetition_penalty),
            "no_repeat_ngram_size": int(self.no_repeat_ngram_size),
        }
        if self.do_sample:
            kw.update(temperature=float(self.temperature), top_p=float(self.top_p), top_k=int(self.top_k))
            if self.min_p > 0:
                kw["min_p"] = float(self.min_p)
            if self.typical_p < 1:
                kw["typical_p"] = float(self.typical_p)
        else:
            # Explicit neutral values, so a model's generation_config cannot sneak sampling back in.
            kw.update(temperature=None, top_p=None, top_k=None)
        if self.num_beams > 1:
            kw["length_penalty"] = float(self.length_penalty)
            kw["early_stopping"] = True
        return kw

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecodingSettings:
        names = {f.name for f in fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        if "stop" in kept:  # JSON brings a list back
            kept["stop"] = tuple(kept["stop"] or ())
        return cls(**kept)

    def with_(self, **changes: Any) -> DecodingSettings:
        return replace(self, **changes)


GREEDY = DecodingSettings(do_sample=False)

# The homework's decoding cases (Hung-yi Lee GenAI HW: Tang-poem continuation).
PRESETS: dict[str, DecodingSettings] = {
    "greedy": GREEDY,
    "focused (T 0.1, top-p 0.3, no-repeat 3)": DecodingSettings(
        temperature=0.1, top_p=0.3, no_repeat_ngram_size=3
    ),
    "creative (T 1.2, top-k 10, top-p 0.9)": DecodingSettings(temperature=1.2, top_k=10, top_p=0.9),
    "beams 1": DecodingSettings(do_sample=False, num_beams=1),
    "beams 3": DecodingSettings(do_sample=False, num_beams=3),
    "beams 5": DecodingSettings(do_sample=False, num_beams=5),
    "default sampling (T 0.7, top-p 0.9)": DecodingSettings(),
}


# generate() options that add logits processors the sampler (sampler.py) does not implement: a
# decode loop hands a model whose generation_config sets any of them back to generate().
UNSAMPLED_GENERATION_OPTIONS = (
    "suppress_tokens",
    "begin_suppress_tokens",
    "bad_words_ids",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "sequence_bias",
    "min_length",
    "exponential_decay_length_penalty",
    "encoder_repetition_penalty",
    "epsilon_cutoff",
    "eta_cutoff",
    "guidance_scale",
    "watermarking_config",
)


def generation_config_option(model: Any, options: tuple[str, ...]) -> str | None:
    """The first of `options` that the model's generation_config sets to other than the default
    (each adds a logits processor or criterion that a decode loop must implement to honour it)."""
    gen = getattr(model, "generation_config", None)
    if gen is None:
        return None
    from transformers import GenerationConfig

    default = GenerationConfig()
    return next((key for key in options if getattr(gen, key, None) != getattr(default, key, None)), None)
