"""Arena ratings: Bradley-Terry against hand-computed fits, ties, intervals, win rates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from playground.arena.ratings import Vote, bradley_terry, ratings, win_counts, win_rates


def _votes(a: str, b: str, a_wins: int, b_wins: int, ties: int = 0) -> list[Vote]:
    return [Vote(a, b, "a")] * a_wins + [Vote(a, b, "b")] * b_wins + [Vote(a, b, "tie")] * ties


def test_two_contestants_match_the_closed_form():
    # For two players the Bradley-Terry fit is p_A / p_B = wins_A / wins_B (plus the small prior:
    # a tenth of a tie each way), so the Elo gap is 400 * log10(3.05 / 1.05).
    got = {r.contestant: r for r in ratings(_votes("A", "B", 3, 1), bootstrap=0)}
    assert got["A"].rating - got["B"].rating == pytest.approx(400 * math.log10(3.05 / 1.05), abs=1e-6)
    assert (got["A"].rating + got["B"].rating) / 2 == pytest.approx(1000)
    assert got["A"].votes == 4 and got["A"].wins == 3


def test_three_contestants_satisfy_the_likelihood_equations():
    votes = _votes("A", "B", 6, 2) + _votes("B", "C", 5, 3) + _votes("A", "C", 7, 1, ties=2)
    names = ["A", "B", "C"]
    wins = win_counts(votes, names) + 0.05 * (1 - np.eye(3))
    p = 10 ** ((bradley_terry(win_counts(votes, names)) - 1000) / 400)
    games = wins + wins.T
    # At the maximum, each contestant's expected wins equal its actual wins.
    expected = (games * p[:, None] / (p[:, None] + p[None, :])).sum(axis=1)
    assert expected == pytest.approx(wins.sum(axis=1), rel=1e-6)
    order = [r.contestant for r in ratings(votes, bootstrap=0)]
    assert order == ["A", "B", "C"]


def test_ties_and_both_bad_count_half_each_way():
    votes = [Vote("A", "B", "tie"), Vote("A", "B", "both_bad")]
    got = {r.contestant: r for r in ratings(votes, bootstrap=0)}
    assert got["A"].rating == pytest.approx(got["B"].rating)
    assert got["A"].wins == 1.0


def test_an_unbeaten_contestant_stays_finite():
    got = ratings(_votes("A", "B", 5, 0), bootstrap=0)
    assert all(math.isfinite(r.rating) for r in got)
    assert got[0].contestant == "A"


def test_the_interval_contains_the_rating_and_shrinks_with_more_votes():
    few = {r.contestant: r for r in ratings(_votes("A", "B", 6, 4), bootstrap=300, seed=1)}
    many = {r.contestant: r for r in ratings(_votes("A", "B", 60, 40), bootstrap=300, seed=1)}
    for got in (few, many):
        assert got["A"].low <= got["A"].rating <= got["A"].high
    assert many["A"].high - many["A"].low < 0.6 * (few["A"].high - few["A"].low)


def test_win_rates_say_who_beat_whom_and_nan_where_they_never_met():
    names, rates = win_rates(_votes("A", "B", 3, 1) + _votes("B", "C", 1, 1))
    assert names == ["A", "B", "C"]
    assert rates[0, 1] == pytest.approx(0.75) and rates[1, 0] == pytest.approx(0.25)
    assert rates[1, 2] == pytest.approx(0.5)
    assert math.isnan(rates[0, 2])


def test_no_votes_give_no_ratings():
    assert ratings([]) == []
