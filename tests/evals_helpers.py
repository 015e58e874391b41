"""Helpers for the evaluation tests: seed a use case, its logs and models."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

PROMPTS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Name a primary colour.", "Red is a primary colour."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What is 2 + 2?", "2 + 2 equals 4."),
    ("Which planet is known as the red planet?", "Mars is known as the red planet."),
    ("What do bees make?", "Bees make honey."),
    ("What is the boiling point of water at sea level in Celsius?", "Water boils at 100 degrees Celsius."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
    ("What is the largest ocean on Earth?", "The Pacific Ocean is the largest ocean."),
    ("What gas do plants absorb from the air?", "Plants absorb carbon dioxide."),
]


def seed_logs(steward: Any, use_case: str, model_id: str, prompts: list[tuple[str, str]] | None = None, *,
              feedback: float | None = 1.0, days_ago: float = 1.0, prefix: str = "req") -> list[str]:
    """Append one primary log row per prompt (answer as the logged response); returns request ids."""
    prompts = PROMPTS if prompts is None else prompts
    ts = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_ago)
    rows = []
    for i, (q, a) in enumerate(prompts):
        rows.append({
            "ts": (ts + dt.timedelta(seconds=i)).isoformat(), "request_id": f"{prefix}-{i}", "use_case": use_case,
            "model_id": model_id, "role": "primary", "messages": [{"role": "user", "content": q}], "response": a,
            "input_tokens": 10, "output_tokens": 8, "latency_ms": 120.0, "cost_usd": 0.0, "status": "ok",
            "feedback": feedback,
        })
    steward.logs.append_many(rows)
    steward.logs.flush()
    return [r["request_id"] for r in rows]


def write_golden(path: Path, prompts: list[tuple[str, str]]) -> Path:
    with path.open("w") as f:
        for q, a in prompts:
            f.write(json.dumps({"prompt": q, "reference": a}) + "\n")
    return path
