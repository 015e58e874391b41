"""Ranker benchmark: 10,000 models x 20 use cases, vectorised (numpy) against pure Python.

    .venv/bin/python bench/rank.py [--models 10000] [--use-cases 20] [--repeat 5]

Both sides do the same work per use case: blended price at the use case's token mix, cost and
latency scores, weighted score, full sort, cost/quality Pareto front.  The baseline is
``modelsteward.catalog.rank.naive_rank`` (one use case, one model at a time, sort-based front),
checked equal to the vectorised result before timing is reported.  Target: <= 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from _table import row  # noqa: E402
from modelsteward.catalog.rank import naive_rank, score_matrix  # noqa: E402


def make_inputs(n: int, u: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    pin = rng.lognormal(-0.5, 1.5, n)
    pout = pin * rng.uniform(1.5, 6, n)
    unknown = rng.random(n) < 0.02  # router models with no fixed price
    pin[unknown] = np.nan
    pout[unknown] = np.nan
    free = rng.random(n) < 0.05
    pin[free] = 0.0
    pout[free] = 0.0
    return {
        "price_in": pin, "price_out": pout, "input_share": rng.uniform(0.4, 0.95, u),
        "quality": rng.uniform(0.2, 0.95, (u, n)).round(3), "quality_conf": rng.uniform(0.2, 0.9, (u, n)),
        "latency_ms": rng.uniform(80, 6000, (u, n)), "latency_conf": rng.uniform(0.2, 0.9, (u, n)),
        "weights": rng.dirichlet([2, 2, 1], u), "latency_ref_ms": rng.choice([1000.0, 2000.0, 5000.0], u),
    }


def timed(fn, repeat: int) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=10_000)
    ap.add_argument("--use-cases", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    x = make_inputs(args.models, args.use_cases)

    best, med, arr = timed(lambda: score_matrix(**x), args.repeat)

    lists = {k: v.tolist() for k, v in x.items()}
    t0 = time.perf_counter()
    naive = naive_rank(lists["price_in"], lists["price_out"], lists["input_share"], lists["quality"],
                       lists["latency_ms"], [tuple(w) for w in lists["weights"]], lists["latency_ref_ms"])
    naive_s = time.perf_counter() - t0

    for u, (order, front) in enumerate(naive):  # same answer before any timing is believed
        assert arr.order[u].tolist() == order, f"order differs for use case {u}"  # type: ignore[attr-defined]
        assert arr.pareto[u].tolist() == front, f"Pareto front differs for use case {u}"  # type: ignore[attr-defined]

    front_sizes = arr.pareto.sum(axis=1)  # type: ignore[attr-defined]
    print(f"rank {args.models:,} models x {args.use_cases} use cases "
          f"(score, full sort, Pareto front; fronts of {front_sizes.min()}-{front_sizes.max()} models)")
    print(f"  vectorised (numpy): best {best * 1000:.1f} ms, median {med * 1000:.1f} ms over {args.repeat} runs")
    print(f"  naive pure Python:  {naive_s * 1000:.1f} ms (one run)")
    print(f"  speed-up: {naive_s / best:.1f}x (best), {naive_s / med:.1f}x (median)")
    ok = med <= 1.0
    print(f"  target <= 1 s: {'PASS' if ok else 'FAIL'}")
    row("rank", f"rank {args.models:,} models x {args.use_cases} use cases (median)", round(med * 1000, 1), "ms",
        baseline=round(naive_s * 1000, 1), baseline_what="pure Python, one model at a time", target="<= 1000 ms",
        met=ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
