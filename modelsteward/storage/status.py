"""The model status machine: the one place a model's status changes, as named events.

A model has a status per use case (``model_use_case_status``) and a global one (``models.status``),
which is the summary of the per-use-case rows: the most active of them (current > canary > shadow >
evaluating > candidate), else ``rejected`` / ``retired`` when every row is, else what it was.
Status that is about a use case (rolled back, rejected, shadow, canary, current, evaluated) lives
per use case: a model rejected by one use case's rollback stays a candidate everywhere else, and a
new passing evaluation on that use case makes it a candidate there again.  Events without a use
case act on the global status (registration, retirement, reinstatement by an operator).

Every change is one named event (``EVENTS``), checked against the table below and written to the
audit trail ``model_status_events`` in the caller's transaction; an event that the current status
does not allow raises ``IllegalTransition`` naming the status and the events it allows.

| event | from -> to |
| --- | --- |
| registered | (new model) -> discovered or candidate (nothing else: never current); pending at a host nobody approved |
| host_pending | discovered, candidate -> pending (re-pointed at a host nobody approved) |
| host_approved | pending -> discovered or candidate (an admin approved its host) |
| marked_candidate | discovered -> candidate |
| evaluation_started | discovered, candidate -> evaluating |
| evaluated_pass | evaluating, discovered, candidate, rejected -> candidate (reinstates a rejected model) |
| evaluated_fail | evaluating, discovered, candidate -> candidate; rejected -> rejected |
| evaluation_aborted | evaluating -> candidate |
| shadow_started | discovered, candidate, evaluating -> shadow |
| canary_started | discovered, candidate, evaluating, shadow -> canary |
| shadow_passed | shadow -> candidate |
| promoted | discovered, candidate, evaluating, shadow, canary -> current |
| replaced | current -> candidate (the old stable after a promotion) |
| rolled_back | shadow, canary, current -> candidate (traffic taken away, the model not blamed) |
| rejected | discovered, candidate, evaluating, shadow, canary, current -> rejected |
| restored | any -> current, canary or shadow (a rollback restores a snapshot's roles; never blocked) |
| retired | every status but retired -> retired |
| reinstated | retired, rejected -> candidate |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelsteward.errors import IllegalTransition, InvalidInput, NotFound
from modelsteward.storage.models import MODEL_STATUSES, Model, ModelStatusEvent, ModelUseCaseStatus, UseCase

__all__ = [
    "EVENTS", "REGISTER_STATUSES", "StatusChange", "apply_status_event", "status_for", "status_on", "statuses_on",
    "use_case_statuses",
    "allowed_events", "event_for", "status_events", "summary_status", "move_status",
]

ALL = MODEL_STATUSES
REGISTER_STATUSES = ("discovered", "candidate")
_ACTIVE_ORDER = ("current", "canary", "shadow", "evaluating", "candidate")

# event -> {from status (None: a new model) -> the status it leads to}; ``restored`` and
# ``registered`` lead to one of several statuses, named by the caller (``to=``).
EVENTS: dict[str, dict[str | None, str | tuple[str, ...]]] = {
    "registered": {None: (*REGISTER_STATUSES, "pending")},
    "host_pending": {"discovered": "pending", "candidate": "pending"},
    "host_approved": {"pending": REGISTER_STATUSES},
    "marked_candidate": {"discovered": "candidate"},
    "evaluation_started": {"discovered": "evaluating", "candidate": "evaluating"},
    "evaluated_pass": {"evaluating": "candidate", "discovered": "candidate", "candidate": "candidate",
                       "rejected": "candidate"},
    "evaluated_fail": {"evaluating": "candidate", "discovered": "candidate", "candidate": "candidate",
                       "rejected": "rejected"},
    "evaluation_aborted": {"evaluating": "candidate"},
    "shadow_started": {s: "shadow" for s in ("discovered", "candidate", "evaluating")},
    "canary_started": {s: "canary" for s in ("discovered", "candidate", "evaluating", "shadow")},
    "shadow_passed": {"shadow": "candidate"},
    "promoted": {s: "current" for s in ("discovered", "candidate", "evaluating", "shadow", "canary")},
    "replaced": {"current": "candidate"},
    "rolled_back": {s: "candidate" for s in ("shadow", "canary", "current")},
    "rejected": {s: "rejected" for s in ("discovered", "candidate", "evaluating", "shadow", "canary", "current")},
    "restored": {s: ("current", "canary", "shadow") for s in ALL},
    "retired": {s: "retired" for s in ALL if s != "retired"},
    "reinstated": {"retired": "candidate", "rejected": "candidate"},
}


@dataclass(frozen=True)
class StatusChange:
    model_id: str
    use_case: str | None
    event: str
    from_status: str | None
    to_status: str
    global_status: str


def allowed_events(status: str | None) -> list[str]:
    """The events the status ``status`` allows, in table order (``restored`` is the rollback's own)."""
    return [e for e, table in EVENTS.items() if status in table]


def event_for(current: str, target: str) -> str:
    """The named event that leads from ``current`` to ``target`` (for callers that know only the
    target, e.g. ``ModelRegistry.set_status``); ``restored`` is never picked (rollbacks only)."""
    if target not in ALL:
        raise InvalidInput(f"Unknown status {target!r}; use one of {', '.join(ALL)}.")
    for name, table in EVENTS.items():
        if name in ("restored", "registered", "host_approved") or current not in table:
            continue
        to = table[current]
        if to == target:
            return name
    allowed = [e for e in allowed_events(current) if e != "restored"]
    raise IllegalTransition(
        f"No event leads from {current!r} to {target!r}; events allowed from {current!r}: "
        f"{_describe(current, allowed)}.",
        current=current, requested=target, allowed=allowed,
    )


def _describe(current: str | None, events: list[str]) -> str:
    out = []
    for e in events:
        to = EVENTS[e][current]
        out.append(f"{e} (-> {to if isinstance(to, str) else ' | '.join(to)})")
    return ", ".join(out) or "none"


def _rows(s: Session, model_id: str) -> list[ModelUseCaseStatus]:
    return list(s.scalars(select(ModelUseCaseStatus).where(ModelUseCaseStatus.model_id == model_id)
                          .order_by(ModelUseCaseStatus.id)))


def status_on(global_status: str, rows: dict[int, str], use_case_id: int) -> str:
    """The status on one use case from the global status and the per-use-case rows (by use case
    id): its row, else what the global status means there (a model rejected elsewhere is a
    candidate here; a retired one is retired everywhere)."""
    if global_status in ("retired", "pending"):
        return global_status
    if use_case_id in rows:
        return rows[use_case_id]
    if global_status == "discovered":
        return "discovered"
    if global_status == "rejected" and "rejected" not in rows.values():
        return "rejected"  # rejected globally (not through some use case): everywhere
    return "candidate"


def status_for(s: Session, m: Model, use_case_id: int) -> str:
    """The model's status on one use case (``status_on`` over its rows)."""
    return status_on(m.status, {r.use_case_id: r.status for r in _rows(s, m.id)}, use_case_id)


def statuses_on(s: Session, use_case_id: int, models: Sequence[Any]) -> dict[str, str]:
    """``{model id: status on the use case}`` for ``models`` (rows or row views) in one query."""
    ids = [m.id for m in models]
    rows: dict[str, dict[int, str]] = {}
    if ids:
        for mid, ucid, st in s.execute(select(ModelUseCaseStatus.model_id, ModelUseCaseStatus.use_case_id,
                                              ModelUseCaseStatus.status)
                                       .where(ModelUseCaseStatus.model_id.in_(ids))).all():
            rows.setdefault(mid, {})[ucid] = st
    return {m.id: status_on(m.status, rows.get(m.id, {}), use_case_id) for m in models}


def summary_status(rows: list[str], previous: str) -> str:
    """The global status over the per-use-case ones (see the module doc)."""
    for st in _ACTIVE_ORDER:
        if st in rows:
            return st
    if "rejected" in rows:
        return "rejected"
    if "retired" in rows:
        return "retired"
    return previous


def use_case_statuses(s: Session, model_id: str) -> dict[str, str]:
    """``{use case name: status}`` of the model's per-use-case rows."""
    q = (select(UseCase.name, ModelUseCaseStatus.status).join(UseCase, UseCase.id == ModelUseCaseStatus.use_case_id)
         .where(ModelUseCaseStatus.model_id == model_id).order_by(UseCase.name))
    return {name: st for name, st in s.execute(q).all()}


def status_events(s: Session, model_id: str, limit: int = 100) -> list[ModelStatusEvent]:
    """The model's status events, oldest first (the last ``limit``)."""
    q = select(ModelStatusEvent).where(ModelStatusEvent.model_id == model_id).order_by(ModelStatusEvent.id.desc())
    return list(reversed(list(s.scalars(q.limit(limit)))))


def _target(event: str, current: str | None, to: str | None, where: str, model_id: str) -> str:
    table = EVENTS.get(event)
    if table is None:
        raise InvalidInput(f"Unknown status event {event!r}; use one of {', '.join(EVENTS)}.", event=event)
    if current not in table:
        allowed = allowed_events(current)
        raise IllegalTransition(
            f"Model {model_id} is {current!r}{where}; event {event!r} is not allowed from there. Allowed: "
            f"{_describe(current, allowed)}.",
            model=model_id, current=current, event=event, allowed=allowed,
        )
    options = table[current]
    if isinstance(options, str):
        if to is not None and to != options:
            raise IllegalTransition(f"Event {event!r} leads from {current!r} to {options!r}, not {to!r}.",
                                    model=model_id, current=current, event=event)
        return options
    if to not in options:
        raise IllegalTransition(
            f"Event {event!r} on model {model_id} leads to one of {', '.join(options)}; {to!r} is not one of them.",
            model=model_id, current=current, event=event, allowed=list(options),
        )
    return to


def apply_status_event(
    s: Session, model_id: str | Model, event: str, use_case: str | int | UseCase | None = None, *,
    to: str | None = None, actor: str = "system", reason: str = "",
) -> StatusChange:
    """Apply the named ``event`` to a model -- on ``use_case`` (name, id or row) when given, else
    globally -- inside the caller's transaction, and record it in ``model_status_events``.

    ``to`` names the target for ``registered`` (discovered | candidate) and ``restored``
    (current | canary | shadow).  For ``registered`` the model row must exist already (the caller
    adds it) and must have no recorded status yet.  Raises ``IllegalTransition`` when the status
    does not allow the event (the message names the status and the events it allows)."""
    m = model_id if isinstance(model_id, Model) else s.get(Model, model_id)
    if m is None:
        raise NotFound(f"Unknown model {model_id!r}.", kind="model", id=str(model_id))
    uc: UseCase | None
    if use_case is None or isinstance(use_case, UseCase):
        uc = use_case
    elif isinstance(use_case, int):
        uc = s.get(UseCase, use_case)
    else:
        uc = s.scalar(select(UseCase).where(UseCase.name == use_case))
    if use_case is not None and uc is None:
        raise NotFound(f"Unknown use case {use_case!r}.", kind="use_case", name=str(use_case))
    if event == "registered":
        if uc is not None:
            raise InvalidInput("A model is registered globally, not per use case.")
        seen = s.scalar(select(ModelStatusEvent.id).where(ModelStatusEvent.model_id == m.id).limit(1))
        if seen is not None:
            raise IllegalTransition(f"Model {m.id} is registered already (status {m.status!r}); event 'registered' "
                                    "is for new models only.", model=m.id, current=m.status, event=event)
        current: str | None = None
        new = _target(event, None, to, "", m.id)
        m.status = new
        glob = new
    elif uc is None:
        current = m.status
        new = _target(event, current, to, "", m.id)
        m.status = new
        if event == "reinstated" and current == "retired":
            for r in _rows(s, m.id):  # back from retirement: the use cases it was retired from may try it again
                if r.status == "retired":
                    r.status = "candidate"
        glob = m.status
    else:
        current = status_for(s, m, uc.id)
        new = _target(event, current, to, f" on use case {uc.name!r}", m.id)
        rows = _rows(s, m.id)
        row = next((r for r in rows if r.use_case_id == uc.id), None)
        if row is None:
            row = ModelUseCaseStatus(model_id=m.id, use_case_id=uc.id, status=new)
            s.add(row)
            rows.append(row)
        row.status = new
        if m.status != "retired" or event in ("restored", "reinstated"):
            m.status = summary_status([r.status for r in rows], m.status)
        glob = m.status
    s.add(ModelStatusEvent(model_id=m.id, use_case_id=uc.id if uc else None, use_case=uc.name if uc else None,
                           event=event, from_status=current, to_status=new, global_status=glob,
                           actor=actor[:200], reason=reason or ""))
    s.flush()
    return StatusChange(m.id, uc.name if uc else None, event, current, new, glob)


def move_status(s: Session, m: Model, event: str, uc: UseCase | int | None, *, actor: str = "system",
                reason: str = "") -> bool:
    """Apply the status ``event`` to ``m`` on ``uc`` (``storage/status.py``, the one owner of model
    status) when its status there allows it; True when it did.  Rollouts and rollbacks never fail
    on a status: the routing change is what matters, and the event trail shows what moved."""
    st = status_for(s, m, uc if isinstance(uc, int) else uc.id) if uc is not None else m.status
    if st not in EVENTS[event]:
        return False
    apply_status_event(s, m, event, uc, actor=actor, reason=reason)
    return True


def as_dicts(events: list[ModelStatusEvent]) -> list[dict[str, Any]]:
    return [{"id": e.id, "event": e.event, "use_case": e.use_case, "from_status": e.from_status,
             "to_status": e.to_status, "global_status": e.global_status, "actor": e.actor, "reason": e.reason,
             "at": e.created_at.isoformat() if e.created_at else None} for e in events]
