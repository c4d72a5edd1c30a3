"""Issue 22 (2): training data is tokenised through Dataset.map, and a second run reuses the result."""

from __future__ import annotations

import pytest

from playground.data_types import Example
from playground.training import formatting
from playground.training.token_cache import format_all, token_cache_dir
from tests.tiny_models import build_tokenizer

EXAMPLES = [
    Example(str(i), "Say the colour", f" {i}", ["red", "blue", "gold"][i % 3] + " fox") for i in range(9)
]


@pytest.fixture
def calls(monkeypatch) -> list[str]:
    """Every example format_example tokenises, by id."""
    seen: list[str] = []
    real = formatting.format_example

    def counting(example, *args, **kwargs):
        seen.append(example.id)
        return real(example, *args, **kwargs)

    monkeypatch.setattr(formatting, "format_example", counting)
    return seen


def test_the_second_run_of_a_config_loads_the_tokens_instead_of_tokenising(calls):
    tok = build_tokenizer()
    first = format_all(EXAMPLES, tok, "alpaca", "masked_prompt", 64)
    assert sorted(calls) == sorted(e.id for e in EXAMPLES)
    direct = [formatting.format_example(e, tok, "alpaca", "masked_prompt", 64) for e in EXAMPLES]
    assert first == direct  # the same tokens, labels and prompt lengths as tokenising one by one
    [cache_file] = token_cache_dir().glob("*.arrow")

    calls.clear()
    again = format_all(EXAMPLES, tok, "alpaca", "masked_prompt", 64)
    assert calls == [] and again == first  # nothing tokenised: read from the cache file
    assert list(token_cache_dir().glob("*.arrow")) == [cache_file]

    # Whatever changes the tokens makes a new entry: data, settings, template.
    for changed in (
        lambda: format_all(EXAMPLES[:-1], tok, "alpaca", "masked_prompt", 64),
        lambda: format_all(EXAMPLES, tok, "alpaca", "full_text", 64),
        lambda: format_all(EXAMPLES, tok, "alpaca", "masked_prompt", 12),
        lambda: format_all(EXAMPLES, tok, "taiwan-llama", "masked_prompt", 64),
    ):
        calls.clear()
        changed()
        assert calls, "a changed config must be tokenised again"
    assert len(list(token_cache_dir().glob("*.arrow"))) == 5


def test_a_changed_tokenizer_is_not_served_stale_tokens(calls):
    tok = build_tokenizer()
    format_all(EXAMPLES, tok, "alpaca", "masked_prompt", 64)
    other = build_tokenizer()
    other.add_tokens(["colour"])  # splits "colour" differently from here on
    calls.clear()
    retokenised = format_all(EXAMPLES, other, "alpaca", "masked_prompt", 64)
    assert calls and retokenised == [
        formatting.format_example(e, other, "alpaca", "masked_prompt", 64) for e in EXAMPLES
    ]
