"""Generation service: decoding settings, streaming generation, comparisons."""

from playground.generation.settings import GREEDY, PRESETS, DecodingSettings
from playground.generation.stream import GenerationUpdate, generate_text, stream_generate

__all__ = ["GREEDY", "PRESETS", "DecodingSettings", "GenerationUpdate", "generate_text", "stream_generate"]
