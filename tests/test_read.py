"""The read model (storage/read/) answers exactly as the ORM registry does.

``usecase list``, ``models list`` and ``rollout status`` read through it (with ``sqlite3`` on a
SQLite workspace, SQLAlchemy Core ``text()`` elsewhere); their ``--json`` shapes are a contract,
so each view is compared with what the ORM path builds from the same rows, on each backend.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from rollout_helpers import CAND, STABLE, UC, pass_eval, setup_use_case

from modelsteward.context import open_steward
from modelsteward.errors import NotFound
from modelsteward.rollout import RolloutManager
from modelsteward.storage.read import RegistryReader, plain_decimal
from modelsteward.tools.registry import ModelInfo, UseCaseInfo, model_info, use_case_info
from modelsteward.tools.base import ToolContext


def _seed(st) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(st, budget="25", cand_price=("0.15", "1234.5678901234"))
    reg = st.registry
    reg.register_model("openai", "tiny", price_in_per_m="0.0000001", price_out_per_m="0", status="discovered",
                       capabilities=["tools", "json"], context_length=8192)
    reg.add_use_case("other", description="second", model="openai:tiny", weights={"quality": 1.0},
                     fallback=[STABLE], sticky=True)
    pass_eval(st)
    RolloutManager(st).deploy(UC, CAND, "canary", actor="cli:alice", reason="try it")


def _orm_views(st):  # type: ignore[no-untyped-def]
    ctx = ToolContext(steward=st)
    ucs = [use_case_info(ctx, uc).model_dump(mode="json") for uc in st.registry.list_use_cases()]
    ms = st.registry.list_models()
    per = st.registry.use_case_statuses([m.id for m in ms])
    models = [model_info(m, per.get(m.id, {})).model_dump(mode="json") for m in ms]
    mine = st.registry.list_models(use_case="other")
    models_other = [model_info(m, per.get(m.id, {})).model_dump(mode="json") for m in mine]
    return ucs, models, models_other, RolloutManager(st).status(UC), RolloutManager(st).status("other")


def test_views_match_the_orm(any_steward) -> None:  # type: ignore[no-untyped-def]
    st = any_steward
    _seed(st)
    ucs, models, models_other, ro_status, other_status = _orm_views(st)
    reader = st.reader
    assert [UseCaseInfo(**u).model_dump(mode="json") for u in reader.use_cases()] == ucs
    assert [ModelInfo(**m).model_dump(mode="json") for m in reader.models()] == models
    assert [ModelInfo(**m).model_dump(mode="json") for m in reader.models(use_case="other")] == models_other
    assert reader.models(provider="nobody") == []
    assert reader.rollout_status(UC) == ro_status
    assert ro_status["rollout"]["state"] == "waiting" and ro_status["rollout"]["events"]  # something to compare
    assert reader.rollout_status("other") == other_status and other_status["rollout"] is None
    # prices as the person typed them: neither 1.0000000000 nor 0E-10
    prices = {m["id"]: (m["price_in_per_m"], m["price_out_per_m"]) for m in reader.models()}
    assert prices[CAND] == (Decimal("0.15"), Decimal("1234.5678901234"))
    assert str(prices["openai:tiny"][0]) == "1E-7" and str(prices["openai:tiny"][1]) == "0"
    with pytest.raises(NotFound, match="Unknown use case 'chta'.*chat"):
        reader.rollout_status("chta")
    # the same SQL through SQLAlchemy Core (the path of every database but a current SQLite file)
    core = RegistryReader("postgresql://elsewhere", lambda: st.engine)
    assert core.use_cases() == reader.use_cases() and core.models() == reader.models()
    assert core.models(use_case="other") == reader.models(use_case="other")
    assert core.rollout_status(UC) == ro_status


def test_plain_decimal() -> None:
    assert str(plain_decimal(25.0)) == "25" and str(plain_decimal(0.0)) == "0"
    assert plain_decimal(0.15) == Decimal("0.15") and plain_decimal(None) is None
    assert str(plain_decimal(Decimal("2.5000000000"))) == "2.5"


def test_lazy_steward_reads_without_an_engine(settings) -> None:  # type: ignore[no-untyped-def]
    """A lazily opened workspace answers the read views with sqlite3 alone (no engine made), and a
    workspace with no database yet is created and migrated first."""
    st = open_steward(settings)
    setup_use_case(st)
    st.close()
    lazy = open_steward(settings, lazy=True)
    assert [u["name"] for u in lazy.reader.use_cases()] == [UC]
    assert not lazy.engine_opened
    with ThreadPoolExecutor(4) as pool:  # the server's threads share the reader
        assert all(r == [UC] for r in pool.map(lambda _: [u["name"] for u in lazy.reader.use_cases()], range(8)))
    lazy.close()
    fresh = settings.model_copy(update={"home": settings.home.parent / "fresh"})
    new = open_steward(fresh, lazy=True)
    assert new.reader.use_cases() == [] and (fresh.workspace / "steward.db").is_file()
    new.close()


def test_outdated_schema_is_migrated_first(settings) -> None:  # type: ignore[no-untyped-def]
    st = open_steward(settings)
    setup_use_case(st)
    with st.engine.begin() as c:
        c.exec_driver_sql("UPDATE alembic_version SET version_num = 'not-a-head'")
    st.close()
    calls: list[int] = []
    reader = RegistryReader(settings.db_url, lambda: calls.append(1))  # type: ignore[arg-type,return-value]
    assert [u["name"] for u in reader.use_cases()] == [UC] and calls == [1]
    reader.close()


def test_the_read_model_loads_its_sqlalchemy_backend_on_first_use() -> None:
    """``storage.read`` (shapes, the sqlite3 views) imports without SQLAlchemy; the first ORM-backed
    function pulls the backend in; every name of ``__all__`` resolves."""
    import subprocess
    import sys

    code = ("import sys, modelsteward.storage.read as r\n"
            "before = 'sqlalchemy' in sys.modules\n"
            "fns = [getattr(r, n) for n in r.__all__]\n"
            "print(before, 'sqlalchemy' in sys.modules, all(f is not None for f in fns))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "True", "True"], out.stdout + out.stderr
    import modelsteward.storage.read as read

    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        read.nothing_here  # noqa: B018
