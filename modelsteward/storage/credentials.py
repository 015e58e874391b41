"""The stored credentials: admin API tokens (``server/auth.py``) and gateway keys (``gateway/keys.py``),
kept as hashes.  Each function holds its own transaction and hands back plain frozen records, never
ORM rows.  Names are unique (``Conflict`` on a second); an unknown one is ``NotFound``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from modelsteward.errors import Conflict, NotFound, close_matches
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import ApiToken, GatewayKey, UseCase

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from modelsteward.storage.registry import ModelRegistry

__all__ = ["StoredToken", "StoredKey", "add_token", "tokens", "token_by_hash", "token_by_id", "revoke_token",
           "add_key", "keys", "key_by_hash", "revoke_key"]


@dataclass(frozen=True)
class StoredToken:
    id: int
    name: str
    role: str
    token_hash: str
    prefix: str
    revoked: bool
    created_at: dt.datetime  # naive UTC, as stored


@dataclass(frozen=True)
class StoredKey:
    id: int
    name: str
    key_hash: str
    prefix: str
    use_cases: list[str]
    revoked: bool
    created_at: dt.datetime  # naive UTC, as stored


def _token(r: ApiToken) -> StoredToken:
    return StoredToken(id=r.id, name=r.name, role=r.role, token_hash=r.token_hash, prefix=r.prefix,
                       revoked=bool(r.revoked), created_at=r.created_at)


def _key(r: GatewayKey) -> StoredKey:
    return StoredKey(id=r.id, name=r.name, key_hash=r.key_hash, prefix=r.prefix,
                     use_cases=[str(u) for u in r.use_cases or []], revoked=bool(r.revoked), created_at=r.created_at)


# ------------------------------------------------------------------ API tokens
def add_token(sessions: sessionmaker[Session], *, name: str, role: str, token_hash: str, prefix: str) -> StoredToken:
    with session_scope(sessions) as s:
        if s.scalar(select(ApiToken).where(ApiToken.name == name)) is not None:
            raise Conflict(f"A token named {name!r} already exists; pick another name or revoke it first.")
        row = ApiToken(name=name, role=role, token_hash=token_hash, prefix=prefix, revoked=False)
        s.add(row)
        s.flush()
        return _token(row)


def tokens(sessions: sessionmaker[Session]) -> list[StoredToken]:
    """Every token, oldest first (revoked ones too)."""
    with session_scope(sessions) as s:
        return [_token(r) for r in s.scalars(select(ApiToken).order_by(ApiToken.id))]


def token_by_hash(sessions: sessionmaker[Session], token_hash: str) -> StoredToken | None:
    with session_scope(sessions) as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
        return _token(row) if row is not None else None


def token_by_id(sessions: sessionmaker[Session], token_id: int) -> StoredToken | None:
    with session_scope(sessions) as s:
        row = s.get(ApiToken, token_id)
        return _token(row) if row is not None else None


def revoke_token(sessions: sessionmaker[Session], token_id: int) -> StoredToken:
    with session_scope(sessions) as s:
        row = s.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"Unknown token id {token_id}.", kind="token", id=token_id)
        row.revoked = True
        s.flush()
        return _token(row)


# ------------------------------------------------------------------ gateway keys
def add_key(registry: ModelRegistry, *, name: str, key_hash: str, prefix: str, use_cases: Sequence[str]) -> StoredKey:
    """Store a key bound to ``use_cases`` (each must exist: ``NotFound`` naming close matches)."""
    with session_scope(registry.sessions) as s:
        if s.scalar(select(GatewayKey).where(GatewayKey.name == name)) is not None:
            raise Conflict(f"A gateway key named {name!r} already exists; pick another name.")
        for uc in use_cases:
            if s.scalar(select(UseCase.id).where(UseCase.name == uc)) is None:
                registry.get_use_case(uc)  # raises NotFound with close matches
        row = GatewayKey(name=name, key_hash=key_hash, prefix=prefix, use_cases=list(use_cases))
        s.add(row)
        s.flush()
        return _key(row)


def keys(registry: ModelRegistry) -> list[StoredKey]:
    """Every key by name (revoked ones too)."""
    with session_scope(registry.sessions) as s:
        return [_key(r) for r in s.scalars(select(GatewayKey).order_by(GatewayKey.name))]


def key_by_hash(registry: ModelRegistry, key_hash: str) -> StoredKey | None:
    with session_scope(registry.sessions) as s:
        row = s.scalar(select(GatewayKey).where(GatewayKey.key_hash == key_hash))
        return _key(row) if row is not None else None


def revoke_key(registry: ModelRegistry, name: str) -> StoredKey:
    with session_scope(registry.sessions) as s:
        row = s.scalar(select(GatewayKey).where(GatewayKey.name == name))
        if row is None:
            names = list(s.scalars(select(GatewayKey.name)))
            raise NotFound(f"Unknown gateway key {name!r}." + close_matches(name, names))
        row.revoked = True
        s.flush()
        return _key(row)
