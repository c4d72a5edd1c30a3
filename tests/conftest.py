from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tiny_models import build_causal_lm

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own data and adapters folders; the model cache is shared."""
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PLAYGROUND_ADAPTERS_DIR", str(tmp_path / "adapters"))
    os.environ.setdefault("PLAYGROUND_CACHE_DIR", str(Path.home() / ".cache" / "playground"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return build_causal_lm(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_mistral(tmp_path_factory) -> Path:
    return build_causal_lm(tmp_path_factory.mktemp("tiny-mistral"), "mistral")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present (fresh clone)")
    return SHARED


@pytest.fixture(scope="session")
def embedded_model():
    """The real embedded SmolLM2 (converted once into the shared cache)."""
    from playground.models import EMBEDDED_KEY, load_model

    return load_model(EMBEDDED_KEY)


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> Path:
    from tests.tiny_models import build_seq2seq_lm

    return build_seq2seq_lm(tmp_path_factory.mktemp("tiny-t5"))
