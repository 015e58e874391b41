"""Gateway API keys for applications: created once, shown once, stored as a SHA-256 hash.

Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching needed); the
gateway compares hashes from an in-memory table refreshed in the background.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from modelsteward.errors import InvalidInput
from modelsteward.storage import credentials
from modelsteward.storage.credentials import StoredKey
from modelsteward.storage.registry import ModelRegistry

__all__ = ["KEY_PREFIX", "ADMIN_TOKEN_PREFIX", "hash_key", "new_key", "create_key", "list_keys", "revoke_key", "find_key", "CreatedKey"]

KEY_PREFIX = "sk-steward-"
ADMIN_TOKEN_PREFIX = "stw_"  # admin API tokens (server/auth.py): recognised to say they are not gateway keys


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class CreatedKey:
    id: int
    name: str
    key: str  # the plaintext, shown once
    prefix: str
    use_cases: list[str]


def create_key(registry: ModelRegistry, name: str, use_cases: Sequence[str] = ()) -> CreatedKey:
    """Store a new key (hashed) bound to ``use_cases`` (empty: every use case); return the plaintext once."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("Key name must be 1..100 characters.")
    ucs = [u.strip() for u in use_cases if u and u.strip()]
    key = new_key()
    row = credentials.add_key(registry, name=name, key_hash=hash_key(key), prefix=key[: len(KEY_PREFIX) + 4],
                              use_cases=ucs)
    return CreatedKey(id=row.id, name=name, key=key, prefix=row.prefix, use_cases=ucs)


def find_key(registry: ModelRegistry, key_hash: str) -> StoredKey | None:
    """The key stored under ``key_hash`` (revoked ones too), read straight from the registry."""
    return credentials.key_by_hash(registry, key_hash)


def list_keys(registry: ModelRegistry) -> list[StoredKey]:
    return credentials.keys(registry)


def revoke_key(registry: ModelRegistry, name: str) -> StoredKey:
    return credentials.revoke_key(registry, name)
