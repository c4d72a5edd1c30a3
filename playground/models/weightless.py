"""The model of an app whose generation runs on an external engine: config, no weights.

With PLAYGROUND_ENGINE_URL set, loading a model reads only its tokenizer, config and
generation_config (templates, token counts, eos, decoding defaults); the weights stay with the
engine, which is the point when one machine cannot hold them. `WeightlessModel` stands where the
weights would be: it answers what those small files know and refuses everything else with
`WeightsElsewhere`, a message naming the feature and the engine instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from playground.errors import PlaygroundError


class WeightsElsewhere(PlaygroundError, AttributeError):
    """Work that needs the model's weights, asked of an app whose weights are on an external engine.

    An AttributeError too, so that code probing an optional attribute (`hasattr(model,
    "peft_config")`) hears "not here" rather than crashing."""


def weights_message(what: str, url: str) -> str:
    return (
        f"{what} needs the model's weights, and this playground holds none: generation runs on the "
        f"external engine at {url} (PLAYGROUND_ENGINE_URL). Start the playground without "
        "PLAYGROUND_ENGINE_URL, on a machine that fits the model, for this."
    )


class WeightlessModel:
    """Stands in for a model whose weights live on the external engine at `url`."""

    def __init__(self, config: Any, generation_config: Any, url: str) -> None:
        import torch

        self.config = config
        self.generation_config = generation_config
        self.engine_url = url
        # Token ids are built here (templates, counts) before going out as text: a CPU tensor.
        self.device = torch.device("cpu")

    def parameters(self) -> Iterator[Any]:
        return iter(())

    def buffers(self) -> Iterator[Any]:
        return iter(())

    def modules(self) -> Iterator[Any]:
        return iter(())

    def named_modules(self) -> Iterator[Any]:
        return iter(())

    def get_memory_footprint(self) -> int:
        return 0

    def eval(self) -> WeightlessModel:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise WeightsElsewhere(
            weights_message("Running the model here (scoring, perplexity)", self.engine_url)
        )

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set above: anything that would touch the weights.
        if name.startswith("__"):
            raise AttributeError(name)
        raise WeightsElsewhere(weights_message(f"This feature (model.{name})", self.engine_url))


def is_weightless(loaded: Any) -> bool:
    """Whether a loaded model's weights are on an external engine rather than in this process."""
    return isinstance(getattr(loaded, "model", None), WeightlessModel)


def require_weights(loaded: Any, what: str) -> None:
    """Refuse `what` (a feature, named for the message) for a model whose weights are elsewhere."""
    if is_weightless(loaded):
        raise WeightsElsewhere(weights_message(what, loaded.model.engine_url))


def refuse_weightless_model(model: Any, what: str) -> None:
    """`require_weights` for code handed the model itself (perplexity takes model, tokenizer)."""
    if isinstance(model, WeightlessModel):
        raise WeightsElsewhere(weights_message(what, model.engine_url))
