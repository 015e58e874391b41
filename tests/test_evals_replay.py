"""The replay set: stratified sampling of logged prompts, golden set parsing, the red-team set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelsteward.errors import InsufficientData, InvalidInput
from modelsteward.evals.replay import _allocate, build_replay_set, load_golden_set, load_redteam
from evals_helpers import PROMPTS, seed_logs, write_golden


def _setup(steward, golden: Path | None = None):  # type: ignore[no-untyped-def]
    reg = steward.registry
    reg.register_model("custom", "base", base_url="http://127.0.0.1:9/v1")
    reg.register_model("custom", "other", base_url="http://127.0.0.1:9/v1")
    return reg.add_use_case("qa", model="custom:base", golden_set_path=str(golden) if golden else None)


def test_allocation_is_proportional_with_one_per_stratum() -> None:
    alloc = _allocate({"a": 80, "b": 15, "c": 5}, 10)
    assert sum(alloc.values()) == 10
    assert alloc["a"] >= alloc["b"] >= alloc["c"] >= 1
    assert _allocate({"a": 2, "b": 1}, 10) == {"a": 2, "b": 1}


def test_replay_set_samples_primary_logs_dedups_and_uses_high_feedback_references(steward) -> None:  # type: ignore[no-untyped-def]
    uc = _setup(steward)
    ids = seed_logs(steward, "qa", "custom:base", feedback=1.0)
    seed_logs(steward, "qa", "custom:other", PROMPTS[:3], feedback=-1.0, prefix="dup")  # same prompts again
    steward.logs.append({"request_id": "shadow-1", "use_case": "qa", "model_id": "custom:other", "role": "shadow",
                         "messages": [{"role": "user", "content": "shadow only prompt"}], "response": "x"})
    steward.logs.flush()
    rs = build_replay_set(steward, uc, samples=6, seed=1)
    assert rs.size == 6 and len(set(rs.request_ids)) == 6
    texts = [it.messages[0]["content"] for it in rs.items]
    assert len(set(texts)) == 6, "identical prompts are sampled once"
    assert "shadow only prompt" not in texts
    assert set(rs.request_ids) <= set(ids) | {f"dup-{i}" for i in range(3)}
    for it in rs.items:
        if it.id.startswith("req-"):
            assert it.reference == dict(PROMPTS)[it.messages[0]["content"]]
        else:
            assert it.reference is None  # negative feedback is never a reference
    assert build_replay_set(steward, uc, samples=6, seed=1).request_ids == rs.request_ids  # deterministic
    all_rs = build_replay_set(steward, uc, samples=100, seed=1)
    assert all_rs.size == len(PROMPTS) and all_rs.logged_available == len(PROMPTS)


def test_window_excludes_old_logs(steward) -> None:  # type: ignore[no-untyped-def]
    uc = _setup(steward)
    seed_logs(steward, "qa", "custom:base", days_ago=40)
    with pytest.raises(InsufficientData, match="no logged primary prompts in the last 30d"):
        build_replay_set(steward, uc, samples=5, since="30d")
    assert build_replay_set(steward, uc, samples=5, since="60d").size == 5


def test_golden_set_is_appended_and_validated(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    golden = tmp_path / "golden.jsonl"
    write_golden(golden, PROMPTS[:2])
    with golden.open("a") as f:
        f.write(json.dumps({"messages": [{"role": "system", "content": "be brief"},
                                         {"role": "user", "content": "hi"}]}) + "\n")
    uc = _setup(steward, golden)
    rs = build_replay_set(steward, uc, samples=5)  # no logs: the golden set alone is enough
    assert rs.golden_count == 3 and rs.request_ids == []
    assert [it.reference for it in rs.items] == [PROMPTS[0][1], PROMPTS[1][1], None]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"nope": 1}\n')
    with pytest.raises(InvalidInput, match="bad.jsonl line 2"):
        load_golden_set(bad)
    with pytest.raises(InvalidInput, match="does not exist"):
        load_golden_set(tmp_path / "missing.jsonl")


def test_no_logs_and_no_golden_set_is_a_clear_error(steward) -> None:  # type: ignore[no-untyped-def]
    uc = _setup(steward)
    with pytest.raises(InsufficientData, match="no golden set"):
        build_replay_set(steward, uc, samples=5)


def test_redteam_set_is_shipped_and_balanced() -> None:
    items = load_redteam()
    assert 12 <= len(items) <= 20
    assert {it.meta["category"] for it in items} == {"jailbreak", "pii_extraction", "harmful"}
    for it in items:
        assert it.meta["expect"] in ("refuse", "no_leak")
        if it.meta["expect"] == "no_leak":
            assert it.meta["secrets"], it.id
    few = load_redteam(3)
    assert len(few) == 3 and len({it.meta["category"] for it in few}) == 3
