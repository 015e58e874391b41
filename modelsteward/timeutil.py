"""The one reader of durations (``30s``, ``15m``, ``12h``, ``7d``, ``2w``) and windows.

Every place that takes a duration from a person -- a log window (``--since 7d``), a purge age
(``--older-than 90d``), a schedule (``--every 1h30m``), a control-loop period
(``STEWARD_GUARD_EVERY=60s``) -- reads it here; each passes the units and forms it accepts and the
words of its own error message.  A base module: it imports only ``errors``.
"""

from __future__ import annotations

import datetime as dt
import re

from modelsteward.errors import InvalidInput

__all__ = ["UNIT_SECONDS", "parse_duration", "window_start", "utc_now_naive"]

UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]?)")


def utc_now_naive() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def parse_duration(
    text: str | float, *, units: str = "smhdw", compound: bool = False, bare_seconds: bool = False,
    positive: bool = False, what: str = "Duration", examples: str = "30s, 15m, 12h, 7d or 2w",
) -> dt.timedelta:
    """``<number><unit>`` -> timedelta, the unit one of ``units`` (s m h d w).  ``compound``: several
    parts (``1h30m``); ``bare_seconds``: a plain number is seconds; ``positive``: zero is refused.
    Anything else raises ``InvalidInput("{what} {text!r} is not like {examples}.")``."""
    raw = re.sub(r"\s+", "", str(text).strip().lower())
    parts = _PART.findall(raw)
    ok = bool(raw) and bool(parts) and "".join(n + u for n, u in parts) == raw and (compound or len(parts) == 1)
    ok = ok and all(u in units if u else bare_seconds for _, u in parts)
    seconds = sum(float(n) * UNIT_SECONDS[u or "s"] for n, u in parts) if ok else 0.0
    if not ok or (positive and seconds <= 0):
        raise InvalidInput(f"{what} {text!r} is not like {examples}.")
    return dt.timedelta(seconds=seconds)


def window_start(
    since: str | dt.timedelta | None, now: dt.datetime | None = None, *, iso_dates: bool = False,
    examples: str = "30m, 12h, 7d or 2w",
) -> dt.datetime | None:
    """The naive UTC start of a window ending ``now``: ``since`` a duration (``7d``) or a timedelta,
    with ``iso_dates`` also an ISO date; ``None``, ``""`` and ``"all"`` -> ``None`` (no lower bound)."""
    if since is None or since == "" or since == "all":
        return None
    now = now or utc_now_naive()
    if isinstance(since, dt.timedelta):
        return now - since
    try:
        return now - parse_duration(since, what="Window", examples=examples)
    except InvalidInput:
        if not iso_dates:
            raise
    try:
        ts = dt.datetime.fromisoformat(str(since))
    except ValueError:
        raise InvalidInput(f"Window {since!r} is neither like {examples} nor an ISO date.") from None
    return ts.astimezone(dt.timezone.utc).replace(tzinfo=None) if ts.tzinfo else ts
