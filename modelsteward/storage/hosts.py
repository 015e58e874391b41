"""Approved hosts: where model calls may go besides the providers' configured endpoints (egress).

One row per origin (``scheme://host:port``) an admin approved, with who approved it, why, and the
approval it went through when an agent asked.  Normalising URLs to origins and deciding what may
be called is ``providers.egress``; this module only stores and reads the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from modelsteward.storage.db import session_scope
from modelsteward.storage.models import ApprovedHost, Model

__all__ = ["approved_origins", "add_host", "approve_host", "host_rows"]


def approved_origins(sessions: sessionmaker[Session]) -> list[str]:
    """Every approved origin, oldest first."""
    with session_scope(sessions) as s:
        return list(s.scalars(select(ApprovedHost.origin).order_by(ApprovedHost.id)))


def add_host(s: Session, origin: str, *, approved_by: str, reason: str = "", approval_id: int | None = None) -> bool:
    """Record ``origin`` as approved (in the caller's transaction); False when it already was."""
    if s.scalar(select(ApprovedHost.id).where(ApprovedHost.origin == origin)) is not None:
        return False
    s.add(ApprovedHost(origin=origin, approved_by=approved_by[:200], reason=reason, approval_id=approval_id))
    s.flush()
    return True


def approve_host(sessions: sessionmaker[Session], origin: str, *, approved_by: str, reason: str = "",
                 approval_id: int | None = None, at_origin: Callable[[Model], bool]) -> tuple[bool, list[str]]:
    """Record ``origin`` and bring the ``pending`` models ``at_origin`` back to the status they had,
    in one transaction: (whether the row is new, the model ids released)."""
    from modelsteward.storage.registry import _egress_status

    with session_scope(sessions) as s:
        added = add_host(s, origin, approved_by=approved_by, reason=reason, approval_id=approval_id)
        released = []
        for m in s.scalars(select(Model).where(Model.status == "pending").order_by(Model.id)):
            if at_origin(m):
                _egress_status(s, m, False, approved_by)
                released.append(m.id)
        return added, released


def host_rows(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """The approved hosts as plain dicts (origin, approved_by, reason, approval_id, at)."""
    with session_scope(sessions) as s:
        return [{"origin": h.origin, "approved_by": h.approved_by, "reason": h.reason, "approval_id": h.approval_id,
                 "at": h.created_at.isoformat() if h.created_at else None}
                for h in s.scalars(select(ApprovedHost).order_by(ApprovedHost.id))]
