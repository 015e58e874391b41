"""The request-log row format: the columns of a segment, and how an appended row is checked and
normalised (``normalise_row``) before the log store (``storage/logstore.py``) writes it."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

import orjson

from modelsteward.errors import InvalidInput
from modelsteward.exchange import answer_part

__all__ = ["LOG_COLUMNS", "LATER_COLUMNS", "FEEDBACK_COLUMNS", "REQUIRED", "normalise_row", "parse_ts", "ts_us"]

# name -> arrow type name; order is the column order of every segment (partition keys excluded)
LOG_COLUMNS: dict[str, str] = {
    "ts": "timestamp",
    "request_id": "string",
    "model_id": "string",
    "role": "string",
    "messages": "string",
    "response": "string",
    "input_tokens": "int64",
    "output_tokens": "int64",
    "latency_ms": "float64",
    "cost_usd": "float64",
    "status": "string",
    "error": "string",
    "feedback": "float64",
    "metadata": "string",
    # added with the canonical shape (modelsteward/exchange.py); older segments lack them and read as NULL
    "request": "string",  # the request besides its messages: tools, tool_choice, response_format, params (JSON)
    "answer": "string",  # the answer besides its text: tool_calls, refusal, finish_reason (JSON)
    "origin": "string",  # NULL: logged by the gateway; "import:<format>": from `steward logs import`
}
# the columns a segment written before the canonical shape lacks (read as NULL)
LATER_COLUMNS = ("request", "answer", "origin")
FEEDBACK_COLUMNS: dict[str, str] = {"ts": "timestamp", "request_id": "string", "score": "float64", "comment": "string"}
REQUIRED = ("request_id", "use_case", "model_id")
# pinned / fallback: gateway answers from a pinned model or the fallback chain (kept out of the live roles' statistics)
_ROLES = frozenset(("primary", "canary", "shadow", "pinned", "fallback"))
_STATUSES = frozenset(("ok", "error"))
_EPOCH = dt.datetime(1970, 1, 1)


def _now_us() -> int:
    return time.time_ns() // 1000


def ts_us(value: Any) -> int:
    """Any accepted ``ts`` form -> integer microseconds since the epoch (UTC)."""
    if value is None:
        return time.time_ns() // 1000
    if isinstance(value, int) and value > 1e14:
        return value
    d = parse_ts(value)
    return (d - _EPOCH) // dt.timedelta(microseconds=1)


def parse_ts(value: Any) -> dt.datetime:
    """ISO 8601 string, epoch seconds (or ms), or datetime -> naive UTC datetime."""
    if value is None:
        return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # seconds, milliseconds or microseconds since the epoch, told apart by magnitude
        secs = value / 1e6 if value > 1e14 else value / 1e3 if value > 1e11 else float(value)
        return _EPOCH + dt.timedelta(seconds=secs)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                return parse_ts(float(value))
            except ValueError:
                raise InvalidInput(f"ts {value!r} is neither ISO 8601 nor epoch seconds.") from None
        return parse_ts(parsed)
    raise InvalidInput(f"ts {value!r} is neither ISO 8601 nor epoch seconds.")


def _num(row: Mapping[str, Any], key: str, kind: type) -> Any:
    val = row.get(key)
    if val is None or type(val) is kind:  # the common cases, without a conversion call
        return val
    if val == "":
        return None
    try:
        return kind(val)
    except (TypeError, ValueError):
        raise InvalidInput(f"{key} {val!r} is not a number.") from None


# use-case names already checked (a handful per deployment): the name check runs once per name
_GOOD_USE_CASES: set[str] = set()


def _use_case(value: Any) -> str:
    uc = value if type(value) is str else str(value)
    if uc not in _GOOD_USE_CASES:
        if not uc.replace("_", "").replace("-", "").isalnum():
            raise InvalidInput(f"use_case {uc!r} must be letters, digits, '-' or '_'.")
        if len(_GOOD_USE_CASES) < 10_000:
            _GOOD_USE_CASES.add(uc)
    return uc


def _text(value: Any) -> str | None:
    return value if value is None or type(value) is str else str(value)


def normalise_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one log row and bring it to the stored shape (messages/metadata as JSON text).

    This runs once per logged call on the gateway's hot path, so the common shapes (strings,
    ints, floats, ``None``) take branches without conversions; anything else is converted or
    refused with the same errors.
    """
    get = row.get
    rid, uc, mid = get("request_id"), get("use_case"), get("model_id")
    if not (rid and uc and mid):
        missing = next(k for k, v in zip(REQUIRED, (rid, uc, mid), strict=True) if not v)
        raise InvalidInput(f"log row is missing {missing!r} (required: {', '.join(REQUIRED)}).")
    role = get("role") or "primary"
    if role not in _ROLES:
        raise InvalidInput(f"role {role!r} must be one of primary, canary, shadow, pinned, fallback.")
    status = get("status") or "ok"
    if status not in _STATUSES:
        raise InvalidInput(f"status {status!r} must be ok or error.")
    msgs = get("messages")
    if msgs is not None and type(msgs) is not str:
        msgs = orjson.dumps(msgs).decode()
    meta = get("metadata")
    if meta is not None and type(meta) is not str:
        meta = orjson.dumps(meta).decode()
    req = get("request")
    if req is not None and type(req) is not str:
        req = orjson.dumps(req).decode() if req else None
    ans = get("answer")
    resp = get("response")
    if ans is not None and type(ans) is not str:
        if "content" in ans:  # a whole answer: its text goes to `response`, the rest to `answer`
            text, rest = answer_part(ans)
            resp = text if resp is None else resp
            ans = rest
        ans = orjson.dumps(ans).decode() if ans else None
    fb = _num(row, "feedback", float)
    if fb is not None and not -1.0 <= fb <= 1.0:
        raise InvalidInput(f"feedback {fb} must be within -1..1.")
    ts = get("ts")
    return {
        "ts": time.time_ns() // 1000 if ts is None else ts_us(ts),
        "request_id": _text(rid),
        "use_case": _use_case(uc),
        "model_id": _text(mid),
        "role": role,
        "messages": msgs,
        "response": _text(resp),
        "input_tokens": _num(row, "input_tokens", int),
        "output_tokens": _num(row, "output_tokens", int),
        "latency_ms": _num(row, "latency_ms", float),
        "cost_usd": _num(row, "cost_usd", float),
        "status": status,
        "error": _text(get("error")),
        "feedback": fb,
        "metadata": meta,
        "request": req,
        "answer": ans,
        "origin": _text(get("origin")),
    }
