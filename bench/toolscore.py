"""Benchmark: the answer-kind scorers (``tool_calls``, ``structured``) against the text scorer, same items, same run.

    .venv/bin/python bench/toolscore.py [--items 2000] [--repeat 3] [--no-embedding]

Synthetic replay items in the shape ``steward eval`` builds: a request offering 3 tools (JSON-schema
parameters with required arguments, enums, defaults), a logged reference call (1 call, 1 in 5
items two parallel calls), and candidate / baseline answers mixing right calls (some with
re-ordered parallel calls, case and punctuation differences), wrong functions, wrong arguments,
arguments breaking the schema, unknown functions and text answers; plus ``json_schema`` items with
nested objects.  Timed on the same items, best of ``--repeat``:

- ``tool_calls`` on the tool items and ``structured`` on the JSON items (items/s);
- the text scorer ``similarity`` on the same items (the embedder loaded and warmed first, its
  per-call cost only; ``--no-embedding`` skips it) and its lexical half alone (ROUGE-L).
Prints one JSON line with items/s and the ratios (kind scorer / text scorer).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modelsteward.evals.kinds import structured, tool_calls  # noqa: E402
from modelsteward.evals.replay import EvalItem  # noqa: E402
from modelsteward.evals.runner import Generation  # noqa: E402
from modelsteward.evals.scorers import EvalData, similarity  # noqa: E402
from modelsteward.evals.text import rouge_l  # noqa: E402
from modelsteward.exchange import answer_text  # noqa: E402

CITIES = ["Paris", "San Francisco, CA", "New York", "Lyon", "Rio de Janeiro", "Oslo", "Cape Town", "Kyoto"]
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "required": ["city"], "additionalProperties": False,
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
                       "days": {"type": "integer", "minimum": 1, "maximum": 14, "default": 1}}}}},
    {"type": "function", "function": {"name": "book_table", "parameters": {
        "type": "object", "required": ["restaurant", "people", "time"],
        "properties": {"restaurant": {"type": "string"}, "people": {"type": "integer"}, "time": {"type": "string"},
                       "notes": {"type": "array", "items": {"type": "string"}}}}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}},
]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "order", "schema": {
    "type": "object", "required": ["id", "items", "customer"], "additionalProperties": False,
    "properties": {"id": {"type": "integer"}, "customer": {"type": "object", "required": ["name"],
                                                           "properties": {"name": {"type": "string"},
                                                                          "email": {"type": "string"}}},
                   "items": {"type": "array", "items": {"type": "object", "required": ["sku", "qty"],
                                                        "properties": {"sku": {"type": "string"},
                                                                       "qty": {"type": "integer"}}}}}}}}


def _call(name: str, args: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def _reference(rng: random.Random) -> list[dict[str, Any]]:
    calls = [_call("get_weather", {"city": rng.choice(CITIES), "unit": rng.choice("cf"), "days": rng.randint(1, 7)})]
    if rng.random() < 0.2:
        calls.append(_call("book_table", {"restaurant": "Chez Marie", "people": rng.randint(1, 8), "time": "19:30",
                                          "notes": ["window seat", "no nuts"]}, 1))
    return calls


def _variant(ref: list[dict[str, Any]], rng: random.Random) -> dict[str, Any]:
    r = rng.random()
    calls = [json.loads(json.dumps(c)) for c in ref]
    args = json.loads(calls[0]["function"]["arguments"])
    if r < 0.45:  # right, written differently
        args["city"] = args["city"].upper().replace(",", "")
        args["days"] = float(args["days"])
        calls[0]["function"]["arguments"] = json.dumps(args)
        calls.reverse()
    elif r < 0.6:
        calls[0]["function"]["name"] = "get_time"
    elif r < 0.72:
        args["city"] = rng.choice(CITIES) + " Heights"
        calls[0]["function"]["arguments"] = json.dumps(args)
    elif r < 0.82:
        args["days"] = "three"
        calls[0]["function"]["arguments"] = json.dumps(args)
    elif r < 0.9:
        calls[0]["function"]["name"] = "launch_rockets"
    else:
        return {"content": f"The weather in {args['city']} is mild today.", "finish_reason": "stop"}
    return {"content": "Let me look that up.", "tool_calls": calls, "finish_reason": "tool_calls"}


def _order(rng: random.Random, broken: bool) -> str:
    order = {"id": rng.randint(1, 10**6), "customer": {"name": "Ada Lovelace", "email": "ada@example.org"},
             "items": [{"sku": f"SKU-{rng.randint(1, 999)}", "qty": rng.randint(1, 5)} for _ in range(rng.randint(1, 4))]}
    if broken:
        order["items"][0]["qty"] = "two"
    return json.dumps(order)


def build(n: int, seed: int = 0) -> tuple[EvalData, EvalData]:
    rng = random.Random(seed)
    model = SimpleNamespace(id="m")
    uc = SimpleNamespace(requirements={})

    def data(items: list[EvalItem], cand: list[Generation], base: list[Generation]) -> EvalData:
        return EvalData(items=items, candidate=cand, baseline=base, candidate_model=model,  # type: ignore[arg-type]
                        baseline_model=model, use_case=uc, embedder=_embedder)  # type: ignore[arg-type]

    items, cand, base = [], [], []
    for i in range(n):
        ref = _reference(rng)
        items.append(EvalItem(id=str(i), source="logs", messages=[{"role": "user", "content": f"weather {i}"}],
                              request={"tools": TOOLS, "tool_choice": "auto"},
                              answer={"content": "Let me look that up.", "tool_calls": ref}))
        for side in (cand, base):
            ans = _variant(ref, rng)
            side.append(Generation(str(i), text=answer_text(ans), answer=ans))
    tools = data(items, cand, base)
    items, cand, base = [], [], []
    for i in range(n):
        ref = _order(rng, False)
        items.append(EvalItem(id=str(i), source="logs", messages=[{"role": "user", "content": f"order {i}"}],
                              request={"response_format": SCHEMA}, answer={"content": ref}))
        for side in (cand, base):
            text = ref if rng.random() < 0.5 else _order(rng, rng.random() < 0.3)
            side.append(Generation(str(i), text=text, answer={"content": text}))
    return tools, data(items, cand, base)


_EMB: Any = None


def _embedder() -> Any:
    global _EMB
    if _EMB is None:
        from modelsteward.evals.embeddings import Embedder

        _EMB = Embedder()
    return _EMB


def best(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-embedding", action="store_true")
    args = ap.parse_args()
    tools, struct = build(args.items)
    tool_calls(tools)  # warm: jsonschema validators compiled once per schema, as in an evaluation
    structured(struct)
    n = args.items
    out: dict[str, Any] = {"items": n}
    out["tool_calls_items_per_s"] = n / best(lambda: tool_calls(tools), args.repeat)
    out["structured_items_per_s"] = n / best(lambda: structured(struct), args.repeat)
    texts = [(c.text, b.text) for c, b in zip(tools.candidate, tools.baseline)]
    out["rouge_l_items_per_s"] = n / best(lambda: [rouge_l(c, b) for c, b in texts], args.repeat)
    out["tool_calls_vs_rouge_l"] = out["tool_calls_items_per_s"] / out["rouge_l_items_per_s"]
    if not args.no_embedding:
        _embedder().pair_similarity(["warm up"], ["warm"])
        sim_s = best(lambda: similarity(tools), 1)  # embeddings are cached after one call: time the first
        out["similarity_items_per_s"] = n / sim_s
        out["tool_calls_vs_similarity"] = out["tool_calls_items_per_s"] / out["similarity_items_per_s"]
    m = tool_calls(tools).metrics
    out["candidate_accuracy"] = m["candidate"]["accuracy"]
    out["failures"] = m["candidate"]["failures"]
    print(json.dumps(out))
    from _table import row

    if "similarity_items_per_s" in out:
        row("toolscore", f"tool-call scorer, {n:,} items", round(out["tool_calls_items_per_s"]), "items/s",
            baseline=round(out["similarity_items_per_s"], 1), baseline_what="embedding similarity, same items",
            note=f"ROUGE-L alone {out['rouge_l_items_per_s']:,.0f} items/s; "
                 f"structured {out['structured_items_per_s']:,.0f} items/s")
    else:
        row("toolscore", f"tool-call scorer, {n:,} items", round(out["tool_calls_items_per_s"]), "items/s",
            baseline=round(out["rouge_l_items_per_s"]), baseline_what="ROUGE-L, same items")


if __name__ == "__main__":
    main()
