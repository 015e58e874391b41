"""API tokens, roles and console sessions.

Decisions:
- A token is ``stw_`` + 43 url-safe random characters (256 bits).  Only its SHA-256 is stored:
  with that much entropy a slow password hash adds nothing, and lookups stay one indexed query.
- Roles are ordered viewer < operator < approver < admin; a route names the least role it needs.
- The console session cookie is stateless: ``<token id>.<expiry>.<mac>`` where the MAC is an
  HMAC-SHA256 keyed with a server secret over the id, the expiry and the token's stored hash.  The
  secret is ``STEWARD_SESSION_SECRET`` (set the same value on every replica), else a random one
  kept in ``<workspace>/session.key`` (mode 0600).  Nothing in the database is enough to forge a
  session.  Every request re-reads the token row, so a revoked token ends its sessions at once.
- CSRF: forms carry a token derived from the session cookie (HMAC, same secret); the cookie is also
  ``SameSite=Strict`` and ``HttpOnly``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from modelsteward.context import Steward
from modelsteward.errors import ConfigError
from modelsteward.storage import credentials, tokens
from modelsteward.storage.credentials import StoredToken
from modelsteward.storage.tokens import API_ROLES, TOKEN_PREFIX, hash_token, role_at_least

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
    "SESSION_SECRET_ENV",
    "SESSION_SECRET_FILE",
    "session_secret",
]

SESSION_COOKIE = "steward_session"
SESSION_SECONDS = 12 * 3600


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


def create_token(steward: Steward, name: str, role: str) -> tuple[StoredToken, str]:
    """Create a token without the tools' policy and audit (tests' set-up); front-ends call ``token_create``."""
    return tokens.create_token(steward.sessions, name, role)


def list_tokens(steward: Steward) -> list[StoredToken]:
    return credentials.tokens(steward.sessions)


def revoke_token(steward: Steward, token_id: int) -> StoredToken:
    """Revoke a token without the tools' policy and audit (tests' set-up); front-ends call ``token_revoke``."""
    return tokens.revoke_token(steward.sessions, token_id)


def identify(steward: Steward, plain: str) -> Identity | None:
    """The identity behind a plain token, or None (unknown or revoked)."""
    if not plain or not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
        return None
    digest = hash_token(plain)
    row = credentials.token_by_hash(steward.sessions, digest)
    if row is None or row.revoked or not hmac.compare_digest(row.token_hash, digest):
        return None
    return Identity(row.id, row.name, row.role)


SESSION_SECRET_ENV = "STEWARD_SESSION_SECRET"
SESSION_SECRET_FILE = "session.key"
_FILE_SECRETS: dict[Path, bytes] = {}


def session_secret(steward: Steward) -> bytes:
    """The key that signs console sessions: the environment's, else the workspace's (made once, 0600)."""
    env = os.environ.get(SESSION_SECRET_ENV)
    if env:
        if len(env) < 32:
            raise ConfigError(f"{SESSION_SECRET_ENV} must be at least 32 characters (use `openssl rand -hex 32`).")
        return env.encode()
    path = Path(steward.settings.workspace) / SESSION_SECRET_FILE
    cached = _FILE_SECRETS.get(path)
    if cached is not None:
        return cached
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)
        secret = path.read_bytes().strip()
        if len(secret) < 32:
            raise ConfigError(f"{path} holds no valid session secret; delete it (sessions will end) and retry.") from None
    else:
        secret = secrets.token_hex(32).encode()
        with os.fdopen(fd, "wb") as fh:
            fh.write(secret)
    _FILE_SECRETS[path] = secret
    return secret


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _session_mac(steward: Steward, token_hash: str, body: str) -> str:
    return _mac(session_secret(steward), f"session.{body}.{token_hash}")


def make_session(steward: Steward, plain: str, now: float | None = None) -> tuple[Identity, str] | None:
    """Log in with a plain token: the identity and the session cookie value, or None."""
    ident = identify(steward, plain)
    if ident is None:
        return None
    expiry = int((now or time.time()) + SESSION_SECONDS)
    body = f"{ident.token_id}.{expiry}"
    return ident, f"{body}.{_session_mac(steward, hash_token(plain), body)}"


def _token_row(steward: Steward, token_id: int) -> StoredToken | None:
    return credentials.token_by_id(steward.sessions, token_id)


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
    if not hmac.compare_digest(mac, _session_mac(steward, row.token_hash, f"{tid}.{exp}")):
        return None
    return Identity(row.id, row.name, row.role)


def csrf_token(steward: Steward, cookie: str) -> str:
    """The CSRF token that forms of this session must carry."""
    return _mac(session_secret(steward), "csrf." + cookie)[:40]
