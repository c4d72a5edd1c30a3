"""The one sampler: next tokens for 1..N rows, each with its own decoding settings and generator.

`process_logits` applies what `generate()`'s processors apply, in their order (repetition
penalty, no-repeat n-grams; then for sampling rows temperature, top-k, top-p, min-p,
typical-p), vectorised over rows whose settings differ. `sample_next_token` takes the argmax
for greedy rows and draws sampling rows with their own seeded `torch.Generator` (Gumbel-max:
the argmax of scores plus Gumbel noise is a draw from their softmax), so a row's tokens depend
only on its prompt, settings and seed, never on which rows share its batch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from playground.generation.settings import DecodingSettings


@dataclass
class RowSampling:
    """One row's decoding state: settings, its random generator and the tokens it has seen."""

    settings: DecodingSettings
    tokens: list[int]  # prompt and generated tokens (penalties and n-grams look at both)
    generator: torch.Generator | None = None
    # Token ids generation may not end with yet (eos during a model's min_new_tokens).
    held_back: tuple[int, ...] = ()
    hold_for: int = 0
    generated: int = 0
    # Draws of its generator to pass over before the first one it uses: a branch that starts
    # after n tokens of another answer continues that answer's random stream.
    skip_draws: int = 0
    _seen: torch.Tensor | None = field(default=None, repr=False)
    _ngrams: dict[tuple[int, ...], set[int]] = field(default_factory=dict, repr=False)

    @classmethod
    def start(
        cls,
        settings: DecodingSettings,
        prompt_ids: Sequence[int],
        device: torch.device | str = "cpu",
        held_back: Sequence[int] = (),
        hold_for: int = 0,
        skip_draws: int = 0,
    ) -> RowSampling:
        generator = None
        if settings.do_sample:
            seed = random.randrange(2**31) if settings.seed is None else int(settings.seed)
            generator = torch.Generator(device=device).manual_seed(seed)
        row = cls(settings, [int(t) for t in prompt_ids], generator, tuple(held_back), int(hold_for))
        row.skip_draws = int(skip_draws) if generator is not None else 0
        n = int(settings.no_repeat_ngram_size)
        for end in range(n, len(row.tokens) + 1) if n > 0 else ():
            row._add_ngram(row.tokens[end - n : end])
        return row

    def _add_ngram(self, gram: list[int]) -> None:
        self._ngrams.setdefault(tuple(gram[:-1]), set()).add(gram[-1])

    def seen_mask(self, vocab: int, device: torch.device) -> torch.Tensor:
        if self._seen is None or self._seen.shape[0] != vocab or self._seen.device != device:
            self._seen = torch.zeros(vocab, dtype=torch.bool, device=device)
            ids = [t for t in self.tokens if t < vocab]
            if ids:
                self._seen[torch.tensor(ids, device=device)] = True
        return self._seen

    def banned(self) -> list[int]:
        """Tokens that would repeat an n-gram of no_repeat_ngram_size."""
        n = int(self.settings.no_repeat_ngram_size)
        if n <= 0 or len(self.tokens) + 1 < n:
            return []
        prefix = tuple(self.tokens[len(self.tokens) - n + 1 :]) if n > 1 else ()
        return sorted(self._ngrams.get(prefix, ()))

    def observe(self, token: int) -> None:
        """Record the token this row took."""
        self.tokens.append(int(token))
        self.generated += 1
        if self._seen is not None and token < self._seen.shape[0]:
            self._seen[int(token)] = True
        n = int(self.settings.no_repeat_ngram_size)
        if n > 0 and len(self.tokens) >= n:
            self._add_ngram(self.tokens[-n:])


def _column(rows: Sequence[RowSampling], value, dtype, device) -> torch.Tensor:
    return torch.tensor([value(r.settings) for r in rows], dtype=dtype).to(device)


def process_logits(logits: torch.Tensor, rows: Sequence[RowSampling]) -> torch.Tensor:
    """Float32 scores [N, V] after each row's processors; softmax of a sampling row is its distribution."""
    scores = logits.to(torch.float32, copy=True)
    device, vocab = scores.device, scores.shape[1]
    penalised = [i for i, r in enumerate(rows) if r.settings.repetition_penalty != 1.0]
    if penalised:
        index = torch.tensor(penalised, device=device)
        seen = torch.stack([rows[i].seen_mask(vocab, device) for i in penalised])
        penalty = _column([rows[i] for i in penalised], lambda s: s.repetition_penalty, torch.float32, device)
        part = scores[index]
        hit = torch.where(part < 0, part * penalty[:, None], part / penalty[:, None])
        scores[index] = torch.where(seen, hit, part)
    banned = [(i, t) for i, r in enumerate(rows) for t in r.banned() if t < vocab]
    banned += [
        (i, t) for i, r in enumerate(rows) if r.generated < r.hold_for for t in r.held_back if t < vocab
    ]
    if banned:
        at = torch.tensor(banned, device=device)
        scores[at[:, 0], at[:, 1]] = -math.inf
    sampling = [i for i, r in enumerate(rows) if r.settings.do_sample]
    if sampling:
        index = torch.tensor(sampling, device=device)
        scores[index] = warp(scores[index], [rows[i].settings for i in sampling])
    return scores


def warp(scores: torch.Tensor, settings: Sequence[DecodingSettings]) -> torch.Tensor:
    """Temperature, top-k, top-p, min-p, typical-p per row: transformers' warpers, in its order."""
    device, vocab = scores.device, scores.shape[1]

    def col(value, dtype=torch.float32) -> torch.Tensor:
        return torch.tensor([value(s) for s in settings], dtype=dtype).to(device)[:, None]

    scores = scores / col(lambda s: s.temperature)
    if any(s.top_k > 0 for s in settings):
        k = col(lambda s: min(s.top_k, vocab) if s.top_k > 0 else vocab, torch.long)
        top = scores.topk(int(k.max()), dim=-1).values
        kth = top.gather(1, k - 1)
        scores = scores.masked_fill(scores < kth, -math.inf)
    if any(s.top_p < 1 for s in settings):
        top_p = col(lambda s: s.top_p)
        ascending, order = scores.sort(dim=-1, descending=False)
        drop = ascending.softmax(dim=-1).cumsum(dim=-1) <= (1 - top_p)
        drop[:, -1] = False  # keep at least the most likely token
        scores = scores.masked_fill(drop.scatter(1, order, drop) & (top_p < 1), -math.inf)
    if any(s.min_p > 0 for s in settings):
        probs = scores.softmax(dim=-1)
        drop = probs < col(lambda s: s.min_p) * probs.amax(dim=-1, keepdim=True)
        drop.scatter_(1, probs.argmax(dim=-1, keepdim=True), False)
        scores = scores.masked_fill(drop, -math.inf)
    if any(s.typical_p < 1 for s in settings):
        mass = col(lambda s: s.typical_p)
        normalized = torch.log_softmax(scores, dim=-1)
        entropy = -(normalized * normalized.exp()).nansum(-1, keepdim=True)
        shifted, order = torch.sort((-normalized - entropy).abs(), descending=False)
        cumulative = scores.gather(-1, order).softmax(dim=-1).cumsum(dim=-1)
        last = (cumulative < mass).sum(dim=1).clamp(max=vocab - 1)
        drop = shifted > shifted.gather(1, last.view(-1, 1))
        drop[:, :1] = False
        scores = scores.masked_fill(drop.scatter(1, order, drop) & (mass < 1), -math.inf)
    return scores


def sample_next_token(logits: torch.Tensor, rows: Sequence[RowSampling]) -> torch.Tensor:
    """Next token per row [N] (long, on the logits' device): greedy rows argmax, others a draw."""
    return draw_next_token(process_logits(logits, rows), rows)


def draw_next_token(scores: torch.Tensor, rows: Sequence[RowSampling]) -> torch.Tensor:
    """Next token per row from scores that `process_logits` made (for callers that keep them)."""
    chosen = scores.argmax(dim=-1)
    for i, row in enumerate(rows):
        if row.generator is not None:
            for _ in range(row.skip_draws):
                torch.rand(scores.shape[1], generator=row.generator, device=scores.device)
            row.skip_draws = 0
            uniform = torch.rand(scores.shape[1], generator=row.generator, device=scores.device)
            chosen[i] = (scores[i] - torch.log(-torch.log(uniform))).argmax()
    return chosen
