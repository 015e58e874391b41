"""What storage hands to the layers above it: read-only row views, never ORM rows, and transaction
objects whose writes are fenced like any other (issue 27 item 1)."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from modelsteward.policies import approvals
from modelsteward.storage import lease
from modelsteward.storage.approvals import transaction
from modelsteward.storage.policy_reads import reading
from modelsteward.storage.views import RowView


def test_the_registry_hands_out_read_only_views(steward) -> None:  # type: ignore[no-untyped-def]
    steward.registry.register_model("ollama", "llama3.2", kind="self_hosted", price_in_per_m="0.5")
    steward.registry.add_use_case("chat", model="ollama:llama3.2")
    m = steward.registry.get_model("ollama:llama3.2")
    assert isinstance(m, RowView) and m.kind == "self_hosted" and m.status == "current"
    assert str(m.price_in_per_m) == "0.5"
    with pytest.raises(AttributeError, match="read-only copy"):
        m.status = "retired"
    with pytest.raises(AttributeError, match="no column 'nope'"):
        _ = m.nope
    assert copy.deepcopy(m) == m
    dep = steward.registry.deployment("chat")
    assert isinstance(dep, RowView) and dep.version == 1
    assert steward.registry.routing_table(dep) == [{"model_id": "ollama:llama3.2", "weight": 100.0, "role": "primary"}]
    assert all(isinstance(x, RowView) for x in [*steward.registry.list_models(), *steward.registry.list_use_cases()])


def test_policy_reads_answer_in_one_transaction(steward) -> None:  # type: ignore[no-untyped-def]
    steward.registry.register_model("ollama", "a", kind="self_hosted")
    steward.registry.add_use_case("chat", model="ollama:a")
    with reading(steward.sessions) as r:
        uc = r.use_case("chat")
        assert uc is not None and r.use_case(None) is None and r.model(3) is None
        assert r.stable_model(uc.id) == "ollama:a" and r.is_primary_anywhere("ollama:a")
        assert r.live_allocations(uc.id) == [("ollama:a", "primary", 100.0)]
        assert r.active_rollout(uc.id) is None
        assert not r.has_passing_eval(uc.id, "ollama:a", dt.datetime(2000, 1, 1))


def test_approval_writes_are_fenced(steward) -> None:  # type: ignore[no-untyped-def]
    assert lease.acquire(steward.sessions, "ctl", "replica-a", 30).term == 1
    with pytest.raises(lease.LeaseLost):
        with lease.fenced("ctl", "replica-b", 1):  # not the holder: nothing is written
            approvals.create(steward.sessions, action="deploy", arguments={"use_case": "x"}, reason="r",
                             requester="cli:alice")
    assert approvals.list_approvals(steward.sessions, None) == []
    with lease.fenced("ctl", "replica-a", 1):
        a = approvals.create(steward.sessions, action="deploy", arguments={"use_case": "x"}, reason="r",
                             requester="cli:alice")
    with transaction(steward.sessions) as tx:
        assert [x.id for x in tx.pending("deploy")] == [a.id]
        assert approvals.withdraw(tx, a, "cause cleared")
        assert not approvals.withdraw(tx, tx.get(a.id), "again")  # no longer pending: nothing happens
    assert approvals.get(steward.sessions, a.id).status == "withdrawn"
