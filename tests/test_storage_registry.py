"""Storage conformance: the same suite on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, inspect, select

from modelsteward.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from modelsteward.storage.db import current_revision, head_revision, make_engine, upgrade
from modelsteward.storage.models import DeploymentHistory, ModelSnapshot
from modelsteward.storage.registry import STATUS_TRANSITIONS

ALL_TABLES = {
    "use_cases", "models", "deployments", "allocations", "model_snapshots", "deployment_history",
    "guardrail_violations", "fine_tuning_jobs", "test_results", "approvals", "agent_runs",
}


def test_migrations_from_empty_and_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert ALL_TABLES <= tables
    upgrade(engine)  # a second run is a no-op
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_register_is_idempotent_upsert(any_steward) -> None:  # type: ignore[no-untyped-def]
    reg = any_steward.registry
    a = reg.register_model("openrouter", "openai/gpt-4o-mini", price_in_per_m="0.15", price_out_per_m="0.6",
                           context_length=128000, capabilities=["tools", "json"])
    b = reg.register_model("openrouter", "openai/gpt-4o-mini", price_out_per_m="0.5")
    assert a.id == b.id == "openrouter:openai/gpt-4o-mini"
    assert len(reg.list_models()) == 1
    m = reg.get_model(a.id)
    # Decimal all the way: no float drift in stored prices
    assert m.price_in_per_m == Decimal("0.15")
    assert m.price_out_per_m == Decimal("0.5")
    assert m.context_length == 128000
    assert m.capabilities == ["json", "tools"]
    assert m.kind == "paid" and m.status == "discovered"


def test_tiny_prices_keep_exact_decimals(any_steward) -> None:  # type: ignore[no-untyped-def]
    reg = any_steward.registry
    reg.register_model("openrouter", "x/tiny", price_in_per_m="0.0000001", price_out_per_m="123456.123456789")
    m = reg.get_model("openrouter:x/tiny")
    assert m.price_in_per_m == Decimal("0.0000001")
    assert m.price_out_per_m == Decimal("123456.123456789")


@pytest.mark.parametrize("bad", ["-1", "abc", "nan", "inf"])
def test_bad_prices_refused(any_steward, bad: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="price"):
        any_steward.registry.register_model("openai", "gpt-x", price_in_per_m=bad)
    assert any_steward.registry.list_models() == []


def test_list_and_filter(any_steward) -> None:  # type: ignore[no-untyped-def]
    reg = any_steward.registry
    reg.add_use_case("chat", description="c")
    reg.register_model("openai", "a", use_case="chat")
    reg.register_model("ollama", "b", status="candidate")
    reg.register_model("local", "c")
    assert [m.id for m in reg.list_models(use_case="chat")] == ["openai:a"]
    assert [m.id for m in reg.list_models(status="candidate")] == ["ollama:b"]
    assert [m.id for m in reg.list_models(provider="local")] == ["local:c"]
    assert reg.get_model("ollama:b").kind == "self_hosted"
    with pytest.raises(InvalidInput, match="Unknown status"):
        reg.list_models(status="bogus")


def test_status_machine(any_steward) -> None:  # type: ignore[no-untyped-def]
    reg = any_steward.registry
    reg.register_model("openai", "m")
    reg.set_status("openai:m", "candidate")
    reg.set_status("openai:m", "evaluating")
    reg.set_status("openai:m", "rejected")
    with pytest.raises(IllegalTransition) as err:
        reg.set_status("openai:m", "current")
    msg = str(err.value)
    # the message names the status and the named events it allows (storage/status.py)
    assert "'rejected'" in msg and "reinstated (-> candidate)" in msg and "evaluated_pass" in msg
    assert reg.get_model("openai:m").status == "rejected"
    # every listed transition is accepted and every other one refused
    for src, targets in STATUS_TRANSITIONS.items():
        assert src not in targets


def test_use_case_crud_and_first_model(any_steward) -> None:  # type: ignore[no-untyped-def]
    reg = any_steward.registry
    reg.register_model("local", "smollm2-135m-instruct")
    reg.register_model("openai", "gpt-4o-mini")
    uc = reg.add_use_case("story_teller", description="stories", model="local:smollm2-135m-instruct",
                          fallback=["openai:gpt-4o-mini"], monthly_budget_usd="50.25",
                          weights={"quality": 2, "cost": 1, "latency": 1})
    assert uc.weights == pytest.approx({"quality": 0.5, "cost": 0.25, "latency": 0.25})
    assert uc.monthly_budget_usd == Decimal("50.25")
    dep = reg.deployment("story_teller")
    assert dep.version == 1
    assert reg.routing_table(dep) == [{"model_id": "local:smollm2-135m-instruct", "weight": 100.0, "role": "primary"}]
    assert reg.current_model("story_teller").id == "local:smollm2-135m-instruct"
    assert reg.get_model("local:smollm2-135m-instruct").status == "current"
    with reg.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ModelSnapshot)) == 1
        hist = s.scalars(select(DeploymentHistory)).all()
        assert [h.action for h in hist] == ["initial"] and hist[0].to_version == 1
    with pytest.raises(Conflict):
        reg.add_use_case("story_teller", description="again")
    reg.update_use_case("story_teller", description="tales")
    assert reg.get_use_case("story_teller").description == "tales"
    with pytest.raises(NotFound, match="Did you mean: story_teller"):
        reg.get_use_case("story_telle")
    reg.delete_use_case("story_teller")
    assert reg.list_use_cases() == []


def test_bad_use_case_input_changes_nothing(any_steward) -> None:  # type: ignore[no-untyped-def]
    reg = any_steward.registry
    with pytest.raises(NotFound, match="Unknown model"):
        reg.add_use_case("x", description="d", model="openai:nope")
    with pytest.raises(InvalidInput, match="negative"):
        reg.add_use_case("y", description="d", weights={"quality": -1, "cost": 1})
    with pytest.raises(InvalidInput):
        reg.add_use_case("bad name!", description="d")
    assert reg.list_use_cases() == []


def test_write_routing_validates_weights(any_steward) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.storage.db import session_scope
    from modelsteward.storage.models import UseCase

    reg = any_steward.registry
    reg.register_model("openai", "a")
    reg.register_model("openai", "b")
    reg.add_use_case("u", description="d", model="openai:a")
    with pytest.raises(InvalidInput, match="not 100%"):
        with session_scope(reg.sessions) as s:
            uc = s.scalar(select(UseCase).where(UseCase.name == "u"))
            reg.write_routing(s, uc, [{"model_id": "openai:a", "weight": 90, "role": "primary"},
                                      {"model_id": "openai:b", "weight": 5, "role": "canary"}],
                              action="canary", actor="t", reason="r")
    with session_scope(reg.sessions) as s:
        uc = s.scalar(select(UseCase).where(UseCase.name == "u"))
        reg.write_routing(s, uc, [{"model_id": "openai:a", "weight": 95, "role": "primary"},
                                  {"model_id": "openai:b", "weight": 5, "role": "canary"},
                                  {"model_id": "openai:b", "weight": 0, "role": "shadow"}],
                          action="canary", actor="t", reason="r")
    dep = reg.deployment("u")
    assert dep.version == 2 and len(dep.allocations) == 3
