"""API tokens: bearer secrets with a role, stored hashed in the app's backend.

A token reads ``cvy_<id>_<secret>``: the id finds the stored entry in one key-value
read, and only the SHA-256 of the secret is stored (the secret has 256 bits of
randomness, so a plain hash is enough; no salt or slow hash is needed), compared in
constant time. The backend has no way to list keys, so one index entry holds the ids;
creating and revoking change it under a backend lock, so two at once lose nothing.

This module imports no web framework: ``conveyor tokens`` works from any install.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from ..errors import BackendError, ConfigurationError

if TYPE_CHECKING:
    from ..backends import Backend

Role = Literal["read", "operate", "admin"]
#: Each role can do what the roles before it can: admin ⊇ operate ⊇ read.
ROLES: tuple[Role, ...] = get_args(Role)
PREFIX = "cvy_"
INDEX_KEY = "api-tokens"
LOCK = "api-tokens"
_RANK = {role: rank for rank, role in enumerate(ROLES)}
_DUMMY_HASH = hashlib.sha256(b"no such token").hexdigest()


def allows(role: str, needed: Role) -> bool:
    """Whether a token of ``role`` may do what needs ``needed``."""
    return role in _RANK and _RANK[role] >= _RANK[needed]


@dataclass(frozen=True)
class Token:
    """A stored token, without its secret."""

    id: str
    name: str
    role: Role
    created_at: float


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(token_id: str) -> str:
    return f"api-token:{token_id}"


def entry_key(secret: str) -> str | None:
    """The backend key (``Backend.kv_get``) of the entry a secret would belong to, or
    None for a secret of no token's form."""
    token_id = secret[len(PREFIX) :].split("_", 1)[0] if secret.startswith(PREFIX) else ""
    return _key(token_id) if token_id.isalnum() else None


def matching(secret: str, entry: dict[str, Any] | None) -> Token | None:
    """The token of the stored ``entry`` (read at ``entry_key(secret)``) if ``secret`` is
    its secret, else None: ``TokenStore.verify``'s check, for a caller that read the
    entry itself (the API, on its event loop)."""
    # Compare even when nothing matched, so a miss takes as long as a wrong secret.
    stored = entry["sha256"] if entry else _DUMMY_HASH
    if not hmac.compare_digest(_digest(secret), stored) or entry is None:
        return None
    return Token(entry["id"], entry["name"], entry["role"], entry["created_at"])


class TokenStore:
    """Create, list, revoke and check API tokens kept in ``backend``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def create(self, name: str, role: str) -> tuple[Token, str]:
        """A new token and its secret; the secret is returned here once and never stored."""
        if role not in ROLES:
            raise ConfigurationError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        if not name or len(name) > 100:
            raise ConfigurationError("a token needs a name of 1 to 100 characters (who uses it)")
        token = Token(secrets.token_hex(6), name, role, time.time())
        secret = f"{PREFIX}{token.id}_{secrets.token_urlsafe(32)}"
        with self._locked():
            self.backend.kv_set(_key(token.id), {**asdict(token), "sha256": _digest(secret)})
            self.backend.kv_set(INDEX_KEY, [*self._ids(), token.id])
        return token, secret

    def all(self) -> list[Token]:
        found = []
        for token_id in self._ids():
            entry = self.backend.kv_get(_key(token_id))
            if entry is not None:
                found.append(Token(entry["id"], entry["name"], entry["role"], entry["created_at"]))
        return found

    def revoke(self, token_id: str) -> bool:
        """Delete a token at once; False when there is none with that id."""
        with self._locked():
            ids = self._ids()
            deleted = self.backend.kv_delete(_key(token_id))
            if token_id in ids:
                self.backend.kv_set(INDEX_KEY, [i for i in ids if i != token_id])
        return deleted or token_id in ids

    def exists(self) -> bool:
        """Whether any token is stored (then every request must carry one)."""
        return bool(self._ids())

    def verify(self, secret: str) -> Token | None:
        """The token this secret belongs to, or None."""
        key = entry_key(secret)
        return matching(secret, self.backend.kv_get(key) if key is not None else None)

    def _ids(self) -> list[str]:
        return list(self.backend.kv_get(INDEX_KEY) or [])

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + 10
        while not self.backend.acquire_lock(LOCK, owner, ttl=10):
            if time.monotonic() > deadline:
                raise BackendError("another process holds the API token lock; try again")
            time.sleep(0.01)
        try:
            yield
        finally:
            self.backend.release_lock(LOCK, owner)
