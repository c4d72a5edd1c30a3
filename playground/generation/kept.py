"""What a row that asks for it (`Request.keep_top`) keeps of each decoding step.

Not the full vocabulary row (tens of thousands of floats per step) but its top K raw logits
with their ids, the row's logsumexp (so each kept raw probability is exact, not renormalised
over the K), the raw distribution's entropy, the chosen token, and the log-probabilities after
the row's processors at the kept ids. Each step's numbers stay on the device as two small
tensors; they are read back once, when the row ends, so keeping them adds no host sync.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

# Fixed columns after the 2K per-candidate ones: logsumexp, entropy, chosen raw logit, chosen after.
_TAIL = 4


@dataclass(frozen=True)
class KeptStep:
    """One step of a kept row; ids are the top K by raw logit, most likely first."""

    ids: tuple[int, ...]
    logits: tuple[float, ...]  # raw logits of `ids`
    logsumexp: float  # of the whole raw row
    entropy: float  # of the whole raw distribution, nats
    chosen: int
    chosen_logit: float  # raw
    after: tuple[float, ...]  # log-probabilities after the row's processors; -inf: removed
    chosen_after: float

    @property
    def raw_logprobs(self) -> list[float]:
        return [v - self.logsumexp for v in self.logits]

    @property
    def chosen_logprob(self) -> float:
        """The model's own log-probability of the chosen token (before any processor)."""
        return self.chosen_logit - self.logsumexp

    @property
    def kept_mass(self) -> float:
        """Raw probability held by the kept candidates (the rest is spread over the tail)."""
        return math.fsum(math.exp(v) for v in self.raw_logprobs)

    def forcing(self, token: int) -> KeptStep:
        """This step as if `token` had been taken (a branch): same candidates, another choice."""
        if token not in self.ids:
            raise ValueError(f"token {token} is not among this step's kept candidates")
        at = self.ids.index(token)
        return KeptStep(
            self.ids,
            self.logits,
            self.logsumexp,
            self.entropy,
            token,
            self.logits[at],
            self.after,
            self.after[at],
        )


def record_steps(
    logits: torch.Tensor, scores: torch.Tensor, chosen: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: top-k ids [N, k] and values [N, 2k + 4] (raw logits, after log-probs, tail).

    `logits` are the model's raw rows, `scores` what `sampler.process_logits` made of them."""
    raw = logits.float()
    k = min(int(k), raw.shape[-1])
    lse = raw.logsumexp(dim=-1, keepdim=True)
    logp = raw - lse
    entropy = -torch.special.xlogy(logp.exp(), logp.exp()).sum(dim=-1, keepdim=True)
    top_values, top_ids = raw.topk(k, dim=-1)
    after = scores.float().log_softmax(dim=-1)
    pick = chosen.view(-1, 1)
    values = torch.cat(
        [top_values, after.gather(1, top_ids), lse, entropy, raw.gather(1, pick), after.gather(1, pick)],
        dim=1,
    )
    return top_ids, values


def kept_steps(records: Sequence[tuple[torch.Tensor, torch.Tensor]], chosen: Sequence[int]) -> list[KeptStep]:
    """The host-side steps of one row from its `record_steps` slices (one read-back)."""
    if not records:
        return []
    ids = torch.stack([r[0] for r in records]).cpu().tolist()
    values = torch.stack([r[1] for r in records]).cpu().tolist()
    steps = []
    for step_ids, row, token in zip(ids, values, chosen, strict=True):
        k = len(step_ids)
        lse, entropy, chosen_logit, chosen_after = row[2 * k : 2 * k + _TAIL]
        steps.append(
            KeptStep(
                tuple(step_ids),
                tuple(row[:k]),
                lse,
                entropy,
                int(token),
                chosen_logit,
                tuple(row[k : 2 * k]),
                chosen_after,
            )
        )
    return steps
