"""A leader lease in the registry: one row per lease name (``control_leases``), SQLite and
PostgreSQL alike.

- The holder renews by ``UPDATE ... WHERE holder = me`` (same term).
- Anyone else takes over an *expired* lease by a compare-and-swap ``UPDATE ... WHERE holder = old
  AND term = old_term AND expires_at < now`` (term + 1): both databases serialise the two writes
  on the row, so of two replicas racing for it exactly one gets ``rowcount == 1``.
- The first holder inserts the row; a racing insert fails on the primary key and loses.
- ``release`` (a graceful shutdown) expires the lease at once, so the next replica takes over on its
  next attempt instead of after a lease period.

Fencing (``fenced``): a leader that was paused past its lease (a GC pause, a frozen VM) must not
act on what it believed when it resumes.  While a thread works under ``fenced(name, holder, term)``,
every write transaction of the registry first reads the lease row in the same transaction (``FOR
UPDATE`` on PostgreSQL) and fails with ``LeaseLost`` unless the lease is still this holder's, in the
same term, unexpired; the write is rolled back, so a deposed leader changes nothing.

Times are the replicas' own UTC clocks (decision: hosts are NTP-synchronised; a skew of a few
hundred milliseconds against a lease of seconds only shifts the hand-over by that much).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from modelsteward.errors import StewardError
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import ControlLease, utcnow

__all__ = ["LeaseResult", "LeaseLost", "acquire", "release", "current", "fenced", "install_fence"]


class LeaseLost(StewardError):
    """A write under a fence whose lease has moved on (expired or taken over): nothing was written."""

    code = "lease_lost"
    http_status = 409


_FENCE: contextvars.ContextVar[tuple[str, str, int] | None] = contextvars.ContextVar("steward_fence", default=None)


@contextlib.contextmanager
def fenced(name: str, holder: str, term: int) -> Iterator[None]:
    """Registry writes made by this thread (context) inside the block need the lease (see the module doc)."""
    token = _FENCE.set((name, holder, term))
    try:
        yield
    finally:
        _FENCE.reset(token)


def _check_fence(session: Session) -> None:
    fence = _FENCE.get()
    if fence is None or session.info.get("fence_checked") == fence:
        return
    name, holder, term = fence
    stmt = select(ControlLease.holder, ControlLease.term, ControlLease.expires_at).where(ControlLease.name == name)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = session.execute(stmt).first()
    if row is None or row.holder != holder or row.term != term or row.expires_at <= utcnow():
        now_holder = row.holder if row is not None else None
        raise LeaseLost(f"Lease {name!r} is no longer held by {holder} in term {term} (now: {now_holder}, term "
                        f"{row.term if row is not None else 0}); this replica stopped leading, nothing was written.")
    session.info["fence_checked"] = fence


def install_fence(sessions: sessionmaker[Session]) -> None:
    """Check the fence before every flush and every DML statement of ``sessions``' sessions."""

    @event.listens_for(sessions, "before_flush")
    def _before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
        if session.new or session.dirty or session.deleted:
            _check_fence(session)

    @event.listens_for(sessions, "do_orm_execute")
    def _before_dml(state: Any) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            _check_fence(state.session)

    @event.listens_for(sessions, "after_transaction_end")
    def _forget(session: Session, _trans: Any) -> None:
        session.info.pop("fence_checked", None)


@dataclass(frozen=True)
class LeaseResult:
    leader: bool
    holder: str | None  # who holds it now (None: nobody yet)
    term: int
    gained: bool = False  # this call took it over (or created it)
    previous: str | None = None  # the holder before a takeover
    expires_at: dt.datetime | None = None


def _count(result: Any) -> int:
    """Rows an UPDATE matched (``CursorResult.rowcount``)."""
    return int(result.rowcount)


def current(sessions: sessionmaker[Session], name: str) -> LeaseResult:
    """Who holds ``name`` (read-only)."""
    with session_scope(sessions) as s:
        row = s.get(ControlLease, name)
        if row is None:
            return LeaseResult(False, None, 0)
        return LeaseResult(False, row.holder, row.term, expires_at=row.expires_at)


def acquire(sessions: sessionmaker[Session], name: str, holder: str, ttl_s: float,
            now: dt.datetime | None = None) -> LeaseResult:
    """Renew the lease if ``holder`` has it, take it over if it expired, else report who has it."""
    now = now or utcnow()
    expires = now + dt.timedelta(seconds=ttl_s)
    with session_scope(sessions) as s:
        renewed = _count(s.execute(
            update(ControlLease).where(ControlLease.name == name, ControlLease.holder == holder)
            .values(renewed_at=now, expires_at=expires).execution_options(synchronize_session=False)
        ))
        if renewed == 1:
            term = s.scalar(select(ControlLease.term).where(ControlLease.name == name))
            return LeaseResult(True, holder, int(term or 0), expires_at=expires)
        row = s.execute(select(ControlLease.holder, ControlLease.term, ControlLease.expires_at)
                        .where(ControlLease.name == name)).first()
        if row is not None:
            old_holder, old_term, old_exp = row
            if old_exp >= now:
                return LeaseResult(False, old_holder, old_term, expires_at=old_exp)
            took = _count(s.execute(
                update(ControlLease).where(
                    ControlLease.name == name, ControlLease.holder == old_holder, ControlLease.term == old_term,
                    ControlLease.expires_at < now,
                ).values(holder=holder, term=old_term + 1, acquired_at=now, renewed_at=now, expires_at=expires)
                .execution_options(synchronize_session=False)
            ))
            if took == 1:
                return LeaseResult(True, holder, old_term + 1, gained=True, previous=old_holder, expires_at=expires)
            return LeaseResult(False, None, old_term)
    try:  # nobody ever held it: the first insert wins
        with session_scope(sessions) as s:
            s.add(ControlLease(name=name, holder=holder, term=1, acquired_at=now, renewed_at=now, expires_at=expires))
        return LeaseResult(True, holder, 1, gained=True, expires_at=expires)
    except IntegrityError:
        return current(sessions, name)


def release(sessions: sessionmaker[Session], name: str, holder: str) -> bool:
    """Expire the lease now if ``holder`` has it (graceful shutdown); True when it did."""
    past = utcnow() - dt.timedelta(seconds=1)
    with session_scope(sessions) as s:
        return _count(s.execute(
            update(ControlLease).where(ControlLease.name == name, ControlLease.holder == holder)
            .values(expires_at=past).execution_options(synchronize_session=False)
        )) == 1
