"""Stop strings: the text rule, and generation that ends at one and cuts it off."""

from __future__ import annotations

import threading

import pytest

from playground.generation import DecodingSettings, stream_generate
from playground.generation.compare import RowRequest, generate_rows
from playground.generation.stops import cut_at_stop, find_stop, held_back, parse_stop_lines
from playground.generation.stream import generate_text


def test_earliest_stop_wins_and_is_cut_off():
    text = "A poem.\nUSER: next\n### Instruction: more"
    assert find_stop(text, ["### Instruction:", "USER:"]) == text.index("USER:")
    assert cut_at_stop(text, ["### Instruction:", "USER:"]) == ("A poem.\n", True)
    assert cut_at_stop(text, []) == (text, False)
    assert cut_at_stop(text, ["", "nowhere"]) == (text, False)
    assert cut_at_stop("USER: at once", ["USER:"]) == ("", True)


def test_partial_stop_at_the_end_is_held_back():
    assert held_back("the answer USE", ["USER:"]) == 3
    assert held_back("the answer U", ["USER:", "Q:"]) == 1
    assert held_back("the answer", ["USER:"]) == 0
    assert held_back("", ["USER:"]) == 0
    assert held_back("ends with USER:", ["USER:"]) == 0  # a whole stop is found, not held back


def test_stop_lines_unescape_newlines_and_drop_blanks():
    assert parse_stop_lines("USER:\n\\n\\nQ:\n  \nUSER:\n\\n") == ("USER:", "\n\nQ:", "\n")
    assert parse_stop_lines(None) == ()


def _free_answer(embedded_model, prompt: str, n: int = 40) -> str:
    return generate_text(embedded_model, prompt, DecodingSettings(do_sample=False, max_new_tokens=n)).text


@pytest.fixture(scope="module")
def prompt_and_answer(embedded_model):
    prompt = "USER: Count from one to twenty in words, separated by commas. ASSISTANT:"
    return prompt, _free_answer(embedded_model, prompt)


def _stop_inside(answer: str) -> str:
    """A stop string taken from the middle of the model's own free answer."""
    words = answer.split()
    assert len(words) > 4, answer
    return words[3]


def test_streaming_ends_at_a_stop_string_and_never_shows_it(embedded_model, prompt_and_answer):
    prompt, answer = prompt_and_answer
    stop_text = _stop_inside(answer)
    settings = DecodingSettings(do_sample=False, max_new_tokens=40, stop=(stop_text,))
    flag = threading.Event()
    updates = list(stream_generate(embedded_model, prompt, settings, flag))
    final = updates[-1]
    assert final.finished and not final.stopped  # ended by the stop string, not by the user
    assert final.text == answer[: answer.index(stop_text)]
    assert all(stop_text not in u.text for u in updates)
    assert final.new_tokens < 40  # generation itself ended early


def test_batched_rows_are_cut_at_their_own_stop(embedded_model, prompt_and_answer):
    prompt, _ = prompt_and_answer
    plain = DecodingSettings(do_sample=False, max_new_tokens=40)
    [free] = generate_rows(embedded_model, [RowRequest(prompt, plain)])
    stop_text = _stop_inside(free.text)
    rows = generate_rows(
        embedded_model, [RowRequest(prompt, plain), RowRequest(prompt, plain.with_(stop=(stop_text,)))]
    )
    # Same call, same prompt: the rows agree up to the stop string (a batch of two rounds a little
    # differently from a batch of one, so late tokens may differ from `free`).
    assert stop_text in rows[0].text
    assert rows[1].text == rows[0].text[: rows[0].text.index(stop_text)]
