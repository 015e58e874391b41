"""API tokens as stored: roles, the token format, and creating or revoking one.

A token is ``stw_`` + 43 url-safe random characters (256 bits); only its SHA-256 is stored.  Roles
are ordered viewer < operator < approver < admin.  The tools ``token_create`` / ``token_revoke``
(``tools/access.py``) are the only callers that change tokens, so every change passes a policy
rule and is audited; the server (``server/auth.py``) reads them to identify a caller.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from modelsteward.errors import Conflict, InvalidInput, NotFound
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import ApiToken

__all__ = ["API_ROLES", "TOKEN_PREFIX", "role_at_least", "hash_token", "create_token", "revoke_token"]

API_ROLES = ("viewer", "operator", "approver", "admin")
TOKEN_PREFIX = "stw_"


def role_at_least(have: str, need: str) -> bool:
    return API_ROLES.index(have) >= API_ROLES.index(need)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(sessions: sessionmaker[Session], name: str, role: str) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the plain token (shown once, never stored)."""
    if role not in API_ROLES:
        raise InvalidInput(f"Unknown role {role!r}; use one of {', '.join(API_ROLES)}.", field="role")
    name = (name or "").strip()
    if not name or len(name) > 100 or not all(c.isalnum() or c in "-_.@" for c in name):
        raise InvalidInput(f"Token name {name!r} must be 1-100 letters, digits, '-', '_', '.' or '@'.", field="name")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with session_scope(sessions) as s:
        if s.scalar(select(ApiToken).where(ApiToken.name == name)) is not None:
            raise Conflict(f"A token named {name!r} already exists; pick another name or revoke it first.")
        row = ApiToken(name=name, role=role, token_hash=hash_token(plain), prefix=plain[:8], revoked=False)
        s.add(row)
        s.flush()
    return row, plain


def revoke_token(sessions: sessionmaker[Session], token_id: int) -> ApiToken:
    with session_scope(sessions) as s:
        row = s.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"Unknown token id {token_id}.", kind="token", id=token_id)
        row.revoked = True
        return row
