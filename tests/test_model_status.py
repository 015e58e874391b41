"""Model status as named events (storage/status.py): one owner, per use case, with an audit trail.

The holes reproduced first: registration could mark a model ``current`` directly (``POST
/api/models {"status": "current"}``), a rollback in one use case made the model ``rejected``
everywhere, and a new passing evaluation did not bring it back.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from rollout_helpers import CAND, STABLE, UC, setup_use_case
from sqlalchemy import select

from modelsteward.errors import IllegalTransition, InvalidInput
from modelsteward.evals.evaluate import _mark_evaluating, _record_verdict, _restore
from modelsteward.rollout import RolloutManager
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import Model, ModelStatusEvent, UseCase
from modelsteward.storage.status import EVENTS, apply_status_event, status_events
from modelsteward.tools import call_tool
from modelsteward.tools.base import ToolContext

OTHER = "other"


def _events(st: Any, model_id: str) -> list[tuple[str | None, str, str | None, str]]:
    with session_scope(st.sessions) as s:
        return [(e.use_case, e.event, e.from_status, e.to_status) for e in status_events(s, model_id)]


def _uc_id(st: Any, name: str) -> int:
    with session_scope(st.sessions) as s:
        return int(s.scalar(select(UseCase.id).where(UseCase.name == name)))


@pytest.fixture
def two(steward: Any) -> Any:
    """``chat`` and ``other``, both served by STABLE; CAND a candidate."""
    setup_use_case(steward)
    steward.registry.add_use_case(OTHER, description="second", model=STABLE)
    return steward


# ---------------------------------------------------------------------- registration
def test_register_cannot_mark_a_model_current(steward: Any) -> None:
    from modelsteward.server import create_app
    from server_helpers import bearer, make_tokens

    tokens = make_tokens(steward)
    with TestClient(create_app(steward, metrics_cache_seconds=0), raise_server_exceptions=False) as client:
        h = bearer(tokens["operator"])
        r = client.post("/api/models", json={"provider": "openai", "model_id": "x", "status": "current"}, headers=h)
        assert r.status_code == 422, r.text
        assert "status" in r.json()["message"]
        assert steward.registry.find_model("openai:x") is None  # nothing half-written
        # an existing model cannot be moved to current either, nor back to discovered
        assert client.post("/api/models", json={"provider": "openai", "model_id": "x"}, headers=h).status_code == 201
        r = client.post("/api/models", json={"provider": "openai", "model_id": "x", "status": "current"}, headers=h)
        assert r.status_code == 422 and steward.registry.get_model("openai:x").status == "discovered"
        r = client.post("/api/models", json={"provider": "openai", "model_id": "x", "status": "candidate"}, headers=h)
        assert r.status_code == 201 and r.json()["status"] == "candidate"
    with pytest.raises(InvalidInput, match="status"):
        call_tool("models_register", {"provider": "openai", "model_id": "y", "status": "shadow"},
                  ToolContext(steward=steward, actor="cli:alice"))
    with pytest.raises(InvalidInput, match="registered as discovered or candidate"):
        steward.registry.register_model("openai", "z", status="current")
    assert _events(steward, "openai:x") == [(None, "registered", None, "discovered"),
                                            (None, "marked_candidate", "discovered", "candidate")]


def test_register_never_moves_a_live_model(two: Any) -> None:
    st = two
    st.registry.register_model("openai", "stable-model", status="candidate")  # idempotent re-registration
    assert st.registry.get_model(STABLE).status == "current"
    assert st.registry.status_on(STABLE, UC) == "current"


# ---------------------------------------------------------------------- the machine
def test_illegal_transitions_are_refused_naming_status_and_allowed_events(two: Any) -> None:
    st = two
    n_before = len(_events(st, CAND))
    with pytest.raises(IllegalTransition) as err:
        with session_scope(st.sessions) as s:
            apply_status_event(s, CAND, "shadow_passed", UC)  # a candidate was never in shadow
    e = err.value
    assert e.details["current"] == "candidate" and "shadow_started" in e.details["allowed"]
    assert "'candidate'" in e.message and "promoted (-> current)" in e.message
    with pytest.raises(InvalidInput, match="Unknown status event"):
        with session_scope(st.sessions) as s:
            apply_status_event(s, CAND, "yolo")
    with pytest.raises(IllegalTransition):  # registered is for new models only
        with session_scope(st.sessions) as s:
            apply_status_event(s, CAND, "registered", to="candidate")
    with pytest.raises(IllegalTransition):  # restored names its target, and only current/canary/shadow
        with session_scope(st.sessions) as s:
            apply_status_event(s, CAND, "restored", UC, to="candidate")
    assert len(_events(st, CAND)) == n_before  # a refused event records nothing
    # every event's targets are real statuses, and nothing but registration starts from "no status"
    from modelsteward.storage.models import MODEL_STATUSES

    for name, table in EVENTS.items():
        for src, to in table.items():
            assert (src is None) == (name == "registered")
            assert set((to,) if isinstance(to, str) else to) <= set(MODEL_STATUSES)


def test_rollout_moves_statuses_through_named_events(two: Any) -> None:
    st = two
    mgr = RolloutManager(st)
    mgr.deploy(UC, CAND, "full", actor="cli:alice", reason="swap")
    assert st.registry.status_on(CAND, UC) == "current" and st.registry.status_on(STABLE, UC) == "candidate"
    # STABLE still serves OTHER: its global summary stays current there
    assert st.registry.status_on(STABLE, OTHER) == "current" and st.registry.get_model(STABLE).status == "current"
    assert (UC, "promoted", "candidate", "current") in _events(st, CAND)
    assert (UC, "replaced", "current", "candidate") in _events(st, STABLE)
    with session_scope(st.sessions) as s:
        ev = s.scalars(select(ModelStatusEvent).where(ModelStatusEvent.model_id == CAND,
                                                      ModelStatusEvent.event == "promoted")).one()
        assert ev.actor == "cli:alice" and ev.global_status == "current" and "rollout" in ev.reason


# ---------------------------------------------------------------------- per use case
def test_a_rollback_rejects_the_model_on_that_use_case_only(two: Any) -> None:
    st = two
    mgr = RolloutManager(st)
    mgr.deploy(UC, CAND, "canary", actor="cli:alice")
    assert st.registry.status_on(CAND, UC) == "canary"
    mgr.abort(UC, actor="guard", reason="error rate spike", reject=True)
    assert st.registry.status_on(CAND, UC) == "rejected"
    assert st.registry.status_on(CAND, OTHER) == "candidate"  # the hole: it was rejected everywhere
    assert st.registry.use_case_statuses([CAND])[CAND] == {UC: "rejected"}
    # ranking sees the status on the use case ranked
    from modelsteward.catalog.rank import rank_use_case

    def refused(name: str) -> dict[str, str]:
        return {r.model_id: r.reason for r in rank_use_case(st, name).rejected}

    assert refused(UC).get(CAND) == "status is rejected" and CAND not in refused(OTHER)
    # on its own use case it cannot be deployed again; elsewhere it can
    with pytest.raises(IllegalTransition, match=f"rejected on '{UC}'"):
        mgr.deploy(UC, CAND, "shadow", actor="cli:alice")
    mgr.deploy(OTHER, CAND, "shadow", actor="cli:alice")
    assert st.registry.status_on(CAND, OTHER) == "shadow" and st.registry.status_on(CAND, UC) == "rejected"
    assert st.registry.get_model(CAND).status == "shadow"  # the summary: the most active status
    assert [m.id for m in st.registry.list_models(use_case=UC, status="rejected")] == [CAND]
    assert (UC, "rejected", "canary", "rejected") in _events(st, CAND)


def test_a_new_passing_evaluation_makes_it_a_candidate_again(two: Any) -> None:
    st = two
    mgr = RolloutManager(st)
    mgr.deploy(UC, CAND, "canary", actor="cli:alice")
    mgr.abort(UC, actor="guard", reason="bad", reject=True)
    uc_id = _uc_id(st, UC)
    # a failing evaluation leaves it rejected (the event is recorded)
    assert not _mark_evaluating(st, CAND, uc_id, "cli:alice")  # a rejected model is not marked evaluating
    _record_verdict(st, CAND, uc_id, False, "cli:alice", 1)
    assert st.registry.status_on(CAND, UC) == "rejected"
    _record_verdict(st, CAND, uc_id, True, "cli:alice", 2)
    assert st.registry.status_on(CAND, UC) == "candidate"
    assert st.registry.get_model(CAND).status == "candidate"
    assert _events(st, CAND)[-2:] == [(UC, "evaluated_fail", "rejected", "rejected"),
                                      (UC, "evaluated_pass", "rejected", "candidate")]
    mgr.deploy(UC, CAND, "shadow", actor="cli:alice")  # deployable again


def test_evaluation_marks_and_restores_per_use_case(two: Any) -> None:
    st = two
    uc_id = _uc_id(st, UC)
    assert _mark_evaluating(st, CAND, uc_id, "cli:alice")
    assert st.registry.status_on(CAND, UC) == "evaluating" and st.registry.status_on(CAND, OTHER) == "candidate"
    _restore(st, CAND, uc_id, "cli:alice")  # an evaluation that did not finish
    assert st.registry.status_on(CAND, UC) == "candidate"
    # a live model is never marked evaluating (comparing decoding settings of the current model)
    assert not _mark_evaluating(st, STABLE, uc_id, "cli:alice")
    _record_verdict(st, STABLE, uc_id, False, "cli:alice", 3)
    assert st.registry.status_on(STABLE, UC) == "current"


def test_retirement_is_global_and_reinstatement_needs_an_operator(two: Any) -> None:
    st = two
    RolloutManager(st).retire(CAND, actor="cli:alice", reason="old")
    assert st.registry.status_on(CAND, UC) == st.registry.status_on(CAND, OTHER) == "retired"
    with pytest.raises(IllegalTransition, match="is retired"):
        RolloutManager(st).deploy(OTHER, CAND, "shadow", actor="cli:alice")
    st.registry.register_model("openai", "cand-model", status="candidate")  # the operator's reinstatement
    assert st.registry.status_on(CAND, OTHER) == "candidate"
    assert _events(st, CAND)[-2:] == [(None, "retired", "candidate", "retired"),
                                      (None, "reinstated", "retired", "candidate")]


def test_deleting_a_use_case_drops_its_statuses_but_keeps_the_trail(two: Any) -> None:
    st = two
    RolloutManager(st).deploy(UC, CAND, "canary", actor="cli:alice")
    RolloutManager(st).abort(UC, actor="guard", reason="bad", reject=True)
    removed = st.registry.delete_use_case(UC)
    assert removed["model_statuses"] >= 2 and removed["rollouts"] == 1
    assert st.registry.use_case_statuses([CAND]) == {}
    with session_scope(st.sessions) as s:
        assert s.get(Model, CAND) is not None
        assert any(e.use_case == UC and e.event == "rejected" for e in status_events(s, CAND))
