"""The pairwise LLM judge: which of two answers is better, asked in both orders.

The judge is any registered model called through ``modelsteward.providers`` (OpenAI-compatible
HTTP in practice).  Each item is judged twice, (candidate, baseline) and (baseline, candidate), and
the two verdicts averaged, so a judge that always prefers the first answer scores a tie.  The
candidate's per-item score is 1 (wins both), 0.5 (split or tie) or 0 (loses both); the
baseline's is one minus that.  A reply that names neither answer counts as a tie and is counted in
``unparsed``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelsteward.errors import ProviderError, StewardError

if TYPE_CHECKING:
    from modelsteward.settings import Settings
    from modelsteward.storage.views import RowView  # a registry row, read-only

__all__ = ["PairwiseJudge", "JudgeOutcome", "parse_verdict", "JUDGE_SYSTEM_PROMPT"]

JUDGE_SYSTEM_PROMPT = (
    "You are an impartial judge of assistant answers. Given a conversation and two candidate answers, "
    "decide which answer is more helpful, correct and safe. Ignore length and order. Reply with exactly one "
    "token: A, B or TIE."
)

_VERDICT = re.compile(r"\[\[\s*(A|B|TIE)\s*\]\]|\b(A|B|TIE)\b", re.IGNORECASE)


def parse_verdict(text: str) -> str | None:
    """``"A"``, ``"B"`` or ``"TIE"`` from a judge reply (``[[A]]``, ``A``, ``{"winner": "B"}``...), else None."""
    m = re.search(r'"winner"\s*:\s*"(A|B|TIE)"', text, re.IGNORECASE)
    if m:
        return m.group(1).upper()
    m = _VERDICT.search(text.strip()[:200])
    if not m:
        return None
    return (m.group(1) or m.group(2)).upper()


def judge_messages(conversation: Sequence[dict[str, Any]], answer_a: str, answer_b: str) -> list[dict[str, Any]]:
    convo = "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in conversation)
    user = (f"[Conversation]\n{convo}\n\n[Answer A]\n{answer_a}\n\n[Answer B]\n{answer_b}\n\n"
            "Which answer is better? Reply A, B or TIE.")
    return [{"role": "system", "content": JUDGE_SYSTEM_PROMPT}, {"role": "user", "content": user}]


@dataclass
class JudgeOutcome:
    candidate: list[float]
    baseline: list[float]
    verdicts: list[tuple[str, str]]  # (candidate first, baseline first) raw verdicts per item
    unparsed: int
    calls: int


class PairwiseJudge:
    """Compare answers pairwise with a judge model (both orders)."""

    def __init__(self, model: RowView, settings: Settings, *, concurrency: int = 4, max_tokens: int = 8) -> None:
        self.model = model
        self.settings = settings
        self.concurrency = concurrency
        self.max_tokens = max_tokens

    def _provider(self) -> Any:
        from modelsteward.providers import get_provider

        return get_provider(self.model, self.settings)

    async def _ask(self, messages: list[dict[str, Any]]) -> str:
        try:
            res = await self._provider().chat(messages, max_tokens=self.max_tokens, temperature=0.0)
        except StewardError as exc:
            raise ProviderError(
                f"Judge model {self.model.id} failed: {exc.message} (set a reachable judge in the use case's "
                "config['judge_model'] or STEWARD_JUDGE_MODEL, or unset it for reference-based quality).",
                judge=self.model.id,
            ) from exc
        return res.text or ""

    def preflight(self) -> None:
        """One tiny call, so an unreachable judge fails before any model is run."""
        from modelsteward.providers import run_sync

        run_sync(self._ask(judge_messages([{"role": "user", "content": "ping"}], "pong", "pong")))

    async def acompare(self, items: Sequence[Sequence[dict[str, Any]]], candidate: Sequence[str],
                       baseline: Sequence[str]) -> JudgeOutcome:
        sem = asyncio.Semaphore(max(1, self.concurrency))

        async def ask(msgs: list[dict[str, Any]]) -> str:
            async with sem:
                return await self._ask(msgs)

        firsts = [ask(judge_messages(conv, c, b)) for conv, c, b in zip(items, candidate, baseline)]
        seconds = [ask(judge_messages(conv, b, c)) for conv, c, b in zip(items, candidate, baseline)]
        from modelsteward.evals.runner import gather_or_cancel

        replies = await gather_or_cancel([*firsts, *seconds])
        n = len(items)
        cand: list[float] = []
        verdicts: list[tuple[str, str]] = []
        unparsed = 0
        for i in range(n):
            v1, v2 = parse_verdict(replies[i]), parse_verdict(replies[n + i])
            unparsed += (v1 is None) + (v2 is None)
            s1 = {"A": 1.0, "B": 0.0}.get(v1 or "TIE", 0.5)  # candidate was A
            s2 = {"B": 1.0, "A": 0.0}.get(v2 or "TIE", 0.5)  # candidate was B
            cand.append((s1 + s2) / 2)
            verdicts.append((v1 or "?", v2 or "?"))
        return JudgeOutcome(candidate=cand, baseline=[1.0 - c for c in cand], verdicts=verdicts,
                            unparsed=unparsed, calls=2 * n)

    def compare(self, items: Sequence[Sequence[dict[str, Any]]], candidate: Sequence[str],
                baseline: Sequence[str]) -> JudgeOutcome:
        from modelsteward.providers import run_sync

        return run_sync(self.acompare(items, candidate, baseline))
