"""The control loop's settings, read from the environment and checked before ``steward serve``
starts: a bad value stops the server with one line naming the variable (``ConfigError``).

| variable | default | what |
| --- | --- | --- |
| ``STEWARD_GUARD_EVERY`` | ``60s`` | guardrail checks (hard bound: not more often than every 5 s) |
| ``STEWARD_ROLLOUT_EVERY`` | ``10s`` | how often waiting rollout steps are looked at (>= 1 s) |
| ``STEWARD_AGENT_EVERY`` | ``1h`` | scheduled agent cycles; ``off`` disables them (>= 5 s) |
| ``STEWARD_AGENT_CRON`` | unset | a cron expression (UTC, 5 fields); replaces ``STEWARD_AGENT_EVERY`` |
| ``STEWARD_LEADER_LEASE`` | ``15s`` | leader lease; a dead leader is replaced within it (>= 2 s) |
| ``STEWARD_LOG_COMPACT_EVERY`` | ``60s`` | log segments in a bucket merged per partition, by the leader (>= 1 s) |
| ``STEWARD_NOTIFY`` | unset | comma-separated Apprise URLs |
| ``STEWARD_PUBLIC_URL`` | ``http://HOST:PORT`` | the console's address in notifications |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from modelsteward.errors import ConfigError, InvalidInput
from modelsteward.timeutil import parse_duration

__all__ = ["LoopConfig", "parse_period", "HARD_BOUNDS"]

# variable -> (default, the shortest interval it may take, seconds)
HARD_BOUNDS: dict[str, tuple[str, float]] = {
    "STEWARD_GUARD_EVERY": ("60s", 5.0),
    "STEWARD_ROLLOUT_EVERY": ("10s", 1.0),
    "STEWARD_AGENT_EVERY": ("1h", 5.0),
    "STEWARD_LEADER_LEASE": ("15s", 2.0),
    "STEWARD_LOG_COMPACT_EVERY": ("60s", 1.0),
}


def parse_period(var: str, text: str) -> float:
    """``30s``, ``5m``, ``1h``, ``1d`` (or a bare number of seconds) -> seconds, at least the
    variable's hard bound; anything else is a ConfigError naming ``var``."""
    try:
        seconds = parse_duration(text or "", units="smhd", bare_seconds=True).total_seconds()
    except InvalidInput:
        raise ConfigError(f"{var}={text!r} is not a duration; use e.g. 30s, 5m or 1h.", variable=var) from None
    low = HARD_BOUNDS.get(var, ("", 0.0))[1]
    if seconds < low:
        raise ConfigError(f"{var}={text!r} is below its hard bound of {low:g} s; use {low:g}s or more.", variable=var)
    return seconds


def _cron(var: str, text: str) -> str:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(text, timezone="UTC")
    except ValueError as exc:
        raise ConfigError(f"{var}={text!r} is not a cron expression ({exc}); use 5 fields, e.g. '0 * * * *'.",
                          variable=var) from exc
    return text.strip()


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] + "://" if "://" in url else "(no scheme)"


def _notify_urls(var: str, text: str) -> tuple[str, ...]:
    import logging

    import apprise

    urls = tuple(u.strip() for u in (text or "").split(",") if u.strip())
    quiet = logging.getLogger("apprise")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # our one line says it; Apprise's own warning would repeat it
    try:
        bad = [u for u in urls if not apprise.Apprise().add(u)]
    finally:
        quiet.setLevel(level)
    if bad:  # never echo the URL: it usually carries a token
        raise ConfigError(f"{var}: a URL with scheme {_scheme(bad[0])!r} is not a URL Apprise can send to (unknown scheme or "
                          "malformed); see the Apprise wiki for the supported services.", variable=var)
    return urls


@dataclass(frozen=True)
class LoopConfig:
    guard_every_s: float = 60.0
    rollout_every_s: float = 10.0
    agent_every_s: float | None = 3600.0  # None: no interval schedule (off, or cron)
    agent_cron: str | None = None
    lease_s: float = 15.0
    notify_urls: tuple[str, ...] = field(default=(), repr=False)
    public_url: str = "http://127.0.0.1:8080"
    notify_every_s: float = 2.0
    log_compact_every_s: float = 60.0

    @property
    def agent_enabled(self) -> bool:
        return self.agent_cron is not None or self.agent_every_s is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, public_url: str = "http://127.0.0.1:8080") -> LoopConfig:
        env = os.environ if env is None else env

        def dur(var: str) -> float:
            return parse_period(var, env.get(var) or HARD_BOUNDS[var][0])

        agent_text = (env.get("STEWARD_AGENT_EVERY") or "1h").strip()
        cron = env.get("STEWARD_AGENT_CRON", "").strip()
        agent_every = None if agent_text.lower() == "off" else parse_period("STEWARD_AGENT_EVERY", agent_text)
        return cls(
            guard_every_s=dur("STEWARD_GUARD_EVERY"),
            rollout_every_s=dur("STEWARD_ROLLOUT_EVERY"),
            agent_every_s=None if cron else agent_every,
            agent_cron=_cron("STEWARD_AGENT_CRON", cron) if cron else None,
            lease_s=dur("STEWARD_LEADER_LEASE"),
            log_compact_every_s=dur("STEWARD_LOG_COMPACT_EVERY"),
            notify_urls=_notify_urls("STEWARD_NOTIFY", env.get("STEWARD_NOTIFY", "")),
            public_url=(env.get("STEWARD_PUBLIC_URL") or public_url).rstrip("/"),
        )

    def describe(self) -> str:
        agent = (f"cron {self.agent_cron!r}" if self.agent_cron else
                 f"every {self.agent_every_s:g}s" if self.agent_every_s else "off")
        return (f"control loop: guard every {self.guard_every_s:g}s, rollouts every {self.rollout_every_s:g}s, "
                f"agent {agent}, leader lease {self.lease_s:g}s, {len(self.notify_urls)} notification target(s)")
