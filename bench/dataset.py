"""Benchmark: build a fine-tuning dataset from 1M logged rows (target <= 20 s on this machine).

    .venv/bin/python bench/dataset.py [--rows 1000000] [--keep DIR]

Generates story-game traffic into a temporary log store (templated prompts with random names and
places, ~10% replayed requests, ~5% near-duplicates with one word changed, ~3% with PII, 5% errors,
10% shadow/canary calls, feedback on a third of the rows, 1% eval hold-outs) and times
``build_from_connection`` over it: filters, redaction, exact + near de-duplication, split, files.
Generation is not timed.  The build runs as ``steward dataset build`` does (a spill folder under the
store's root, the default ``STEWARD_BUILD_MEMORY``); the same-run baseline is the same build with
every redaction candidate handled in this one process (the previous path), which must write the
same files.  Prints the stage breakdown (wall and CPU), one JSON line with the timings and the
card's counts, and ``bench/_table.py`` rows for ``make bench``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _table import row  # noqa: E402
from modelsteward.storage.logstore import LogStore  # noqa: E402
from modelsteward.training import pii  # noqa: E402
from modelsteward.training.dataset import DatasetSpec, build_from_connection  # noqa: E402

NAMES = ["Aria", "Bram", "Cleo", "Dorn", "Elara", "Fenn", "Gwen", "Hale", "Iris", "Jory", "Kael", "Lyra"]
PLACES = ["the sunken keep", "a misty harbour", "the glass desert", "an old mill", "the frozen pass", "a night market"]
THINGS = ["a silver key", "a talking crow", "a broken map", "a lantern", "a sealed letter", "a clockwork fox"]
VERBS = ["finds", "loses", "guards", "follows", "trades", "repairs", "hides", "chases"]
MOODS = ["eerie", "cheerful", "tense", "quiet", "stormy", "hopeful"]
SYSTEM = ("You are the narrator of an interactive story game. Keep answers short, vivid and in the second "
          "person; never break character; keep the story safe for all ages.")
PII = ["my email is {n}.player@example.com", "call me on +44 20 7946 {d:04d}", "card 4111 1111 1111 {d:04d}",
       "my key is sk-{n}abcdefghijklmnop{d}"]


def _text(rng: random.Random, words: int) -> str:
    out = []
    while len(out) < words:
        out += f"{rng.choice(NAMES)} {rng.choice(VERBS)} {rng.choice(THINGS)} near {rng.choice(PLACES)},".split()
        out += f"and the air feels {rng.choice(MOODS)} as the {rng.randint(1, 9999)} bells ring.".split()
    return " ".join(out[:words])


def generate(store: LogStore, n: int, seed: int = 7) -> list[str]:
    """Append ``n`` rows; returns the request ids chosen as eval hold-outs."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    holdouts: list[str] = []
    recent: list[tuple[str, str]] = []
    batch: list[dict] = []
    for i in range(n):
        r = rng.random()
        if recent and r < 0.10:
            prompt, resp = rng.choice(recent)  # replayed request
        elif recent and r < 0.15:
            prompt, resp = rng.choice(recent)
            words = resp.split()
            words[rng.randrange(len(words))] = rng.choice(MOODS)  # near duplicate
            resp = " ".join(words)
        else:
            prompt = _text(rng, rng.randint(12, 40))
            if rng.random() < 0.03:
                prompt += " " + rng.choice(PII).format(n=rng.choice(NAMES).lower(), d=rng.randint(0, 9999))
            resp = _text(rng, rng.randint(30, 80))
            if len(recent) < 5000:
                recent.append((prompt, resp))
            else:
                recent[rng.randrange(5000)] = (prompt, resp)
        rid = f"req-{i:08d}"
        if rng.random() < 0.01:
            holdouts.append(rid)
        batch.append({
            "ts": (now - dt.timedelta(seconds=rng.randint(60, 20 * 86400))).isoformat(),
            "request_id": rid, "use_case": "story", "model_id": "openrouter:openai/gpt-4o-mini",
            "role": "primary" if rng.random() < 0.9 else rng.choice(["shadow", "canary"]),
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
            "response": resp, "input_tokens": 60, "output_tokens": 80, "latency_ms": 400.0, "cost_usd": 0.0001,
            "status": "ok" if rng.random() < 0.95 else "error",
            "feedback": round(rng.uniform(-1, 1), 2) if rng.random() < 0.33 else None,
        })
        if len(batch) >= 50_000:
            store.append_many(batch)
            batch = []
    if batch:
        store.append_many(batch)
    store.flush()
    return holdouts


def _max_rss_mb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _build(store: LogStore, root: Path, spec: DatasetSpec, holdouts: list[str], name: str) -> dict:
    """One timed build with default settings (as `steward dataset build`: it may spill under the workspace)."""
    con = store.reader.connect(lock_down=False, spill_dir=root / "tmp" / "duckdb")
    out = root / name
    shutil.rmtree(out, ignore_errors=True)
    stages: dict[str, float] = {}
    t1, c1, w1 = time.perf_counter(), time.process_time(), _children_cpu()
    card = build_from_connection(con, spec, out, holdout_ids=holdouts, stages=stages)
    build_s, cpu_s = time.perf_counter() - t1, time.process_time() - c1
    con.close()
    return {"build_s": round(build_s, 2), "build_cpu_s": round(cpu_s, 1),
            "workers_cpu_s": round(_children_cpu() - w1, 1), "stages": stages, "card": card}


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the redaction workers)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _warm(store: LogStore) -> None:
    """Read every segment once, import pyarrow and load the detectors, so neither timed build pays the cold start."""
    import pyarrow  # noqa: F401 - the builder's first stage imports it

    con = store.reader.connect(lock_down=False)
    con.execute("SELECT count(*), sum(length(messages)), sum(length(response)) FROM logs").fetchall()
    con.close()
    pii.redact("call +44 20 7946 0958 or mail a@b.example, card 4111 1111 1111 1111, key sk-abcdefghijklmnop12")


def _print_stages(stages: dict[str, float]) -> None:
    print(f"{'stage':<9} {'wall s':>8} {'cpu s':>8}   (cpu: this process's threads, DuckDB's included)")
    for name in (k for k in stages if not k.endswith("_cpu")):
        print(f"{name:<9} {stages[name]:>8.2f} {stages.get(name + '_cpu', 0.0):>8.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, default=None, help="reuse/keep the generated log store here")
    ap.add_argument("--num-perm", type=int, default=32, help="MinHash size (16 halves the near-dup cost)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the same-run baseline (the build again with redaction in one process)")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-dataset-"))
    try:
        logs = root / "logs"
        holdout_file = root / "holdouts.json"
        t0 = time.perf_counter()
        if not holdout_file.exists():
            store = LogStore(logs, batch_rows=50_000)
            holdouts = generate(store, args.rows)
            store.close()
            holdout_file.write_text(json.dumps(holdouts))
        holdouts = json.loads(holdout_file.read_text())
        gen_s = time.perf_counter() - t0
        store = LogStore(logs)
        spec = DatasetSpec(use_case="story", since="30d", num_perm=args.num_perm)
        _warm(store)
        new = _build(store, root, spec, holdouts, "out")
        base = None
        if not args.no_baseline:  # the previous path: every candidate redacted in this one process
            workers = pii._workers
            pii._workers = lambda: 1  # type: ignore[assignment]
            try:
                base = _build(store, root, spec, holdouts, "out-baseline")
            finally:
                pii._workers = workers  # type: ignore[assignment]
            if base["card"].sha256 != new["card"].sha256:
                raise SystemExit("the baseline build wrote different files: the parallel redaction changed the output")
        store.close()
        card, load = new["card"], round(os.getloadavg()[0], 1)
        _print_stages(new["stages"])
        print(json.dumps({
            "bench": "dataset_build", "rows": args.rows, "generate_s": round(gen_s, 1), "build_s": new["build_s"],
            "build_cpu_s": new["build_cpu_s"], "workers_cpu_s": new["workers_cpu_s"],
            "baseline_build_s": base and base["build_s"],
            "baseline_build_cpu_s": base and base["build_cpu_s"], "redaction_workers": pii._workers(),
            "load_avg_1m": load, "num_perm": args.num_perm, "target_s": 20, "ok": new["build_s"] <= 20,
            "stages_s": new["stages"], "baseline_stages_s": base and base["stages"], "max_rss_mb": _max_rss_mb(),
            "counts": card.counts, "sha256": card.sha256[:16],
        }))
        row("dataset", f"dataset build, {args.rows:,} rows, redaction in {pii._workers()} processes", new["build_s"], "s",
            baseline=base and base["build_s"], baseline_what="the same build, redaction in one process (previous path)",
            target="<= 20 s", met=new["build_s"] <= 20, note=f"load {load}, build CPU {new['build_cpu_s']} s + redaction workers {new['workers_cpu_s']} s")
        row("dataset", f"dataset build, {args.rows:,} rows: redaction stage", new["stages"]["redact"], "s",
            baseline=base and base["stages"]["redact"], baseline_what="redaction in one process, same run",
            note=f"{card.counts['redacted_rows']:,} rows redacted; load {load}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
