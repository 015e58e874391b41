"""Per-model cooldown (a circuit breaker) and the per-use-case month-to-date spend.

Cooldown: after ``threshold`` consecutive failed attempts a model is skipped for ``cooldown_s``
seconds by every request of every use case (the same upstream is down for all of them).  When
the cooldown ends the next request probes it once; a failure cools it down again at once, a
success closes the breaker.  With the defaults (2 attempts per model per request, threshold 3) no
request makes more than two failed attempts on a model that is down, and once the breaker is open
requests go straight to the fallback.

Budget: a running in-memory total per use case for the current UTC month, seeded from the log
store at start-up and increased by every logged row's cost (primary, canary, shadow, failures).
Several gateway replicas each see the seed plus their own traffic, so the cap is per replica
between restarts; the guardrails monitor checks the whole store on its schedule.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Cooldowns", "Spend", "month_start"]


@dataclass
class _Breaker:
    failures: int = 0
    until: float = 0.0
    opened: int = 0


class Cooldowns:
    """Consecutive-failure counting per model with a fixed cooldown."""

    def __init__(self, threshold: int = 3, cooldown_s: float = 30.0) -> None:
        self.threshold = max(1, threshold)
        self.cooldown_s = cooldown_s
        self._state: dict[str, _Breaker] = {}

    def cooling(self, model_id: str, now: float | None = None) -> bool:
        b = self._state.get(model_id)
        return b is not None and b.until > (time.monotonic() if now is None else now)

    def failure(self, model_id: str) -> bool:
        """Record a failed attempt; returns True when this failure opened the breaker."""
        b = self._state.setdefault(model_id, _Breaker())
        b.failures += 1
        if b.failures >= self.threshold:
            b.until = time.monotonic() + self.cooldown_s
            b.opened += 1
            return True
        return False

    def success(self, model_id: str) -> None:
        b = self._state.get(model_id)
        if b is not None:
            b.failures = 0
            b.until = 0.0

    def snapshot(self) -> dict[str, dict[str, float]]:
        now = time.monotonic()
        return {
            mid: {"consecutive_failures": b.failures, "cooling_for_s": max(0.0, b.until - now), "times_opened": b.opened}
            for mid, b in self._state.items()
        }


def month_start(now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(start: dt.datetime) -> float:
    nxt = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return nxt.replace(tzinfo=dt.timezone.utc).timestamp()


class Spend:
    """Month-to-date USD per use case (floats for speed; prices are computed in Decimal)."""

    def __init__(self) -> None:
        self.month = month_start()
        self._next = _next_month(self.month)
        self._spent: dict[str, float] = {}

    def _roll(self) -> None:
        if time.time() >= self._next:
            self.month = month_start()
            self._next = _next_month(self.month)
            self._spent.clear()

    def seed(self, totals: dict[str, float]) -> None:
        self._roll()
        for uc, usd in totals.items():
            self._spent[uc] = self._spent.get(uc, 0.0) + float(usd or 0.0)

    def add(self, use_case: str, usd: float) -> None:
        if usd:
            self._roll()
            self._spent[use_case] = self._spent.get(use_case, 0.0) + usd

    def spent(self, use_case: str) -> float:
        self._roll()
        return self._spent.get(use_case, 0.0)

    def exceeded(self, use_case: str, budget: Decimal | None) -> bool:
        return budget is not None and self.spent(use_case) >= float(budget)
