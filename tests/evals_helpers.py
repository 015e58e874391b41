"""Helpers for the evaluation tests: seed a use case, its logs and models."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

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


# Story prompts that start with a system message (issue 26: an echo of the user turn alone used to
# pass the gate because the whole-prompt echo check saw the system text missing from the answer).
STORY_SYSTEM = ("You are a children's storyteller. Write a short, warm bedtime story in plain words, "
                "with a gentle moral at the end.")
STORIES = [
    "Write a story about a fox who learns to share his berries.",
    "Tell a story about a little boat that is afraid of the sea.",
    "Write a bedtime story about a moon that cannot fall asleep.",
    "Tell a story about a snail who wants to win a race.",
    "Write a story about a girl who plants a tree with her grandfather.",
    "Tell a story about a robot that learns to laugh.",
    "Write a story about a bear who loses his favourite hat.",
    "Tell a story about two clouds who become friends.",
]


def seed_story_logs(steward: Any, use_case: str, model_id: str, prompts: list[str] | None = None, *,
                    days_ago: float = 1.0, prefix: str = "story") -> list[str]:
    """One primary log row per story prompt, each a [system, user] conversation (no feedback)."""
    ts = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_ago)
    rows = [{
        "ts": (ts + dt.timedelta(seconds=i)).isoformat(), "request_id": f"{prefix}-{i}", "use_case": use_case,
        "model_id": model_id, "role": "primary", "response": "Once upon a time...",
        "messages": [{"role": "system", "content": STORY_SYSTEM}, {"role": "user", "content": q}],
        "input_tokens": 30, "output_tokens": 40, "latency_ms": 300.0, "cost_usd": 0.0, "status": "ok",
        "feedback": None,
    } for i, q in enumerate(STORIES if prompts is None else prompts)]
    steward.logs.append_many(rows)
    steward.logs.flush()
    return [r["request_id"] for r in rows]


@contextlib.contextmanager
def katan_echo(tmp_path: Path) -> Iterator[str]:
    """llm-katan (PyPI) with its echo backend on 127.0.0.1:<free port>; yields the ``/v1`` base URL.
    It wants an ``Authorization`` header: register the model with ``api_key_env`` set to any value."""
    exe = shutil.which("llm-katan") or str(Path(sys.executable).parent / "llm-katan")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "--model", "echo-model", "--backend", "echo", "--host", "127.0.0.1", "--port", str(port),
         "--disable-dashboard", "--stats-file", str(tmp_path / "katan-stats.json"), "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(url + "/health", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("llm-katan did not start")
        yield url + "/v1"
    finally:
        proc.terminate()
        proc.wait(10)
