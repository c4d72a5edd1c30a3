"""The one parser for typed lists of numbers (seeds, k values, sweep values)."""

from __future__ import annotations

import pytest

from playground.errors import PlaygroundError
from playground.number_lists import list_items, parse_number_list


def test_commas_spaces_and_new_lines_separate_items():
    assert list_items(" 1, 2 3\n4,,5 ") == ["1", "2", "3", "4", "5"]
    assert list_items(None) == [] and list_items("  ") == []
    assert parse_number_list("0, 1 2", "Seeds") == [0, 1, 2]
    assert parse_number_list("0.1, 0.5 1", "temperature", float) == [0.1, 0.5, 1.0]
    assert parse_number_list("", "Seeds") == []


@pytest.mark.parametrize("text", ["1, two", "1.5", "1;2", "0x10"])
def test_a_bad_item_names_the_setting_and_what_was_typed(text):
    with pytest.raises(PlaygroundError, match=r"Seeds must be whole numbers separated by commas, not") as err:
        parse_number_list(text, "Seeds")
    assert repr(text) in str(err.value)
    with pytest.raises(PlaygroundError, match="top-p must be numbers separated"):
        parse_number_list("0.5, high", "top-p", float)
