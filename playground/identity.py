"""Who is asking, and what they may change: the one home of the ownership rule.

With login (PLAYGROUND_AUTH) a person is their user name; without it, their browser session.
What someone creates (jobs, leaderboard runs, recipes, uploads) is stamped with their owner id.
Its owner and the admins (PLAYGROUND_ADMINS) may change or delete it; everyone else reads it.

Without login and bound to this machine only, the app is single-user and that user is the
admin (it is their machine). Shared without login, nobody is an admin: no one can load models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from playground.errors import PlaygroundError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Deployment:
    """How the app is reached: with login or not, by one person or several."""

    login: bool = False
    shared: bool = False
    admins: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, host: str | None = None) -> Deployment:
        """Shared when login is on, PLAYGROUND_SHARED is set, or the app listens beyond this machine."""
        login = bool(os.environ.get("PLAYGROUND_AUTH", "").strip())
        public_host = host is not None and host not in LOOPBACK
        admins = frozenset(a.strip() for a in os.environ.get("PLAYGROUND_ADMINS", "").split(",") if a.strip())
        return cls(
            login=login,
            shared=login or public_host or _truthy(os.environ.get("PLAYGROUND_SHARED")),
            admins=admins,
        )

    def owner(self, username: str | None, session: str | None) -> Owner:
        """The owner for a request: its logged-in user, else its browser session."""
        if username:
            return Owner(f"user:{username}", is_admin=username in self.admins)
        return Owner(f"session:{session or 'local'}", is_admin=not self.shared)


@dataclass(frozen=True)
class Owner:
    """One person (or session) using the app."""

    id: str
    is_admin: bool = False

    @property
    def label(self) -> str:
        return display_owner(self.id)

    def can_manage(self, owner_id: str | None) -> bool:
        """Owners manage their own things; admins everything (including things without an owner)."""
        return self.is_admin or (owner_id is not None and owner_id == self.id)

    def can_use(self, owner_id: str | None) -> bool:
        """Whether this person may run something (an adapter): its owner and admins may, and
        everyone may use what has no owner or the operator's (put in place, not made in the app)."""
        return owner_id in (None, SYSTEM_ID) or self.can_manage(owner_id)

    def require(self, owner_id: str | None, what: str) -> None:
        if not self.can_manage(owner_id):
            raise PlaygroundError(
                f"{what} belongs to {display_owner(owner_id)}: only its owner or an admin can change it."
            )

    def require_admin(self, what: str) -> None:
        if not self.is_admin:
            raise PlaygroundError(
                f"{what} is for admins on a shared playground (PLAYGROUND_ADMINS lists them)."
            )


SYSTEM_ID = "system"
SYSTEM = Owner(SYSTEM_ID, is_admin=True)  # command-line tools and the app itself


def display_owner(owner_id: str | None, viewer: Owner | None = None) -> str:
    """How an owner is shown to others: a user name, or "another session" (session ids stay secret)."""
    if viewer is not None and owner_id == viewer.id:
        return "you"
    if not owner_id or owner_id == "system":
        return "the operator"
    kind, _, name = owner_id.partition(":")
    return name if kind == "user" else "another session"
