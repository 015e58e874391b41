"""Benchmark: recall of PII / secret redaction on the corpus (target >= 98 % of strings fully removed).

    .venv/bin/python bench/pii.py [--corpus tests/fixtures/pii_corpus.jsonl] [--misses]

A string counts as removed when none of its secret substrings survive redaction.  Baselines in the
same run: the two hand-grown pattern lists the project had before (``bench/pii_baseline.py``).
Also measures false positives on the shipped demo prompts (strings changed that hold nothing) and
the time per string.  Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _table import row  # noqa: E402
from pii_baseline import redact_evals, redact_training  # noqa: E402

from modelsteward.privacy import redact  # noqa: E402


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# the steward's own timestamps, numbers, ids and prices: must come through unchanged (issue 29)
VALUES = [ln for ln in (ROOT / "tests" / "fixtures" / "pii_false_positives.txt").read_text(encoding="utf-8").splitlines()
          if ln.strip() and not ln.startswith("#")]


def measure(fn: Callable[[str], str], rows: list[dict], clean: list[str]) -> dict:
    t0 = time.perf_counter()
    outs = [fn(r["text"]) for r in rows]
    dt = time.perf_counter() - t0
    missed = [r for r, out in zip(rows, outs) if any(s in out for s in r["secrets"])]
    per_kind: dict[str, list[int]] = {}
    for r, out in zip(rows, outs):
        ok = not any(s in out for s in r["secrets"])
        per_kind.setdefault(r["kind"], [0, 0])[0] += ok
        per_kind[r["kind"]][1] += 1
    changed = sum(fn(t) != t for t in clean)
    values_changed = sum(fn(t) != t for t in VALUES)
    return {"values_changed": values_changed, "recall": round(1 - len(missed) / len(rows), 4), "missed": [r["id"] for r in missed],
            "kinds_fully_removed": sum(ok == n for ok, n in per_kind.values()), "kinds": len(per_kind),
            "false_positive_rate": round(changed / max(1, len(clean)), 4), "ms_per_string": round(dt / len(rows) * 1e3, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / "tests" / "fixtures" / "pii_corpus.jsonl"))
    ap.add_argument("--misses", action="store_true", help="print the strings each method missed")
    args = ap.parse_args()
    rows = load(Path(args.corpus))
    demo = ROOT / "modelsteward" / "demo" / "prompts.jsonl"
    clean = [json.dumps(json.loads(line), ensure_ascii=False) for line in demo.read_text().splitlines() if line.strip()]
    # ordinary prose with product names, versions and codes (the bare-credential detector's false positives)
    prose = ROOT / "tests" / "fixtures" / "pii_prose.txt"
    clean += [ln for ln in prose.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    redact("warm-up 4111 1111 1111 1111 sk-proj-" + "a1" * 20)  # imports and caches are not timed
    results = {"privacy": measure(redact, rows, clean),
               "baseline_training_pii": measure(redact_training, rows, clean),
               "baseline_evals_text": measure(redact_evals, rows, clean)}
    print(f"{len(rows)} strings, {results['privacy']['kinds']} kinds ({args.corpus})")
    print(f"{'method':24} {'recall':>7} {'kinds 100%':>11} {'false pos':>10} {'values hit':>11} {'ms/str':>8}")
    for name, r in results.items():
        print(f"{name:24} {r['recall']:7.3f} {r['kinds_fully_removed']:>5}/{r['kinds']:<5} "
              f"{r['false_positive_rate']:10.3f} {r['values_changed']:>5}/{len(VALUES):<5} {r['ms_per_string']:8.3f}")
        if args.misses and r["missed"]:
            print("   missed:", ", ".join(r["missed"]))
    new, old = results["privacy"], results["baseline_training_pii"]
    row("pii", f"PII redaction recall, {len(rows)} strings / {new['kinds']} kinds", round(new["recall"], 3), "recall",
        baseline=round(old["recall"], 3), baseline_what="old training/pii.py patterns", target=">= 0.98",
        met=new["recall"] >= 0.98 and new["values_changed"] == 0,
        note=f"false positives {new['false_positive_rate']:.3f} of {len(clean)} clean strings, "
             f"{new['values_changed']}/{len(VALUES)} steward values changed, {new['ms_per_string']:.2f} ms/string")
    print(json.dumps({"strings": len(rows), "clean_strings": len(clean),
                      **{k: {kk: vv for kk, vv in v.items() if kk != "missed"} for k, v in results.items()},
                      "values": len(VALUES), "target_recall": 0.98,
                      "meets_target": results["privacy"]["recall"] >= 0.98 and results["privacy"]["values_changed"] == 0}))


if __name__ == "__main__":
    main()
