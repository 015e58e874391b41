"""Benchmark: behaviour-similarity scoring of 1,000 (candidate, baseline) pairs on CPU.

    .venv/bin/python bench/evals.py [--pairs 1000] [--naive-pairs 200] [--batch-size 64]

Texts are synthetic assistant answers (5..180 words, log-normal lengths); each candidate is its
baseline with words swapped, dropped or appended, never identical (so de-duplication gains
nothing here).  Timed, in one run on one loaded model:

- naive: one pair at a time, ``encode([cand, base])`` per pair (on ``--naive-pairs`` pairs; the
  per-pair cost is constant, so pairs/s is comparable);
- plain: one batched ``encode`` of all candidates and one of all baselines;
- fast, cold: ``Embedder.pair_similarity`` (de-duplicate, sort by length, batch) with an empty cache;
- fast, baseline reused: the same call for a second candidate on the same sample, the baseline's
  embeddings already cached (what the evaluator does for every candidate after the first).
Scores of every fast path must equal the plain path within 1e-3.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modelsteward.evals.embeddings import Embedder  # noqa: E402

WORDS = ("the a story hero dragon castle river night light sword quest village old young king queen forest dark "
         "bright journey friend enemy magic stone wind fire water mountain ship sea storm gold silver ancient secret "
         "door path voice shadow dream song battle peace home heart tale returns finds loses wakes runs calls").split()


def _text(rng: random.Random) -> str:
    n = max(5, min(180, int(math.exp(rng.gauss(3.6, 0.7)))))
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _perturb(text: str, rng: random.Random) -> str:
    words = text.rstrip(".").split()
    for _ in range(max(1, len(words) // 8)):
        op = rng.random()
        i = rng.randrange(len(words))
        if op < 0.4:
            words[i] = rng.choice(WORDS)
        elif op < 0.7 and len(words) > 3:
            del words[i]
        else:
            words.insert(i, rng.choice(WORDS))
    return " ".join(words) + "!"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--naive-pairs", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import numpy as np
    import torch

    rng = random.Random(args.seed)
    base = [_text(rng) for _ in range(args.pairs)]
    cand = [_perturb(b, rng) for b in base]
    cand2 = [_perturb(b, rng) for b in base]
    t0 = time.perf_counter()
    emb = Embedder(batch_size=args.batch_size)
    load_s = time.perf_counter() - t0
    emb.encode_plain(["warm up"] * 4)

    k = min(args.naive_pairs, args.pairs)
    t0 = time.perf_counter()
    naive = []
    for c, b in zip(cand[:k], base[:k]):
        v = emb.model.encode([c, b], convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        naive.append(float(np.clip(v[0] @ v[1], 0, 1)))
    naive_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    with torch.inference_mode():
        pc, pb = emb.encode_plain(cand), emb.encode_plain(base)
    plain = np.clip(np.einsum("ij,ij->i", pc, pb), 0, 1)
    plain_s = time.perf_counter() - t0
    pc2 = emb.encode_plain(cand2)
    plain2 = np.clip(np.einsum("ij,ij->i", pc2, pb), 0, 1)

    emb.clear_cache()
    t0 = time.perf_counter()
    fast = np.array(emb.pair_similarity(cand, base))
    cold_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast2 = np.array(emb.pair_similarity(cand2, base))
    warm_s = time.perf_counter() - t0

    out = {
        "pairs": args.pairs, "threads": torch.get_num_threads(), "batch_size": args.batch_size,
        "load_s": round(load_s, 2),
        "naive_pairs_per_s": round(k / naive_s, 1),
        "plain_pairs_per_s": round(args.pairs / plain_s, 1),
        "fast_cold_pairs_per_s": round(args.pairs / cold_s, 1),
        "fast_baseline_reused_pairs_per_s": round(args.pairs / warm_s, 1),
        "speedup_reused_vs_naive": round((args.pairs / warm_s) / (k / naive_s), 2),
        "speedup_reused_vs_plain": round((args.pairs / warm_s) / (args.pairs / plain_s), 2),
        "max_abs_diff_cold_vs_plain": float(np.max(np.abs(fast - plain))),
        "max_abs_diff_reused_vs_plain": float(np.max(np.abs(fast2 - plain2))),
        "max_abs_diff_naive_vs_plain": float(np.max(np.abs(np.array(naive) - plain[:k]))),
        "target_pairs_per_s": 300,
    }
    out["scores_equal_within_1e-3"] = max(out["max_abs_diff_cold_vs_plain"], out["max_abs_diff_reused_vs_plain"]) < 1e-3
    out["target_met"] = out["fast_baseline_reused_pairs_per_s"] >= 300 and out["scores_equal_within_1e-3"]
    print(json.dumps(out))
    sys.exit(0 if out["scores_equal_within_1e-3"] else 1)


if __name__ == "__main__":
    main()
