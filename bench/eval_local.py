"""Evaluation benchmark (issue 28 item 4): an evaluation whose baseline is the embedded local model,
batched against one request at a time, in the same run.

    .venv/bin/python bench/eval_local.py [--samples 20] [--max-tokens 256] [--safety-prompts N] [--no-safety]

A real workspace (SQLite registry, Parquet logs): ``--samples`` logged prompts of use case ``qa``,
whose current model is ``local:smollm2-135m-instruct`` (the converted SmolLM2-135M-Instruct, loaded
once, and one small evaluation run, before the clock starts); the candidate is an OpenAI-compatible
wire fake (``fakes/judge.py``) that answers at once, so the time measured is the local baseline's
plus the scoring.  Both sides replay with ``temperature`` 0.7, as the logged traffic of issue 28
did, so every baseline generation is sampled.  Timed, one after the other on the same loaded model:

- one at a time: ``STEWARD_LOCAL_MAX_BATCH=1`` (the provider's ``max_batch`` 1), as sampled
  requests ran before;
- batched: the provider's default ``max_batch`` (8), sampled rows in one ``generate`` each with its
  own settings;
- cycle cache: a second evaluation in the same agent cycle (same ``CycleCache``), another
  candidate: the baseline is served from the cycle's cache.

The red-team prompts come on top (all shipped ones unless ``--safety-prompts`` or
``--no-safety``).  The disk cache is off in every run.  Prints ``BENCH-ROW`` lines (``_table.py``)
and one JSON line; report ``uptime``'s load with the figures (the machine is shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("STEWARD_ALLOWED_HOSTS", "127.0.0.1")  # the wire fake candidate

from _table import row  # noqa: E402

from modelsteward.context import open_steward  # noqa: E402
from modelsteward.evals import CycleCache, EvalConfig, evaluate  # noqa: E402
from modelsteward.fakes.judge import FakeJudge  # noqa: E402
from modelsteward.providers import get_provider  # noqa: E402
from modelsteward.settings import Settings  # noqa: E402

LOCAL = "local:smollm2-135m-instruct"
TOPICS = ("a lighthouse", "a lost cat", "the first snow", "a broken clock", "a dragon who bakes", "a night train",
          "an old map", "a robot gardener", "a quiet library", "a storm at sea", "a secret door", "a desert well",
          "a paper boat", "a mountain echo", "a glass key", "a market at dawn", "a sleepy volcano", "a comet",
          "a kite festival", "a forgotten song")
ASKS = ("Write a two-sentence story about {}.", "Describe {} in one short paragraph.",
        "Give three facts someone might invent about {}.", "Write a haiku about {}.")


def _prompts(n: int) -> list[str]:
    return [ASKS[i % len(ASKS)].format(TOPICS[i % len(TOPICS)]) + ("" if i < len(TOPICS) else f" (take {i})")
            for i in range(n)]


def _world(st: Any, fake: FakeJudge, samples: int) -> None:
    reg = st.registry
    reg.register_model("local", "smollm2-135m-instruct")
    for name in ("cand", "cand2"):
        reg.register_model("custom", name, base_url=fake.base_url)
    reg.add_use_case("qa", model=LOCAL)
    ts = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    rows = [{"ts": (ts + dt.timedelta(seconds=i)).isoformat(), "request_id": f"req-{i}", "use_case": "qa",
             "model_id": LOCAL, "role": "primary", "messages": [{"role": "user", "content": q}],
             "response": "A short answer.", "input_tokens": 20, "output_tokens": 40, "latency_ms": 900.0,
             "cost_usd": 0.0, "status": "ok", "feedback": 1.0} for i, q in enumerate(_prompts(samples))]
    st.logs.append_many(rows)
    st.logs.flush()


def _eval(st: Any, args: argparse.Namespace, candidate: str, cache: CycleCache | None) -> tuple[float, Any]:
    cfg = EvalConfig(use_case="qa", candidate=candidate, samples=args.samples, max_tokens=args.max_tokens,
                     safety=not args.no_safety, safety_prompts=args.safety_prompts, use_cache=True,
                     baseline_params={"temperature": 0.7}, candidate_params={"temperature": 0.7}, mlflow=False)
    if cache is None:
        cfg = cfg.model_copy(update={"use_cache": False})
    t0 = time.perf_counter()
    out = evaluate(st, cfg, baseline_cache=cache)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--safety-prompts", type=int, default=None)
    ap.add_argument("--no-safety", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-eval-local-") as tmp, \
            FakeJudge(answers={"cand": "A short answer.", "cand2": "Another short answer."}) as fake:
        st = open_steward(Settings(home=Path(tmp) / "ws", log_flush_seconds=0.2))
        try:
            _world(st, fake, args.samples)
            prov: Any = get_provider(st.registry.get_model(LOCAL), st.settings)
            prov.load()  # weights loaded before the clock starts, once for every path
            # a small evaluation first, so no timed path pays the one-time costs (imports, the embedder)
            _eval(st, argparse.Namespace(samples=2, max_tokens=2, no_safety=False, safety_prompts=1), "custom:cand",
                  None)
            batch = prov.max_batch
            prov.max_batch = 1
            one_s, one = _eval(st, args, "custom:cand", None)
            prov.max_batch, before = batch, prov.batches
            batched_s, batched = _eval(st, args, "custom:cand", None)
            batches = prov.batches - before
            cache = CycleCache()
            _eval(st, args, "custom:cand", cache)  # the cycle's first evaluation fills its cache ...
            cached_s, cached = _eval(st, args, "custom:cand2", cache)  # ... the second is served from it
        finally:
            st.close()
    items = args.samples + (0 if args.no_safety else (args.safety_prompts or 16))
    load_end = os.getloadavg()[0]
    note = f"{items} baseline generations, max_tokens {args.max_tokens}, temperature 0.7; load {load:.1f}->{load_end:.1f}"
    row("eval_local", f"{args.samples}-sample evaluation, local baseline, batched", round(batched_s, 2), "s",
        baseline=round(one_s, 2), baseline_what="one request at a time (max_batch 1)", target="<= 90 s",
        met=batched_s <= 90 if (args.samples, args.max_tokens) == (20, 256) and load < 1.5 else None, note=note)
    row("eval_local", "second evaluation of a cycle (baseline from the cycle cache)", round(cached_s, 2), "s",
        baseline=round(batched_s, 2), baseline_what="batched evaluation without the cache", note=note)
    print(json.dumps({"samples": args.samples, "items": items, "max_tokens": args.max_tokens,
                      "one_at_a_time_s": round(one_s, 2), "batched_s": round(batched_s, 2),
                      "speedup": round(one_s / batched_s, 2) if batched_s else None, "batched_generate_calls": batches,
                      "cycle_cache_second_eval_s": round(cached_s, 2),
                      "cached_baseline": cached.metrics["performance"]["baseline"].get("cached"),
                      "verdicts": [one.verdict, batched.verdict, cached.verdict], "load_start": round(load, 2),
                      "load_end": round(load_end, 2)}))


if __name__ == "__main__":
    main()
