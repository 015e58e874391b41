"""Pure routing pieces: weighted and sticky picks, the attempt chain, the cooldown breaker, spend."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal

import pytest

from modelsteward.gateway.health import Cooldowns, Spend
from modelsteward.gateway.routing import Route


def _route(sticky: bool = False, live=(("a", 90.0, "primary"), ("b", 10.0, "canary")), fallback=("c", "a")) -> Route:
    return Route(name="uc", sticky=sticky, fallback=tuple(fallback), budget_usd=None, version=1,
                 live=tuple(live), shadows=())


def test_weighted_pick_follows_weights():
    r = _route()
    seen = Counter(r.pick()[0] for _ in range(4000))
    assert 0.86 < seen["a"] / 4000 < 0.94 and set(seen) == {"a", "b"}
    assert r.pick() in {("a", "primary"), ("b", "canary")}
    assert _route(live=()).pick() is None
    assert _route(live=(("a", 0.0, "primary"),)).pick() is None


def test_sticky_pick_is_stable_per_user_and_spreads_users():
    r = _route(sticky=True, live=(("a", 50.0, "primary"), ("b", 50.0, "canary")))
    for user in ("alice", "bob", "carol"):
        assert len({r.pick(user) for _ in range(20)}) == 1
    spread = Counter(r.pick(f"user{i}")[0] for i in range(400))
    assert 140 < spread["a"] < 260


def test_chain_tries_picked_then_other_live_then_fallback_without_repeats():
    r = _route()
    assert r.chain("b") == ["b", "a", "c"]
    assert r.chain("a") == ["a", "b", "c"]


def test_cooldown_opens_after_threshold_and_closes_on_success(monkeypatch):
    c = Cooldowns(threshold=3, cooldown_s=10)
    assert not c.failure("m") and not c.failure("m")
    assert not c.cooling("m")
    assert c.failure("m") and c.cooling("m")
    now = time.monotonic()
    assert not c.cooling("m", now + 11)  # cooldown over: the next request probes it
    assert c.failure("m")  # a failed probe re-opens at once
    c.success("m")
    assert not c.cooling("m") and c.snapshot()["m"]["consecutive_failures"] == 0
    assert c.snapshot()["m"]["times_opened"] == 2


def test_spend_caps_and_resets_at_the_month_boundary(monkeypatch):
    s = Spend()
    s.seed({"uc": 1.5})
    s.add("uc", 0.5)
    assert s.spent("uc") == pytest.approx(2.0)
    assert s.exceeded("uc", Decimal("2.0")) and not s.exceeded("uc", Decimal("2.01"))
    assert not s.exceeded("uc", None)
    real = time.time()
    monkeypatch.setattr(time, "time", lambda: real + 32 * 86400)
    assert s.spent("uc") == 0.0
