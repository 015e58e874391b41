"""The gateway's tunables (environment: ``STEWARD_GATEWAY_<NAME>``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

__all__ = ["GatewayOptions"]


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class GatewayOptions:
    """Tunables (environment: STEWARD_GATEWAY_<NAME upper-cased>)."""

    refresh_s: float = 0.5
    full_reload_s: float = 10.0
    retries: int = 1
    max_attempts: int = 4
    backoff_s: float = 0.05
    cooldown_after: int = 3
    cooldown_s: float = 30.0
    shadow_queue: int = 1000
    shadow_workers: int = 8
    drain_timeout_s: float = 10.0
    freeze_gc: bool = False  # gc.freeze() after start: for a long-running server process, not for tests
    # tell clients which model and role answered (x-steward-model / x-steward-role, the body's ``model``);
    # off by default so a client cannot tell canary answers apart and vote a canary up or down
    expose_route_headers: bool = False

    @classmethod
    def from_env(cls, **overrides: Any) -> GatewayOptions:
        opts = cls()
        for name in opts.__dataclass_fields__:
            env = f"STEWARD_GATEWAY_{name.upper()}"
            if name == "expose_route_headers" and env not in os.environ:
                env = "STEWARD_EXPOSE_ROUTE_HEADERS"
            if env in os.environ:
                kind = type(getattr(opts, name))
                if kind is bool:
                    setattr(opts, name, os.environ[env].strip().lower() in ("1", "true", "yes", "on"))
                else:
                    setattr(opts, name, kind(_env_float(env, getattr(opts, name))))
        for k, v in overrides.items():
            setattr(opts, k, v)
        return opts
