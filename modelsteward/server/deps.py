"""FastAPI dependencies as ``Annotated`` aliases: the steward, the caller and the role a route needs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from modelsteward.context import Steward
from modelsteward.errors import StewardError
from modelsteward.server.auth import API_ROLES, Identity, identify
from modelsteward.tools.base import ToolContext

__all__ = [
    "ApiError",
    "StewardDep",
    "IdentityDep",
    "ViewerDep",
    "OperatorDep",
    "ApproverDep",
    "AdminDep",
    "require_role",
    "tool_context",
]


class ApiError(StewardError):
    """An HTTP-level refusal (401, 403, 404 ...) rendered as ``{"code", "message", "details"}``: a
    ``StewardError`` whose status and code the route chooses."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.status = status
        self.http_status = status
        self.code = code


def get_steward(request: Request) -> Steward:
    return request.app.state.steward  # type: ignore[no-any-return]


StewardDep = Annotated[Steward, Depends(get_steward)]

_bearer = HTTPBearer(auto_error=False, description="An API token from `steward tokens create`.")


def get_identity(
    steward: StewardDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Identity:
    if creds is None:
        raise ApiError(401, "unauthorized", "Missing API token: send 'Authorization: Bearer <token>' "
                       "(create one with `steward tokens create`).")
    ident = identify(steward, creds.credentials)
    if ident is None:
        raise ApiError(401, "unauthorized", "Invalid or revoked API token.")
    return ident


IdentityDep = Annotated[Identity, Depends(get_identity)]


def require_role(role: str) -> Any:
    """A dependency that lets through callers whose role is ``role`` or higher (else 403 naming it)."""
    assert role in API_ROLES, role

    def check(ident: IdentityDep) -> Identity:
        if not ident.at_least(role):
            raise ApiError(
                403, "forbidden", f"This needs role {role!r} or higher; token {ident.name!r} has role {ident.role!r}.",
                required_role=role, role=ident.role,
            )
        return ident

    check.__name__ = f"require_{role}"
    return Depends(check)


ViewerDep = Annotated[Identity, require_role("viewer")]
OperatorDep = Annotated[Identity, require_role("operator")]
ApproverDep = Annotated[Identity, require_role("approver")]
AdminDep = Annotated[Identity, require_role("admin")]


def tool_context(steward: Steward, ident: Identity, **extra: Any) -> ToolContext:
    """The ToolContext for a call made on behalf of ``ident`` (actor ``api:<token name>``)."""
    return ToolContext(steward=steward, actor=ident.actor, role=ident.role, **extra)
