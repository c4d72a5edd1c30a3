"""Who is calling the API: a Bearer key from PLAYGROUND_API_KEYS, under the same rules as the page.

PLAYGROUND_API_KEYS="key1,key2" or "key1:alice,key2:bob". A key with a user name acts as that
login's owner (its adapters, its limits, admin if PLAYGROUND_ADMINS lists it); a bare key is an
owner of its own ("api-key-1", ...). With no keys configured, a shared playground keeps the API
off, and a single-user one (bound to this machine, no login) answers its one user without a key.
Wrong keys count against the address as failed logins do, so keys cannot be guessed quickly.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass

from playground.api.errors import ApiError
from playground.identity import Deployment, Owner
from playground.login_throttle import LoginThrottle, lockout_message

SINGLE_USER_SESSION = "local"


@dataclass(frozen=True)
class ApiKeys:
    """Each configured key and the user name it acts for (None: an owner of its own)."""

    users: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def from_env(cls, value: str | None = None) -> ApiKeys:
        value = os.environ.get("PLAYGROUND_API_KEYS", "") if value is None else value
        users = []
        for item in filter(None, (x.strip() for x in value.split(","))):
            key, sep, user = item.partition(":")
            if not key or (sep and not user.strip()):
                raise ValueError("PLAYGROUND_API_KEYS must look like key1,key2 or key1:user1,key2:user2")
            users.append((key, user.strip() or None))
        return cls(tuple(users))

    def owner(self, presented: str, deployment: Deployment) -> Owner | None:
        """The owner a presented key acts for, or None when it is no key of ours."""
        found: Owner | None = None
        for n, (key, user) in enumerate(self.users, start=1):
            # Every key is compared, in constant time, so timing tells nothing about which matched.
            if hmac.compare_digest(key.encode(), presented.encode()) and found is None:
                found = deployment.owner(user, None) if user else Owner(f"api-key:{n}")
        return found


def bearer(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def api_caller(
    authorization: str | None,
    address: str,
    deployment: Deployment,
    keys: ApiKeys,
    throttle: LoginThrottle,
) -> Owner:
    """The owner a request acts as, or an ApiError (401, or 429 while its address is locked out)."""
    if not keys.users:
        if deployment.shared:
            raise ApiError(
                401,
                "The API is off on this shared playground: the operator turns it on with "
                "PLAYGROUND_API_KEYS (Bearer keys).",
                "api_off",
            )
        return deployment.owner(None, SINGLE_USER_SESSION)
    ip = f"address:{address}"
    wait = throttle.wait_s(ip)
    if wait > 0:
        raise ApiError(429, lockout_message(wait), "too_many_failed_keys")
    token = bearer(authorization)
    owner = keys.owner(token, deployment) if token else None
    if owner is None:
        throttle.failed(ip)
        what = "That API key is not valid" if token else "This API needs a key"
        raise ApiError(401, f"{what}: send it as 'Authorization: Bearer KEY'.", "invalid_api_key")
    # Success does not clear the address: one good key must not reset an address guessing others.
    return owner
