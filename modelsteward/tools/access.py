"""Credentials as tools: ``token_create`` / ``token_revoke`` (API tokens) and ``key_create`` /
``key_revoke`` (gateway keys).  Each passes its policy rule (``policies/access_rules.py``: never an
agent; tokens need role admin, keys role operator) and is audited (a ``policy_decisions`` allow row
naming who did it, never the secret).  ``steward tokens`` / ``steward keys`` and the API's
``/api/tokens`` routes call these; the plain token or key is in the output once, never stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from modelsteward.tools.base import InputModel, ToolContext, tool

__all__ = ["TokenCreateIn", "TokenRevokeIn", "TokenView", "TokenCreated", "KeyCreateIn", "KeyRevokeIn", "KeyCreated",
           "KeyRevoked", "token_create", "token_revoke", "key_create", "key_revoke"]


class TokenCreateIn(InputModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$",
                      description="Who or what holds the token (unique).")
    role: Literal["viewer", "operator", "approver", "admin"]


class TokenRevokeIn(InputModel):
    token_id: int = Field(ge=1, description="The token's id (`steward tokens list`).")


class TokenView(BaseModel):
    id: int
    name: str
    role: str
    prefix: str
    revoked: bool
    created_at: dt.datetime


class TokenCreated(TokenView):
    token: str = Field(description="The plain token; shown once, never stored.")


class KeyCreateIn(InputModel):
    name: str = Field(min_length=1, max_length=100, description="A name for the application using the key.")
    use_cases: list[str] = Field(default_factory=list, description="Bind the key to these use cases (empty: all).")


class KeyRevokeIn(InputModel):
    name: str = Field(min_length=1, description="The key's name.")


class KeyCreated(BaseModel):
    id: int
    name: str
    key: str = Field(description="The plain key; shown once, stored only as a hash.")
    prefix: str
    use_cases: list[str]


class KeyRevoked(BaseModel):
    name: str
    revoked: bool = True


def _token_view(row: object) -> TokenView:
    return TokenView.model_validate(row, from_attributes=True)


@tool("token_create", input_model=TokenCreateIn, output_model=TokenCreated, mutating=True)
def token_create(ctx: ToolContext, inp: TokenCreateIn) -> TokenCreated:
    """Create an API token (role admin only; never an agent); the plain token is in the output once."""
    from modelsteward.policies.access_rules import audit
    from modelsteward.storage.tokens import create_token

    row, plain = create_token(ctx.steward.sessions, inp.name, inp.role)
    audit(ctx, "token_create", {"token_id": row.id, "name": row.name, "role": row.role},
          f"API token {row.name!r} (role {row.role}) created")
    return TokenCreated(**_token_view(row).model_dump(), token=plain)


@tool("token_revoke", input_model=TokenRevokeIn, output_model=TokenView, mutating=True)
def token_revoke(ctx: ToolContext, inp: TokenRevokeIn) -> TokenView:
    """Revoke an API token (role admin only; never an agent); its console sessions end at once."""
    from modelsteward.policies.access_rules import audit
    from modelsteward.storage.tokens import revoke_token

    row = revoke_token(ctx.steward.sessions, inp.token_id)
    audit(ctx, "token_revoke", {"token_id": row.id, "name": row.name, "role": row.role},
          f"API token {row.name!r} (id {row.id}) revoked")
    return _token_view(row)


@tool("key_create", input_model=KeyCreateIn, output_model=KeyCreated, mutating=True)
def key_create(ctx: ToolContext, inp: KeyCreateIn) -> KeyCreated:
    """Create a gateway key bound to use cases (role operator or higher; never an agent); shown once."""
    from modelsteward.gateway.keys import create_key
    from modelsteward.policies.access_rules import audit

    created = create_key(ctx.steward.registry, inp.name, inp.use_cases)
    audit(ctx, "key_create", {"name": created.name, "use_cases": created.use_cases, "prefix": created.prefix},
          f"gateway key {created.name!r} created")
    return KeyCreated(id=created.id, name=created.name, key=created.key, prefix=created.prefix,
                      use_cases=created.use_cases)


@tool("key_revoke", input_model=KeyRevokeIn, output_model=KeyRevoked, mutating=True)
def key_revoke(ctx: ToolContext, inp: KeyRevokeIn) -> KeyRevoked:
    """Revoke a gateway key (role operator or higher; never an agent): the gateway refuses it within a second."""
    from modelsteward.gateway.keys import revoke_key
    from modelsteward.policies.access_rules import audit

    row = revoke_key(ctx.steward.registry, inp.name)
    audit(ctx, "key_revoke", {"name": row.name}, f"gateway key {row.name!r} revoked")
    return KeyRevoked(name=row.name)
