"""What a request really costs on each model, self-hosted ones included.

A paid model costs its list prices (USD per million input / output tokens).  A self-hosted or
fine-tuned model costs the machine it runs on: ``meta["hosting"]`` holds either per-token prices
(the model's own ``price_in_per_m`` / ``price_out_per_m`` above zero) or a cost per hour, and the
throughput (output tokens per second) turns that hour into a cost per request:

    cost per request = cost_per_hour / 3600 x output_tokens / tokens_per_s

Throughput is the one measured by the latest evaluation of the model (``measured_tokens_per_s``,
recorded only for models with a configured hourly cost, so that models on a profile default stay
comparable), else the hardware profile's.  A self-hosted model with nothing configured runs on
its provider's default profile (``local`` on ``cpu``, any other server on ``gpu-small``): never
free.  Prefill (input tokens) is not charged separately: it is inside the measured latency.

Capacity: a self-hosted model serves ``replicas`` (``meta["hosting"]["replicas"]``, default 1) single
decoding streams, so it carries at most ``replicas x tokens_per_s / output_tokens`` requests per
second (:func:`serving_capacity`, throughput measured by an evaluation where there is one, else the
profile's); a paid API is taken to scale with its traffic.

Profiles (documented defaults, on-demand cloud list prices of late 2025, one model replica per
machine, single-stream decoding):

| profile | USD/hour | output tokens/s | stands for |
| --- | --- | --- | --- |
| ``cpu`` | 0.10 | 20 | 2-4 vCPUs, a model under 1B parameters (SmolLM2 decodes ~20 tokens/s on 2 cores) |
| ``gpu-small`` | 0.75 | 60 | one T4 / L4-class GPU, a 7-8B model |
| ``gpu-medium`` | 1.50 | 120 | one A10G / L40S-class GPU |
| ``gpu-large`` | 4.00 | 300 | one A100 / H100 80 GB, batched serving |
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from modelsteward.errors import InvalidInput

__all__ = [
    "HardwareProfile", "HARDWARE_PROFILES", "SELF_HOSTED_KINDS", "default_profile", "effective_prices",
    "cost_per_request", "hosting_meta", "parse_hosting_cost", "profile_of", "serving_capacity",
]

SELF_HOSTED_KINDS = ("self_hosted", "fine_tuned")


@dataclass(frozen=True)
class HardwareProfile:
    cost_per_hour: float
    tokens_per_s: float
    doc: str


HARDWARE_PROFILES: dict[str, HardwareProfile] = {
    "cpu": HardwareProfile(0.10, 20.0, "2-4 vCPUs, a model under 1B parameters"),
    "gpu-small": HardwareProfile(0.75, 60.0, "one T4 / L4-class GPU, a 7-8B model"),
    "gpu-medium": HardwareProfile(1.50, 120.0, "one A10G / L40S-class GPU"),
    "gpu-large": HardwareProfile(4.00, 300.0, "one A100 / H100 80 GB, batched serving"),
}


def default_profile(provider: str) -> str:
    return "cpu" if provider == "local" else "gpu-small"


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def effective_prices(model: Any) -> tuple[float, float, str] | None:
    """(USD per M input tokens, USD per M output tokens, source) or None when unknown.

    Self-hosted kinds without positive per-token prices are priced from their hosting cost
    (see the module docstring); a paid model without prices is unknown (None)."""
    pin, pout = model.price_in_per_m, model.price_out_per_m
    if model.kind not in SELF_HOSTED_KINDS:
        if pin is None and pout is None:
            return None
        return float(pin or 0), float(pout or 0), "list price"
    if (pin is not None and float(pin) > 0) or (pout is not None and float(pout) > 0):
        return float(pin or 0), float(pout or 0), "price per token"
    host = dict((model.meta or {}).get("hosting") or {})
    profile_name = str(host.get("hardware") or default_profile(model.provider))
    profile = HARDWARE_PROFILES.get(profile_name) or HARDWARE_PROFILES[default_profile(model.provider)]
    hourly = _num(host.get("cost_per_hour_usd"))
    tps = _num(host.get("measured_tokens_per_s")) if hourly is not None else None
    src_h = "configured" if hourly is not None else f"{profile_name} default"
    src_t = "measured" if tps is not None else f"{profile_name} default"
    hourly = hourly if hourly is not None else profile.cost_per_hour
    tps = tps if tps is not None else profile.tokens_per_s
    per_m_out = hourly / 3600.0 / tps * 1e6
    return 0.0, per_m_out, f"hosting ${hourly:g}/h ({src_h}) at {tps:.3g} tokens/s ({src_t})"


def profile_of(model: Any) -> tuple[str, HardwareProfile]:
    """The hardware profile a self-hosted model runs on (its configured one, else its provider's default)."""
    name = str(((model.meta or {}).get("hosting") or {}).get("hardware") or default_profile(model.provider))
    if name not in HARDWARE_PROFILES:
        name = default_profile(model.provider)
    return name, HARDWARE_PROFILES[name]


def serving_capacity(model: Any, output_tokens: float, measured_tokens_per_s: float | None = None
                     ) -> tuple[float, float, str] | None:
    """(requests per second it can carry, tokens/s per replica, where that came from); None for a paid API.

    Throughput: ``measured_tokens_per_s`` (an evaluation's), else ``meta.hosting.measured_tokens_per_s``,
    else the hardware profile's; one request is ``output_tokens`` decoded tokens (at least 1)."""
    if model.kind not in SELF_HOSTED_KINDS:
        return None
    host = dict((model.meta or {}).get("hosting") or {})
    name, profile = profile_of(model)
    tps, src = _num(measured_tokens_per_s), "measured by an evaluation"
    if tps is None:
        tps, src = _num(host.get("measured_tokens_per_s")), "measured"
    if tps is None:
        tps, src = profile.tokens_per_s, f"{name} profile"
    replicas = _num(host.get("replicas")) or 1.0
    return replicas * tps / max(float(output_tokens), 1.0), tps, f"{replicas:g} replica(s) at {tps:.3g} tokens/s ({src})"


def cost_per_request(model: Any, tokens: tuple[float, float]) -> float | None:
    """Expected USD per request at ``tokens`` = (input, output); None when the price is unknown."""
    p = effective_prices(model)
    if p is None:
        return None
    return p[0] * tokens[0] / 1e6 + p[1] * tokens[1] / 1e6


_COST = re.compile(r"^\s*\$?\s*(?P<num>[-+]?[0-9]*\.?[0-9]+(?:e[-+]?\d+)?)\s*(?:usd)?\s*"
                   r"(?:/|per)\s*(?P<unit>h|hr|hour|m|mtok|1m)\s*$", re.IGNORECASE)


def parse_hosting_cost(text: str, field: str = "hosting cost") -> tuple[str, Decimal]:
    """``"1.20/h"`` -> ("hour", 1.20); ``"0.3/M"`` -> ("mtok", 0.3).  No unit or a negative value ->
    InvalidInput naming ``field``."""
    m = _COST.match(str(text))
    if not m:
        raise InvalidInput(f"{field} {text!r} has no unit; write USD per hour as 1.20/h or USD per million "
                           "tokens as 0.30/M.", field=field)
    value = _decimal(m.group("num"), field)
    unit = "hour" if m.group("unit").lower().startswith("h") else "mtok"
    return unit, value


def _decimal(v: Any, field: str) -> Decimal:
    try:
        d = Decimal(str(v))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{field} must be a number of USD, got {v!r}.", field=field) from None
    if not d.is_finite() or d <= 0:
        raise InvalidInput(f"{field} must be a positive number of USD, got {v!r} (a self-hosted model is never "
                           "free; leave it unset for the hardware profile's default).", field=field)
    return d


def hosting_meta(*, cost_per_hour: Any = None, hardware: str | None = None) -> dict[str, Any] | None:
    """The ``meta["hosting"]`` entry from register-time input (validated), or None when none given."""
    if cost_per_hour is None and hardware is None:
        return None
    out: dict[str, Any] = {}
    if hardware is not None:
        if hardware not in HARDWARE_PROFILES:
            raise InvalidInput(f"hardware {hardware!r} is not a known profile; use one of "
                               f"{', '.join(HARDWARE_PROFILES)}.", field="hardware")
        out["hardware"] = hardware
    if cost_per_hour is not None:
        d = _decimal(cost_per_hour, "cost_per_hour")
        out["cost_per_hour_usd"] = str(d)
    return out
