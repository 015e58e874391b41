"""Log store benchmark: ingest through append() and stats over 10M rows, each against a baseline.

    .venv/bin/python bench/logstore.py [--rows 1000000] [--stats-rows 10000000]

Ingest baseline: the same rows inserted into a DuckDB table with a prepared executemany (what a
"just put it in DuckDB" design would do).  Stats baseline: the same stats query over an in-memory
DuckDB table holding the same rows (the engine without the Parquet layout).  Stats are timed twice:
on segments as the store writes them (a per-(model, role) rollup in each footer, so only latency
and status are scanned for the quantiles) and on the same files without rollups (every column
aggregated, as for segments written by something else).
Targets (2-core machine): append() >= 200k rows/s; stats over 10M rows <= 0.5 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROW = {
    "request_id": "r", "use_case": "story_teller", "model_id": "local:smollm2-135m-instruct", "role": "primary",
    "messages": '[{"role":"user","content":"Tell me a story about a dragon who learns to bake."}]',
    "response": "Once upon a time, a dragon named Ember discovered flour...", "input_tokens": 21,
    "output_tokens": 64, "latency_ms": 812.5, "cost_usd": 0.00002, "status": "ok",
}


def bench_ingest(n: int) -> tuple[float, float]:
    import duckdb

    from modelsteward.storage.logstore import LogStore

    root = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    try:
        store = LogStore(root, batch_rows=50_000, flush_seconds=1.0)
        rows = [dict(ROW, request_id=f"r{i}") for i in range(n)]
        t = time.perf_counter()
        append = store.append
        for r in rows:
            append(r)
        ours = n / (time.perf_counter() - t)
        store.close()
        con = duckdb.connect()
        con.execute("CREATE TABLE logs (request_id VARCHAR, use_case VARCHAR, model_id VARCHAR, role VARCHAR, "
                    "messages VARCHAR, response VARCHAR, input_tokens BIGINT, output_tokens BIGINT, latency_ms DOUBLE, "
                    "cost_usd DOUBLE, status VARCHAR)")
        m = min(n, 50_000)  # executemany is slow; measure a slice and report the rate
        tuples = [tuple(r.values()) for r in rows[:m]]
        t = time.perf_counter()
        con.executemany("INSERT INTO logs VALUES (?,?,?,?,?,?,?,?,?,?,?)", tuples)
        base = m / (time.perf_counter() - t)
        return ours, base
    finally:
        shutil.rmtree(root, ignore_errors=True)


def make_rows(n: int):  # type: ignore[no-untyped-def]
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(0)
    start = np.datetime64(dt.datetime.now() - dt.timedelta(days=6), "us").astype("int64")
    ts = start + np.sort(rng.integers(0, 6 * 86_400_000_000, n))
    models = np.array(["local:smollm2-135m-instruct", "openrouter:openai/gpt-4o-mini", "local:ft-1"])
    roles = np.array(["primary", "canary", "shadow"])
    return pa.table({
        "ts": pa.array(ts, pa.timestamp("us")),
        "request_id": pa.array(np.char.add("r", np.arange(n).astype(str)) if n <= 2_000_000 else
                               [f"r{i}" for i in range(n)]),
        "model_id": pa.array(models[rng.integers(0, 3, n)]),
        "role": pa.array(roles[rng.integers(0, 3, n)]),
        "messages": pa.array(["[]"] * n) if n < 0 else pa.nulls(n, pa.string()),
        "response": pa.nulls(n, pa.string()),
        "input_tokens": pa.array(rng.integers(5, 500, n)),
        "output_tokens": pa.array(rng.integers(5, 800, n)),
        "latency_ms": pa.array(rng.gamma(2.0, 200.0, n)),
        "cost_usd": pa.array(rng.random(n) * 1e-4),
        "status": pa.array(np.where(rng.random(n) < 0.02, "error", "ok")),
        "error": pa.nulls(n, pa.string()),
        "feedback": pa.array(np.where(rng.random(n) < 0.1, rng.random(n) * 2 - 1, np.nan)),
        "metadata": pa.nulls(n, pa.string()),
    })


def bench_stats(n: int) -> tuple[float, float, float]:
    """(stats with footer rollups, stats scanning every column, the engine on an in-memory table)."""
    import duckdb
    import numpy as np
    import pyarrow.parquet as pq

    from modelsteward.storage.logstore import LogStore
    from modelsteward.storage.segments import with_rollup

    table = make_rows(n)
    days = table.column("ts").cast("date32").to_numpy()
    timings = []
    for rollup in (True, False):
        root = Path(tempfile.mkdtemp(prefix="bench-stats-"))
        try:
            # the store's own layout: date x use-case partitions of compacted zstd segments, written as
            # compaction writes them (footer rollup included) -- or without the rollup, as a foreign
            # writer would leave them, which makes stats aggregate every column
            for i, day in enumerate(np.unique(days)):
                part = table.filter(np.asarray(days == day))
                folder = root / "requests" / f"date={day}" / "use_case=story_teller"
                folder.mkdir(parents=True)
                pq.write_table(with_rollup(part) if rollup else part, folder / f"cmp-{i}.parquet",
                               compression="zstd", row_group_size=1_000_000)
            store = LogStore(root)
            store.stats(since="30d")  # warm the footer cache, like a long-running server
            t = time.perf_counter()
            stats = store.stats(since="30d")
            timings.append(time.perf_counter() - t)
            assert sum(r["count"] for r in stats) == n, stats
            store.close()
        finally:
            shutil.rmtree(root, ignore_errors=True)
    con = duckdb.connect()
    con.register("t", table)
    con.execute("CREATE TABLE logs AS SELECT * FROM t")
    t = time.perf_counter()
    con.execute("""SELECT model_id, role, count(*), count(*) FILTER (WHERE status='error'),
                   quantile_cont(latency_ms, 0.5), quantile_cont(latency_ms, 0.95), sum(input_tokens),
                   sum(output_tokens), sum(cost_usd), avg(feedback), min(ts), max(ts) FROM logs
                   WHERE ts >= now()::TIMESTAMP - INTERVAL 30 DAY GROUP BY ALL""").fetchall()
    base = time.perf_counter() - t
    return timings[0], timings[1], base


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--stats-rows", type=int, default=10_000_000)
    a = ap.parse_args(argv)
    ours, base = bench_ingest(a.rows)
    print(f"ingest  append(): {ours:>12,.0f} rows/s | DuckDB executemany baseline: {base:>10,.0f} rows/s | "
          f"ratio {ours / base:.1f}x | target >= 200,000 rows/s: {'met' if ours >= 200_000 else 'MISSED'}")
    ours_s, scan_s, base_s = bench_stats(a.stats_rows)
    print(f"stats   {a.stats_rows:,} rows: {ours_s:.3f} s (footer rollups; scanning every column {scan_s:.3f} s) | "
          f"in-memory DuckDB table baseline: {base_s:.3f} s | ratio {ours_s / base_s:.2f}x | "
          f"target <= 0.5 s: {'met' if ours_s <= 0.5 else 'MISSED'}")
    from _table import row

    row("logstore", "log store append()", round(ours), "rows/s", baseline=round(base), ratio=ours / base,
        baseline_what="DuckDB executemany", target=">= 200,000 rows/s", met=ours >= 200_000)
    row("logstore", f"log stats over {a.stats_rows:,} rows", round(ours_s, 3), "s", baseline=round(base_s, 3),
        baseline_what="same query, in-memory DuckDB table", target="<= 0.5 s", met=ours_s <= 0.5,
        note=f"scanning every column (no footer rollups) {scan_s:.3f} s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
