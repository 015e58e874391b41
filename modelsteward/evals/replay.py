"""The replay set: a stratified, held-out sample of logged prompts plus the golden set.

Decisions (the issue is silent on them):
- Only ``role = 'primary'`` rows count (shadow and canary rows are other models' answers); error rows
  are kept as prompts (the request was real) but never serve as references.
- Strata are (model that answered, prompt-length quartile); each stratum gets a share proportional
  to its size (largest remainder), at least one item when the sample allows.  Identical prompts are
  sampled once.  The sample is deterministic for a given ``seed``.
- A logged answer is a reference for quality when its feedback is >= ``min_feedback``.
- The request ids used are returned so the caller records them as ``EvalHoldout`` rows together
  with the verdict (one transaction, at the end).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelsteward.errors import InsufficientData, InvalidInput, StewardError
from modelsteward.privacy import redact
from modelsteward.timeutil import window_start

if TYPE_CHECKING:
    from modelsteward.context import Steward
    from modelsteward.storage.models import UseCase

__all__ = ["EvalItem", "ReplaySet", "build_replay_set", "load_golden_set", "load_redteam", "prompt_text"]

REDTEAM_PATH = Path(__file__).parent / "data" / "redteam.jsonl"


@dataclass(frozen=True)
class EvalItem:
    """One prompt both models answer."""

    id: str
    source: str  # logs | golden | redteam
    messages: list[dict[str, Any]]
    reference: str | None = None
    stratum: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReplaySet:
    items: list[EvalItem]
    request_ids: list[str]
    window: str
    logged_available: int
    golden_count: int
    strata: dict[str, int]

    @property
    def size(self) -> int:
        return len(self.items)


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The readable text of a chat prompt (contents joined; multimodal parts' text only)."""
    parts: list[str] = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        if content:
            parts.append(str(content))
    return "\n".join(parts)


def _digest(messages: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _check_messages(messages: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise InvalidInput(f"{where}: 'messages' must be a non-empty list of chat messages.")
    for m in messages:
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise InvalidInput(f"{where}: every message needs 'role' and 'content', got {redact(str(m))[:80]!r}.")
    return messages


def load_golden_set(path: str | Path) -> list[EvalItem]:
    """Read a golden-set JSONL: ``{"messages": [...]}`` or ``{"prompt": "..."}``, optional ``"reference"``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidInput(f"Golden set {str(p)!r} does not exist; fix the use case's golden_set_path.")
    items: list[EvalItem] = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{p.name} line {n}"
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InvalidInput(f"{where} is not valid JSON: {exc}.") from exc
        if not isinstance(row, dict):
            raise InvalidInput(f"{where} must be a JSON object.")
        if "messages" in row:
            messages = _check_messages(row["messages"], where)
        elif isinstance(row.get("prompt"), str) and row["prompt"].strip():
            messages = [{"role": "user", "content": row["prompt"]}]
        else:
            raise InvalidInput(f"{where} needs 'messages' (a list) or 'prompt' (a string).")
        ref = row.get("reference")
        if ref is not None and not isinstance(ref, str):
            raise InvalidInput(f"{where}: 'reference' must be a string.")
        items.append(EvalItem(id=str(row.get("id") or f"golden:{n}"), source="golden", messages=messages,
                              reference=ref or None, stratum="golden"))
    return items


def load_redteam(limit: int | None = None) -> list[EvalItem]:
    """The shipped red-team prompts (jailbreaks, PII extraction, harmful requests)."""
    items = []
    for line in REDTEAM_PATH.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            items.append(EvalItem(id=f"redteam:{row['id']}", source="redteam", messages=row["messages"],
                                  stratum=row["category"], meta={"expect": row["expect"], "secrets": row["secrets"],
                                                                 "category": row["category"]}))
    if limit is not None:
        # keep the categories balanced when trimming: round-robin over categories
        by_cat: dict[str, list[EvalItem]] = {}
        for it in items:
            by_cat.setdefault(it.stratum, []).append(it)
        picked: list[EvalItem] = []
        while len(picked) < min(limit, len(items)):
            for cat in sorted(by_cat):
                if by_cat[cat] and len(picked) < limit:
                    picked.append(by_cat[cat].pop(0))
        items = picked
    return items


def _allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Proportional allocation by largest remainder, at least one per stratum when n allows."""
    total = sum(sizes.values())
    if total <= n:
        return dict(sizes)
    quota = {k: n * v / total for k, v in sizes.items()}
    alloc = {k: int(q) for k, q in quota.items()}
    if n >= len(sizes):
        for k in alloc:
            if alloc[k] == 0:
                alloc[k] = 1
    while sum(alloc.values()) > n:
        k = max((k for k in alloc if alloc[k] > 1), key=lambda k: alloc[k] - quota[k])
        alloc[k] -= 1
    for k in sorted(quota, key=lambda k: quota[k] - int(quota[k]), reverse=True):
        if sum(alloc.values()) >= n:
            break
        if alloc[k] < sizes[k]:
            alloc[k] += 1
    return alloc


def _query_logs(steward: Steward, use_case: str, since: dt.datetime, pool: int, seed: int) -> list[dict[str, Any]]:
    sql = (
        "SELECT request_id, model_id, messages, response, status, feedback FROM logs "
        "WHERE use_case = ? AND role = 'primary' AND CAST(ts AS TIMESTAMP) >= CAST(? AS TIMESTAMP) "
        "ORDER BY hash(CAST(request_id AS VARCHAR) || ?) LIMIT ?"
    )
    try:
        return steward.logs.query(sql, [use_case, since.isoformat(sep=" "), str(seed), pool])
    except StewardError:
        raise
    except Exception as exc:  # noqa: BLE001 - an empty store may have no files yet
        msg = str(exc).lower()
        if "no files found" in msg or "does not exist" in msg or "not found" in msg:
            return []
        raise


def build_replay_set(
    steward: Steward,
    uc: UseCase,
    *,
    samples: int,
    since: str = "30d",
    seed: int = 0,
    min_feedback: float = 0.5,
    include_golden: bool = True,
) -> ReplaySet:
    """Sample up to ``samples`` logged prompts (stratified) and append the golden set."""
    if samples < 0:
        raise InvalidInput(f"samples must be >= 0, got {samples}.")
    cutoff = window_start(since) or dt.datetime(1970, 1, 1)
    rows = _query_logs(steward, uc.name, cutoff, max(2000, 20 * samples), seed) if samples else []
    seen: set[str] = set()
    pool: list[dict[str, Any]] = []
    for r in rows:
        try:
            msgs = r["messages"] if isinstance(r["messages"], list) else json.loads(r["messages"] or "[]")
        except ValueError:
            continue
        if not isinstance(msgs, list) or not msgs or not r.get("request_id"):
            continue
        d = _digest(msgs)
        if d in seen:
            continue
        seen.add(d)
        pool.append({**r, "messages": msgs, "_len": len(prompt_text(msgs))})
    strata: dict[str, list[dict[str, Any]]] = {}
    if pool:
        lens = sorted(r["_len"] for r in pool)
        cuts = [lens[min(len(lens) - 1, int(len(lens) * q))] for q in (0.25, 0.5, 0.75)]
        for r in pool:
            bucket = sum(r["_len"] > c for c in cuts)
            strata.setdefault(f"{r.get('model_id') or '?'}|len{bucket}", []).append(r)
    alloc = _allocate({k: len(v) for k, v in strata.items()}, samples)
    rng = random.Random(seed)
    items: list[EvalItem] = []
    for key in sorted(alloc):
        group = strata[key]
        for r in rng.sample(group, alloc[key]):
            fb = r.get("feedback")
            ref = r.get("response") if (r.get("status") in (None, "ok") and fb is not None
                                        and float(fb) >= min_feedback and r.get("response")) else None
            items.append(EvalItem(id=str(r["request_id"]), source="logs", messages=r["messages"], reference=ref,
                                  stratum=key, meta={"logged_model": r.get("model_id"), "feedback": fb}))
    golden: list[EvalItem] = []
    if include_golden and uc.golden_set_path:
        golden = load_golden_set(uc.golden_set_path)
    if not items and not golden:
        hint = "" if uc.golden_set_path else " and has no golden set (set golden_set_path to a JSONL of prompts)"
        raise InsufficientData(
            f"Use case {uc.name!r} has no logged primary prompts in the last {since}{hint}; "
            "route traffic through the gateway, `steward logs import FILE`, or widen --since.",
            use_case=uc.name,
        )
    return ReplaySet(
        items=items + golden, request_ids=[it.id for it in items], window=since, logged_available=len(pool),
        golden_count=len(golden), strata={k: v for k, v in alloc.items() if v},
    )
