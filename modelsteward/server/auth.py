"""API tokens, roles and console sessions.

Decisions:
- A token is ``stw_`` + 43 url-safe random characters (256 bits).  Only its SHA-256 is stored:
  with that much entropy a slow password hash adds nothing, and lookups stay one indexed query.
- Roles are ordered viewer < operator < approver < admin; a route names the least role it needs.
- The console session cookie is stateless: ``<token id>.<expiry>.<mac>`` where the MAC is an
  HMAC-SHA256 keyed with the token's stored hash.  Every request re-reads the token row, so a
  revoked token ends its sessions at once, and replicas need no shared secret.
- CSRF: forms carry a token derived from the session cookie (HMAC, same key); the cookie is also
  ``SameSite=Strict`` and ``HttpOnly``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select

from modelsteward.context import Steward
from modelsteward.errors import Conflict, InvalidInput, NotFound
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import ApiToken

__all__ = [
    "API_ROLES",
    "Identity",
    "role_at_least",
    "hash_token",
    "create_token",
    "list_tokens",
    "revoke_token",
    "identify",
    "make_session",
    "read_session",
    "csrf_token",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
]

API_ROLES = ("viewer", "operator", "approver", "admin")
SESSION_COOKIE = "steward_session"
SESSION_SECONDS = 12 * 3600
TOKEN_PREFIX = "stw_"


@dataclass(frozen=True)
class Identity:
    """Who is calling: a token's id, name and role.  ``actor`` is what tools record."""

    token_id: int
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"api:{self.name}"

    def at_least(self, role: str) -> bool:
        return role_at_least(self.role, role)


def role_at_least(have: str, need: str) -> bool:
    return API_ROLES.index(have) >= API_ROLES.index(need)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(steward: Steward, name: str, role: str) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the plain token (shown once, never stored)."""
    if role not in API_ROLES:
        raise InvalidInput(f"Unknown role {role!r}; use one of {', '.join(API_ROLES)}.", field="role")
    name = (name or "").strip()
    if not name or len(name) > 100 or not all(c.isalnum() or c in "-_.@" for c in name):
        raise InvalidInput(f"Token name {name!r} must be 1-100 letters, digits, '-', '_', '.' or '@'.", field="name")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with session_scope(steward.sessions) as s:
        if s.scalar(select(ApiToken).where(ApiToken.name == name)) is not None:
            raise Conflict(f"A token named {name!r} already exists; pick another name or revoke it first.")
        row = ApiToken(name=name, role=role, token_hash=hash_token(plain), prefix=plain[:8], revoked=False)
        s.add(row)
        s.flush()
    return row, plain


def list_tokens(steward: Steward) -> list[ApiToken]:
    with session_scope(steward.sessions) as s:
        return list(s.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(steward: Steward, token_id: int) -> ApiToken:
    with session_scope(steward.sessions) as s:
        row = s.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"Unknown token id {token_id}.", kind="token", id=token_id)
        row.revoked = True
        return row


def identify(steward: Steward, plain: str) -> Identity | None:
    """The identity behind a plain token, or None (unknown or revoked)."""
    if not plain or not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
        return None
    digest = hash_token(plain)
    with session_scope(steward.sessions) as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        if row is None or row.revoked or not hmac.compare_digest(row.token_hash, digest):
            return None
        return Identity(row.id, row.name, row.role)


def _mac(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def make_session(steward: Steward, plain: str, now: float | None = None) -> tuple[Identity, str] | None:
    """Log in with a plain token: the identity and the session cookie value, or None."""
    ident = identify(steward, plain)
    if ident is None:
        return None
    expiry = int((now or time.time()) + SESSION_SECONDS)
    body = f"{ident.token_id}.{expiry}"
    return ident, f"{body}.{_mac(hash_token(plain), body)}"


def _token_row(steward: Steward, token_id: int) -> ApiToken | None:
    with session_scope(steward.sessions) as s:
        return s.get(ApiToken, token_id)


def read_session(steward: Steward, cookie: str | None, now: float | None = None) -> Identity | None:
    """The identity a session cookie stands for, or None (forged, expired, revoked)."""
    if not cookie or cookie.count(".") != 2:
        return None
    tid, exp, mac = cookie.split(".")
    if not (tid.isdigit() and exp.isdigit()) or len(tid) > 12:
        return None
    if int(exp) < (now or time.time()):
        return None
    row = _token_row(steward, int(tid))
    if row is None or row.revoked:
        return None
    if not hmac.compare_digest(mac, _mac(row.token_hash, f"{tid}.{exp}")):
        return None
    return Identity(row.id, row.name, row.role)


def csrf_token(steward: Steward, cookie: str) -> str:
    """The CSRF token that forms of this session must carry."""
    tid = cookie.split(".", 1)[0]
    row = _token_row(steward, int(tid)) if tid.isdigit() else None
    key = row.token_hash if row is not None else "none"
    return _mac(key, "csrf." + cookie)[:40]
