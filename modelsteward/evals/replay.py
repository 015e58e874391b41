"""The replay set: a stratified, held-out sample of logged prompts plus the golden set.

Decisions (the issue is silent on them):
- Only ``role = 'primary'`` rows count (shadow and canary rows are other models' answers); error rows
  are kept as prompts (the request was real) but never serve as references.
- Strata are (request kind, model that answered, prompt-length quartile); the kind
  (``exchange.request_kind``: ``text``, ``tools``, ``structured``) comes first, so mixed traffic is
  sampled per kind and the scorers per answer kind (``evals/kinds.py``) get their share.  Each
  stratum gets a share proportional to its size (largest remainder), at least one item when the
  sample allows.  Identical requests (messages and request part) are sampled once.  The sample is
  deterministic for a given ``seed``.
- An item replays as the application called: its messages (tool turns included) and its request
  part (``tools``, ``tool_choice``, ``response_format``, ``parallel_tool_calls``, sampling
  parameters), read through ``exchange.row_exchange``.
- A logged answer is a reference for quality (``reference``, its text) when its feedback is >=
  ``min_feedback``.  The whole logged answer (``answer``: text, tool calls) is the reference for the
  tool-call and structured scorers unless its feedback is below ``min_feedback`` or it failed.
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

from modelsteward import exchange
from modelsteward.errors import InsufficientData, InvalidInput, StewardError
from modelsteward.timeutil import window_start

if TYPE_CHECKING:
    from modelsteward.context import Steward
    from modelsteward.storage.views import RowView  # a registry row, read-only

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
    request: dict[str, Any] = field(default_factory=dict)  # tools, tool_choice, response_format, params
    answer: exchange.Answer | None = None  # the reference answer, whole (tool calls included)

    @property
    def kind(self) -> str:
        """What the request asks for: ``text``, ``tools`` or ``structured`` (``exchange.request_kind``)."""
        return exchange.request_kind(self.request)


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
    """The readable text of a chat prompt (``exchange.prompt_text``: tool calls included)."""
    return exchange.prompt_text(messages)


def _digest(messages: list[dict[str, Any]], request: dict[str, Any] | None = None) -> str:
    blob = {"m": messages, "r": request} if request else messages  # plain items keep their old digest
    return hashlib.sha256(json.dumps(blob, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def load_golden_set(path: str | Path) -> list[EvalItem]:
    """Read a golden-set JSONL: ``{"messages": [...]}`` or ``{"prompt": "..."}``, optional ``"reference"``.

    A line may carry the request part as the application sent it (``tools``, ``tool_choice``,
    ``response_format``, ``parallel_tool_calls``), messages in OpenAI's shape (an assistant turn with
    only ``tool_calls``, tool turns with ``tool_call_id``), and a reference that is text or a whole
    answer (``{"content": ..., "tool_calls": [...]}``); a structured item's reference is its JSON text.
    Bad lines are refused with one line naming the file, the line and the problem."""
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
        items.append(_golden_item(row, n, where))
    return items


def _golden_item(row: dict[str, Any], n: int, where: str) -> EvalItem:
    if "messages" in row:
        messages = exchange.check_messages(row["messages"], where)
    elif isinstance(row.get("prompt"), str) and row["prompt"].strip():
        messages = [{"role": "user", "content": row["prompt"]}]
    else:
        raise InvalidInput(f"{where} needs 'messages' (a list) or 'prompt' (a string).")
    request = exchange.check_request(exchange.request_part(row), where) or {}
    ref = row.get("reference")
    answer: exchange.Answer | None = None
    if isinstance(ref, dict):
        calls = exchange.check_tool_calls(ref["tool_calls"], f"{where}: reference") if ref.get("tool_calls") else None
        content = ref.get("content")
        if content is not None and not isinstance(content, str):
            raise InvalidInput(f"{where}: the reference's 'content' must be a string.")
        if not calls and not content:
            raise InvalidInput(f"{where}: a reference object needs 'content' or 'tool_calls'.")
        answer = {"content": content, **({"tool_calls": calls} if calls else {})}
        ref = content
    elif ref is not None and not isinstance(ref, str):
        raise InvalidInput(f"{where}: 'reference' must be a string or an answer object with 'content' / 'tool_calls'.")
    elif ref:
        answer = {"content": ref}
    return EvalItem(id=str(row.get("id") or f"golden:{n}"), source="golden", messages=messages,
                    reference=ref or None, stratum="golden" if not request else f"golden|{exchange.request_kind(request)}",
                    request=request, answer=answer)


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
        "SELECT request_id, model_id, messages, response, request, answer, status, feedback, origin FROM logs "
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


def _pool(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The logged rows as exchanges (``exchange.row_exchange``), identical requests once."""
    seen: set[str] = set()
    pool: list[dict[str, Any]] = []
    for r in rows:
        ex = exchange.row_exchange(r)  # unreadable messages read as [] and are skipped
        msgs = ex["messages"]
        if not msgs or not r.get("request_id"):
            continue
        d = _digest(msgs, ex["request"])
        if d in seen:
            continue
        seen.add(d)
        pool.append({**r, "_ex": ex, "_kind": exchange.request_kind(ex["request"]), "_len": len(prompt_text(msgs))})
    return pool


def _logged_item(r: dict[str, Any], stratum: str, min_feedback: float) -> EvalItem:
    ex: exchange.Exchange = r["_ex"]
    fb = r.get("feedback")
    ok = r.get("status") in (None, "ok")
    answer = ex["answer"]
    imported = str(r.get("origin") or "").startswith("import:")  # another system's answer: a prompt, not a reference
    ref = r.get("response") if (ok and not imported and fb is not None and float(fb) >= min_feedback
                                and r.get("response")) else None
    usable = ok and (fb is None or float(fb) >= min_feedback) and (answer.get("content") or answer.get("tool_calls"))
    return EvalItem(id=str(r["request_id"]), source="logs", messages=ex["messages"], reference=ref, stratum=stratum,
                    meta={"logged_model": r.get("model_id"), "feedback": fb}, request=ex["request"],
                    answer=answer if usable else None)


def build_replay_set(
    steward: Steward,
    uc: RowView,
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
    pool = _pool(rows)
    strata: dict[str, list[dict[str, Any]]] = {}
    if pool:
        lens = sorted(r["_len"] for r in pool)
        cuts = [lens[min(len(lens) - 1, int(len(lens) * q))] for q in (0.25, 0.5, 0.75)]
        for r in pool:
            bucket = sum(r["_len"] > c for c in cuts)
            strata.setdefault(f"{r['_kind']}|{r.get('model_id') or '?'}|len{bucket}", []).append(r)
    alloc = _allocate({k: len(v) for k, v in strata.items()}, samples)
    rng = random.Random(seed)
    items: list[EvalItem] = []
    for key in sorted(alloc):
        for r in rng.sample(strata[key], alloc[key]):
            items.append(_logged_item(r, key, min_feedback))
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
