"""What one person may ask of a shared playground at once; every limit is an environment setting.

On a single-user playground (no login, bound to this machine) only the limits that protect the
machine itself apply (files parsed at once); shared, all of them do. 0 turns a limit off.

PLAYGROUND_MAX_JOBS_PER_USER      training jobs one owner may have queued or running (shared: 2)
PLAYGROUND_MAX_TRAIN_STEPS        optimizer steps one training job may run (shared: 2000)
PLAYGROUND_MAX_NEW_TOKENS         new tokens one generation may ask for (shared: 1024)
PLAYGROUND_MAX_MODEL_REQUESTS     model requests (chat, evaluation, preview...) one person may have
                                  waiting or running at once (shared: 2)
PLAYGROUND_MAX_ROWS               rows one data file may have (shared: 200000)
PLAYGROUND_PARSE_CONCURRENCY      data files read at the same time, by everyone together (1)
PLAYGROUND_UPLOAD_QUOTA_MB        stored uploads per owner before the oldest are removed (500)
PLAYGROUND_UPLOAD_MAX_AGE_DAYS    stored uploads older than this are removed (30)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from playground.errors import PlaygroundError
from playground.messages import Message


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PlaygroundError(f"{name} must be a whole number (0 = no limit), not {raw!r}.") from None
    return max(0, value)


@dataclass(frozen=True)
class Limits:
    jobs_per_user: int = 0
    train_steps: int = 0
    new_tokens: int = 0
    model_requests: int = 0
    rows: int = 0
    parse_concurrency: int = 1
    upload_quota_mb: int = 500
    upload_max_age_days: int = 30

    @classmethod
    def from_env(cls, shared: bool) -> Limits:
        def pick(name: str, shared_default: int, local_default: int = 0) -> int:
            return _env_int(name, shared_default if shared else local_default)

        return cls(
            jobs_per_user=pick("PLAYGROUND_MAX_JOBS_PER_USER", 2),
            train_steps=pick("PLAYGROUND_MAX_TRAIN_STEPS", 2000),
            new_tokens=pick("PLAYGROUND_MAX_NEW_TOKENS", 1024),
            model_requests=pick("PLAYGROUND_MAX_MODEL_REQUESTS", 2),
            rows=pick("PLAYGROUND_MAX_ROWS", 200_000),
            parse_concurrency=max(1, _env_int("PLAYGROUND_PARSE_CONCURRENCY", 1)),
            upload_quota_mb=_env_int("PLAYGROUND_UPLOAD_QUOTA_MB", 500),
            upload_max_age_days=_env_int("PLAYGROUND_UPLOAD_MAX_AGE_DAYS", 30),
        )

    def check_new_tokens(self, n: int) -> None:
        if self.new_tokens and n > self.new_tokens:
            raise PlaygroundError(Message("limits.new_tokens", asked=n, most=self.new_tokens))

    def check_train_steps(self, total_steps: int) -> None:
        if self.train_steps and total_steps > self.train_steps:
            steps, most = f"{total_steps:,}", f"{self.train_steps:,}"
            raise PlaygroundError(Message("limits.train_steps", steps=steps, most=most))

    def check_rows(self, n_rows: int, label: str) -> None:
        if self.rows and n_rows > self.rows:
            raise PlaygroundError(
                Message("limits.rows", file=label, rows=f"{n_rows:,}", most=f"{self.rows:,}")
            )


def current_limits() -> Limits:
    """The limits of this process's deployment (read each time, so tests can change them)."""
    from playground.identity import Deployment

    return Limits.from_env(Deployment.from_env().shared)
