"""API tokens as stored: roles, the token format, and creating or revoking one.

A token is ``stw_`` + 43 url-safe random characters (256 bits); only its SHA-256 is stored.  Roles
are ordered viewer < operator < approver < admin.  The tools ``token_create`` / ``token_revoke``
(``tools/access.py``) are the only callers that change tokens, so every change passes a policy
rule and is audited; the server (``server/auth.py``) reads them to identify a caller.
"""

from __future__ import annotations

import hashlib
import secrets

from typing import TYPE_CHECKING

from modelsteward.errors import InvalidInput
from modelsteward.storage import credentials
from modelsteward.storage.credentials import StoredToken

if TYPE_CHECKING:
    from modelsteward.storage.db import Sessions

__all__ = ["API_ROLES", "TOKEN_PREFIX", "role_at_least", "hash_token", "create_token", "revoke_token"]

API_ROLES = ("viewer", "operator", "approver", "admin")
TOKEN_PREFIX = "stw_"


def role_at_least(have: str, need: str) -> bool:
    return API_ROLES.index(have) >= API_ROLES.index(need)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(sessions: Sessions, name: str, role: str) -> tuple[StoredToken, str]:
    """Create a token; returns its record and the plain token (shown once, never stored)."""
    if role not in API_ROLES:
        raise InvalidInput(f"Unknown role {role!r}; use one of {', '.join(API_ROLES)}.", field="role")
    name = (name or "").strip()
    if not name or len(name) > 100 or not all(c.isalnum() or c in "-_.@" for c in name):
        raise InvalidInput(f"Token name {name!r} must be 1-100 letters, digits, '-', '_', '.' or '@'.", field="name")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = credentials.add_token(sessions, name=name, role=role, token_hash=hash_token(plain), prefix=plain[:8])
    return row, plain


def revoke_token(sessions: Sessions, token_id: int) -> StoredToken:
    return credentials.revoke_token(sessions, token_id)
