"""The baseline cache of an agent cycle (``evals.runner.CycleCache``): the cycle's second evaluation
on the same sample does not generate the baseline again; the next cycle does; the key follows the
model's revision (a retrained adapter is another model)."""

from __future__ import annotations

import os
import types

from modelsteward.evals import CycleCache
from modelsteward.evals.runner import OutputCache, model_revision
from modelsteward.fakes.judge import FakeJudge
from evals_helpers import PROMPTS, seed_logs


def _baseline_calls(fake: FakeJudge) -> int:
    return sum(1 for r in fake.requests if r.get("model") == "good")


def test_baseline_is_generated_once_per_cycle(steward) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.tools import ToolContext, call_tool

    answers = {m: (lambda q: dict(PROMPTS).get(q, "no")) for m in ("good", "cand", "cand2")}
    with FakeJudge(answers=answers) as fake:
        reg = steward.registry
        for name in ("good", "cand", "cand2"):
            reg.register_model("custom", name, base_url=fake.base_url)
        reg.add_use_case("qa", model="custom:good")
        seed_logs(steward, "qa", "custom:good")
        cycle = ToolContext(steward=steward, actor="agent:run-1", eval_cache=CycleCache())
        args = {"use_case": "qa", "samples": 5, "safety": False, "baseline_params": {"temperature": 0.7}}
        first = call_tool("evaluate", {**args, "model_id": "custom:cand"}, cycle)
        after_first = _baseline_calls(fake)
        second = call_tool("evaluate", {**args, "model_id": "custom:cand2"}, cycle)
        after_second = _baseline_calls(fake)
        next_cycle = ToolContext(steward=steward, actor="agent:run-2", eval_cache=CycleCache())
        third = call_tool("evaluate", {**args, "model_id": "custom:cand"}, next_cycle)
        after_third = _baseline_calls(fake)
        cand_calls = sum(1 for r in fake.requests if r.get("model") in ("cand", "cand2"))
    assert after_first == 5
    assert after_second == 5, "the cycle's second evaluation generated the baseline again"
    assert after_third == 10, "the next cycle re-used the previous cycle's baseline answers"
    assert cand_calls == 15  # candidates are always measured afresh
    perf = [o.metrics.performance["baseline"]["cached"] for o in (first, second, third)]  # type: ignore[attr-defined]
    assert perf == [0, 5, 0]
    assert cycle.eval_cache is not None and cycle.eval_cache.hits == 5  # type: ignore[attr-defined]
    assert all(r.get("temperature") == 0.7 for r in fake.requests if r.get("model") == "good")
    assert not (steward.settings.workspace / "evals" / "cache").exists()  # a cycle's answers stay in the cycle


def test_agent_runtime_owns_one_cache_per_run(steward) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.agent.runtime import AgentRuntime

    one = AgentRuntime(steward=steward, planner=None, tools={}, run_id=1, thread_id="t1")  # type: ignore[arg-type]
    two = AgentRuntime(steward=steward, planner=None, tools={}, run_id=2, thread_id="t2")  # type: ignore[arg-type]
    assert one.ctx().eval_cache is one.ctx(approval_id=3).eval_cache is one.eval_cache
    assert two.ctx().eval_cache is not one.ctx().eval_cache


def test_cycle_cache_keeps_at_most_max_entries() -> None:
    cache = CycleCache(max_entries=2)
    for k in "abc":
        cache.put(k, {"text": k})
    assert len(cache) == 2 and cache.get("a") is None and cache.get("c") == {"text": "c"}
    got = cache.get("c")
    assert got is not None
    got["text"] = "changed"  # a caller's change does not reach the cache
    assert cache.get("c") == {"text": "c"}
    assert (cache.hits, cache.misses) == (3, 1)


def test_revision_changes_with_the_adapter_files_and_the_endpoint(tmp_path) -> None:  # type: ignore[no-untyped-def]
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"v1")
    model = types.SimpleNamespace(id="local:ft", provider="local", base_url=None, parent_model_id="local:base",
                                  adapter_path=str(adapter), meta={})
    before = model_revision(model)  # type: ignore[arg-type]
    assert model_revision(model) == before  # type: ignore[arg-type]
    (adapter / "adapter_model.safetensors").write_bytes(b"v2-retrained")
    os.utime(adapter / "adapter_model.safetensors", ns=(1, 1))
    assert model_revision(model) != before  # type: ignore[arg-type]
    remote = types.SimpleNamespace(id="custom:m", provider="custom", base_url="http://a/v1", parent_model_id=None,
                                   adapter_path=None, meta={"version": "1"})
    moved = types.SimpleNamespace(**{**vars(remote), "base_url": "http://b/v1"})
    bumped = types.SimpleNamespace(**{**vars(remote), "meta": {"version": "2"}})
    revs = {model_revision(m) for m in (remote, moved, bumped)}  # type: ignore[arg-type]
    assert len(revs) == 3
    msgs = [{"role": "user", "content": "hi"}]
    assert OutputCache.key("m", msgs, {}, revision="r1") != OutputCache.key("m", msgs, {}, revision="r2")
