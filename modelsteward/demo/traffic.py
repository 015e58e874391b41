"""Demo traffic: prompts from the shipped prompt set sent through the real gateway with the
official ``openai`` client, and simulated user feedback posted to ``/v1/feedback``.

Simulated feedback is a transparent rule, not a model: a user likes an answer (+1) that tells a
story about the asked-for character at a reasonable length, dislikes (-1) an empty, refusing or
off-topic answer, and is lukewarm (0 or +0.5) otherwise.  About two in three requests get feedback.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = ["load_prompts", "simulated_feedback", "send_traffic", "TrafficStats"]

_REFUSAL = re.compile(r"\b(i can(?:no|')t|i am unable|as an ai|i'm sorry)\b", re.I)


def load_prompts() -> list[dict[str, str]]:
    text = resources.files("modelsteward.demo").joinpath("prompts.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def simulated_feedback(prompt: dict[str, str], answer: str) -> float:
    words = answer.split()
    if len(words) < 5 or _REFUSAL.search(answer):
        return -1.0
    key = prompt.get("character", "").split()[-1].lower().strip(".,")
    on_topic = key and key in answer.lower()
    if on_topic and len(words) >= 12:
        return 1.0
    return 0.5 if on_topic else 0.0


@dataclass
class TrafficStats:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    feedback: int = 0
    by_model: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    error_messages: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        p50 = lat[len(lat) // 2] if lat else None
        return {"sent": self.sent, "ok": self.ok, "errors": self.errors, "feedback": self.feedback,
                "by_model": dict(self.by_model), "p50_ms": p50}


async def _send(base_url: str, use_case: str, prompts: list[dict[str, str]], n: int, concurrency: int,
                max_tokens: int, api_key: str, seed: int, progress: Any, feedback_rate: float) -> TrafficStats:
    import httpx
    from openai import AsyncOpenAI

    rng = random.Random(seed)
    stats = TrafficStats()
    client = AsyncOpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0, timeout=300)
    http = httpx.AsyncClient(base_url=base_url, timeout=30, headers={"authorization": f"Bearer {api_key}"})
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        prompt = rng.choice(prompts)
        user = f"user-{rng.randrange(40)}"
        async with sem:
            stats.sent += 1
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    model=use_case, messages=[{"role": "user", "content": prompt["prompt"]}],
                    max_tokens=max_tokens, temperature=0.0, user=user,
                )
                resp = raw.parse()
            except Exception as exc:  # noqa: BLE001 - counted and shown, the demo goes on
                stats.errors += 1
                stats.error_messages.append(str(exc)[:200])
                return
            finally:
                if progress is not None:
                    progress()
            stats.ok += 1
            served = raw.headers.get("x-steward-model", resp.model)
            stats.by_model[served] = stats.by_model.get(served, 0) + 1
            rid = raw.headers.get("x-request-id") or resp.id
            answer = resp.choices[0].message.content or ""
            if rng.random() < feedback_rate:
                score = simulated_feedback(prompt, answer)
                r = await http.post("/v1/feedback", json={"request_id": rid, "score": score, "comment": "demo user"})
                if r.status_code == 200:
                    stats.feedback += 1

    try:
        await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        await client.close()
        await http.aclose()
    return stats


def send_traffic(base_url: str, use_case: str, n: int, *, concurrency: int = 4, max_tokens: int = 32,
                 api_key: str = "demo", seed: int = 0, progress: Any = None, feedback_rate: float = 0.66) -> TrafficStats:
    """Send ``n`` chat requests through the gateway at ``base_url``; returns what happened."""
    return asyncio.run(_send(base_url, use_case, load_prompts(), n, concurrency, max_tokens, api_key, seed, progress,
                             feedback_rate))
