"""End to end: PII logged in prompts never leaves the log store (datasets, eval outputs and cache, MLflow).

Logs every string of the PII corpus as a prompt (the logged answer and both models' answers echo
it back, as models do), builds a dataset and runs an evaluation through the tools, then reads every
file of the workspace except the log store and the registry database, the MLflow store included.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from modelsteward.fakes.judge import FakeJudge
from modelsteward.tools import ToolContext, call_tool

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).parent / "fixtures" / "pii_corpus.jsonl"
ROWS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _log_corpus(steward) -> None:  # type: ignore[no-untyped-def]
    ts = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    rows = [{
        "ts": (ts + dt.timedelta(seconds=i)).isoformat(), "request_id": f"pii-{i}", "use_case": "qa",
        "model_id": "custom:good", "role": "primary", "status": "ok", "feedback": 1.0,
        "messages": [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": r["text"]}],
        "response": f"Noted, I will remember: {r['text']}", "input_tokens": 20, "output_tokens": 20,
        "latency_ms": 100.0, "cost_usd": 0.0,
    } for i, r in enumerate(ROWS)]
    steward.logs.append_many(rows)
    steward.logs.flush()


def _leaks(workspace: Path, exclude: list[Path]) -> dict[str, list[str]]:
    """kind -> "file: secret" for every file (not under ``exclude``) holding one of the kind's secrets."""
    blobs = {}
    for path in workspace.rglob("*"):
        if path.is_file() and not any(path == e or e in path.parents for e in exclude):
            blobs[str(path.relative_to(workspace))] = path.read_bytes()
    found: dict[str, list[str]] = {}
    for r in ROWS:
        for secret in r["secrets"]:
            # A short secret (a 4-digit PIN) also occurs by chance in numbers (latencies, scores):
            # look for it with the characters before it in the prompt.
            i = r["text"].index(secret)
            needle = secret if len(secret) >= 8 else r["text"][max(0, i - 4):i + len(secret)]
            forms = {needle.encode(), json.dumps(needle, ensure_ascii=False)[1:-1].encode(),
                     json.dumps(needle)[1:-1].encode()}
            hits = [name for name, blob in blobs.items() if any(f in blob for f in forms)]
            if hits:
                found.setdefault(r["kind"], []).extend(f"{h}: {secret}" for h in hits)
    return found


def test_no_logged_secret_leaves_the_log_store(steward, settings) -> None:  # type: ignore[no-untyped-def]
    echo = lambda q: f"You said: {q}"  # noqa: E731 - both models repeat the user's data back
    with FakeJudge(answers={"good": echo, "cand": echo}) as fake:
        for name in ("good", "cand"):
            steward.registry.register_model("custom", name, base_url=fake.base_url)
        steward.registry.add_use_case("qa", description="questions", model="custom:good")
        _log_corpus(steward)
        ctx = ToolContext(steward=steward, actor="cli:tester")
        ds = call_tool("build_dataset", {"use_case": "qa", "min_rows": 1, "near_dup_threshold": None}, ctx)
        ev = call_tool("evaluate", {"use_case": "qa", "model_id": "custom:cand", "samples": len(ROWS),
                                    "safety_prompts": 2}, ctx)
    assert ds.train_rows + ds.validation_rows >= len(ROWS) - 5  # type: ignore[attr-defined]
    assert ev.sample_count >= len(ROWS) and ev.mlflow_run_id  # type: ignore[attr-defined]
    ws = settings.workspace
    written = {p.relative_to(ws).parts[0] for p in ws.rglob("*") if p.is_file()}
    assert {"datasets", "evals", "mlflow.db"} <= written  # the places the issue found leaks were written
    exclude = [settings.logs_path, ws / "steward.db", ws / "steward.db-wal", ws / "steward.db-shm"]
    leaks = _leaks(ws, exclude)
    assert leaks == {}, f"{len(leaks)} of {len({r['kind'] for r in ROWS})} kinds leaked: " + json.dumps(
        {k: sorted(set(v))[:3] for k, v in leaks.items()})
