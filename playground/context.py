"""The services one running app shares between its tabs (no UI code here)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from playground.generation.remote import RemoteEngine
from playground.identity import Deployment
from playground.leaderboard import Leaderboard
from playground.models import ModelManager
from playground.training.jobs import JobManager

if TYPE_CHECKING:
    from playground.arena.votes import VoteStore


class AppContext:
    """Created once per app; services that touch disk are opened on first use."""

    def __init__(
        self,
        models: ModelManager | None = None,
        leaderboard: Leaderboard | None = None,
        deployment: Deployment | None = None,
    ) -> None:
        # PLAYGROUND_ENGINE_URL: generation goes to an external OpenAI-compatible engine.
        self.models = models or ModelManager(remote=RemoteEngine.from_env())
        # Login or not, shared or single-user: who owns what and who may load models.
        self.deployment = deployment or Deployment.from_env()
        if leaderboard is not None:
            self.__dict__["leaderboard"] = leaderboard

    @functools.cached_property
    def jobs(self) -> JobManager:
        # Recovers on construction: jobs whose worker died with the old app show as interrupted.
        remote = self.models.remote
        return JobManager(engine_url=remote.url if remote is not None else None)

    @functools.cached_property
    def votes(self) -> VoteStore:
        """Arena votes, in the leaderboard's database."""
        from playground.arena.votes import VoteStore

        return VoteStore(self.leaderboard)

    @functools.cached_property
    def leaderboard(self) -> Leaderboard:
        board = Leaderboard()
        # Runs still marked "running" belong to a process that is gone (the app restarted).
        board.mark_interrupted()
        return board
