"""Ratings from pairwise votes: Bradley-Terry strengths on the Elo scale, with bootstrap intervals.

A vote says which of two contestants answered better, or that neither did (a tie; "both bad"
counts as a tie too, as in Chatbot Arena). Bradley-Terry gives each contestant a strength p with
P(i beats j) = p_i / (p_i + p_j); a tie counts as half a win each way. The strengths are fitted
by Hunter's minorize-maximize iteration (the maximum-likelihood fit, no learning rate to tune)
and shown on the Elo scale: 400 * log10(p) around 1000, so 100 points mean 64% expected wins.
Intervals come from refitting on votes resampled with replacement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Outcome = Literal["a", "b", "tie", "both_bad"]
OUTCOMES: tuple[Outcome, ...] = ("a", "b", "tie", "both_bad")
SCALE, CENTRE = 400.0, 1000.0


@dataclass(frozen=True)
class Vote:
    a: str
    b: str
    outcome: Outcome


@dataclass(frozen=True)
class Rating:
    contestant: str
    rating: float
    low: float  # the bootstrap interval's ends (equal to `rating` with no resampling)
    high: float
    votes: int
    wins: float  # ties count half


def win_counts(votes: Sequence[Vote], names: Sequence[str]) -> np.ndarray:
    """wins[i, j]: how often i beat j, ties counting half to each."""
    index = {n: i for i, n in enumerate(names)}
    wins = np.zeros((len(names), len(names)))
    for v in votes:
        i, j = index[v.a], index[v.b]
        if v.outcome == "a":
            wins[i, j] += 1
        elif v.outcome == "b":
            wins[j, i] += 1
        else:
            wins[i, j] += 0.5
            wins[j, i] += 0.5
    return wins


def bradley_terry(wins: np.ndarray, iterations: int = 1000, tolerance: float = 1e-10) -> np.ndarray:
    """Elo-scaled strengths from a win matrix, centred so that their mean is CENTRE.

    A tiny prior (one tenth of a tie against every other contestant) keeps a contestant that never
    lost (or never won) finite, as the maximum-likelihood fit alone would send it to infinity."""
    n = len(wins)
    if n == 0:
        return np.zeros(0)
    wins = wins + 0.05 * (1 - np.eye(n))
    games = wins + wins.T
    won = wins.sum(axis=1)
    p = np.ones(n)
    for _ in range(iterations):
        denominator = (games / (p[:, None] + p[None, :])).sum(axis=1)
        new = won / denominator
        new /= np.exp(np.log(new).mean())
        if np.max(np.abs(new - p)) < tolerance:
            p = new
            break
        p = new
    log_p = np.log10(p)
    return SCALE * (log_p - log_p.mean()) + CENTRE


def ratings(
    votes: Sequence[Vote], bootstrap: int = 200, confidence: float = 0.95, seed: int = 0
) -> list[Rating]:
    """One Rating per contestant, best first; intervals from `bootstrap` resamples of the votes."""
    names = sorted({v.a for v in votes} | {v.b for v in votes})
    if not names:
        return []
    wins = win_counts(votes, names)
    point = bradley_terry(wins)
    low, high = point.copy(), point.copy()
    if bootstrap > 0 and len(votes) > 1:
        rng = np.random.default_rng(seed)
        samples = np.empty((bootstrap, len(names)))
        for k in range(bootstrap):
            drawn = rng.integers(0, len(votes), len(votes))
            samples[k] = bradley_terry(win_counts([votes[i] for i in drawn], names))
        tail = (1 - confidence) / 2 * 100
        low, high = np.percentile(samples, [tail, 100 - tail], axis=0)
    games = wins + wins.T
    out = [
        Rating(
            name, float(point[i]), float(low[i]), float(high[i]), int(games[i].sum()), float(wins[i].sum())
        )
        for i, name in enumerate(names)
    ]
    return sorted(out, key=lambda r: -r.rating)


def win_rates(votes: Sequence[Vote]) -> tuple[list[str], np.ndarray]:
    """Contestants and the matrix of how often the row's contestant beat the column's (NaN where
    the two never met; ties count half)."""
    names = sorted({v.a for v in votes} | {v.b for v in votes})
    wins = win_counts(votes, names)
    games = wins + wins.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(games > 0, wins / games, np.nan)
    return names, rates
