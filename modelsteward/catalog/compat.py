"""The compatibility filter: a use case's requirements -> compatible models, and a reason per rejection.

Requirement keys (``use_cases.requirements`` JSON; aliases accepted): ``min_context``
(``min_context_length``), ``requires`` (list or comma string of capabilities: ``tools``, ``json``,
``reasoning``, ``image_input`` ...; ``required_capabilities``), ``max_price_per_m``
(``max_blended_price_per_m``: USD per million tokens blended at the use case's token mix),
``max_params_b`` (billions, self-hosted models only), ``licenses`` (``licences``: allow-list,
self-hosted models only), ``text_output`` (default true).

Requirements inferred from traffic (``infer_requirements``): the use case's recent logged requests
(up to ``TRAFFIC_SAMPLE`` of the last ``TRAFFIC_WINDOW``, shadow calls excluded) are read with
``exchange.required_capabilities``; a capability used by any of them (``tools``, ``json``,
``vision``, ``audio``) is required of every candidate, with the share of requests that use it in
the reason: "use case X's traffic uses images (12% of requests); model Y is text-only".  The
catalog flags answer it: ``tools``, ``json`` (or ``structured_outputs``), ``image_input`` (or an
``image`` input modality), ``audio_input`` (or an ``audio`` input modality).

Decisions: a requirement that cannot be checked fails (unknown context vs a minimum, unknown price vs
a cap, unknown size vs ``max_params_b``, unknown licence vs an allow-list), with the reason saying
so; models that are ``rejected``/``retired`` or no longer listed by their catalog are rejected too.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, field_validator

from modelsteward.errors import InvalidInput

__all__ = ["Requirements", "Rejection", "CompatResult", "check_compatibility", "check_model", "blended_price",
           "infer_requirements", "traffic_reasons", "TRAFFIC_WINDOW", "TRAFFIC_SAMPLE"]

TRAFFIC_WINDOW = "30d"
TRAFFIC_SAMPLE = 2000
# inferred capability -> (what the traffic uses, the catalog flags / input modality that satisfy it, what a model lacking it is)
_TRAFFIC_CAPS = {
    "tools": ("tools", ("tools",), None, "has no tool support"),
    "json": ("structured outputs", ("json", "structured_outputs"), None, "does not list JSON output"),
    "vision": ("images", ("image_input", "vision"), "image", "is text-only"),
    "audio": ("audio", ("audio_input", "audio"), "audio", "takes no audio input"),
}

SELF_HOSTED_KINDS = ("self_hosted", "fine_tuned")
_ALIASES = {
    "min_context_length": "min_context", "required_capabilities": "requires", "capabilities": "requires",
    "max_blended_price_per_m": "max_price_per_m", "max_price": "max_price_per_m", "licences": "licenses",
    "license_allowlist": "licenses", "licence_allowlist": "licenses", "min_context_tokens": "min_context",
}


class Requirements(BaseModel):
    """A use case's hard requirements on a model."""

    min_context: int | None = Field(default=None, ge=1)
    requires: list[str] = Field(default_factory=list)
    max_price_per_m: float | None = Field(default=None, ge=0)
    max_params_b: float | None = Field(default=None, gt=0)
    licenses: list[str] | None = None
    text_output: bool = True
    latency_slo_ms: float | None = Field(default=None, gt=0)
    # inferred from the logs (``infer_requirements``), never stored: capability -> {requests, share}
    traffic: dict[str, dict[str, float]] = Field(default_factory=dict)
    traffic_use_case: str | None = None

    @field_validator("requires", "licenses", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip().lower() for p in v.split(",") if p.strip()]
        if isinstance(v, (list, tuple)):
            return [str(p).strip().lower() for p in v if str(p).strip()]
        return v

    @classmethod
    def from_use_case(cls, requirements: dict[str, Any] | None) -> Requirements:
        """Read the JSON column (aliases mapped, unknown keys ignored); bad values -> InvalidInput."""
        raw = {_ALIASES.get(k, k): v for k, v in (requirements or {}).items()}
        known = {k: v for k, v in raw.items() if k in cls.model_fields and v is not None}
        try:
            return cls.model_validate(known)
        except Exception as exc:  # pydantic.ValidationError
            raise InvalidInput(f"Use case requirements are invalid: {exc}") from exc

    def with_traffic(self, inferred: dict[str, Any] | None, use_case: str) -> Requirements:
        """A copy that also requires what ``infer_requirements`` found in the use case's traffic."""
        return self.model_copy(update={"traffic": dict((inferred or {}).get("capabilities") or {}),
                                       "traffic_use_case": use_case})


class Rejection(BaseModel):
    model_id: str
    reason: str
    reasons: list[str] = Field(default_factory=list)


class CompatResult(BaseModel):
    compatible: list[str] = Field(default_factory=list)
    rejected: list[Rejection] = Field(default_factory=list)


def blended_price(price_in: Any, price_out: Any, input_share: float) -> float | None:
    """USD per million tokens at a mix of ``input_share`` input / rest output; None if either is unknown."""
    if price_in is None or price_out is None:
        return None
    return float(Decimal(price_in)) * input_share + float(Decimal(price_out)) * (1.0 - input_share)


def check_model(model: Any, req: Requirements, input_share: float = 0.75, status: str | None = None) -> list[str]:
    """Every reason ``model`` (a registry Model) fails ``req``; empty when compatible.  ``status``:
    the model's status on the use case ranked (``storage/status.py``), else its global one."""
    reasons: list[str] = []
    meta = model.meta or {}
    caps = set(model.capabilities or [])
    status = status or model.status
    if status in ("rejected", "retired"):
        reasons.append(f"status is {status}")
    if meta.get("catalog_gone_since_scan"):
        reasons.append("no longer listed by its catalog")
    if req.text_output:
        outs = (meta.get("modalities") or {}).get("output")
        if isinstance(outs, list) and outs and "text" not in outs:
            reasons.append(f"no text output (outputs: {', '.join(outs)})")
    if req.min_context:
        if model.context_length is None:
            reasons.append(f"context length unknown (needs >= {req.min_context:,})")
        elif model.context_length < req.min_context:
            reasons.append(f"context {model.context_length:,} < required {req.min_context:,}")
    for cap in req.requires:
        if cap not in caps:
            reasons.append(f"{cap} not listed among its capabilities")
    reasons += traffic_reasons(req.traffic, model, req.traffic_use_case or "this use case")
    if req.max_price_per_m is not None:
        from modelsteward.catalog.hosting import effective_prices

        eff = effective_prices(model)  # self-hosted: its hosting cost, never free
        blended = None if eff is None else eff[0] * input_share + eff[1] * (1.0 - input_share)
        if blended is None:
            reasons.append(f"price unknown (cap ${req.max_price_per_m:g}/M blended)")
        elif blended > req.max_price_per_m + 1e-12:
            reasons.append(f"blended price ${blended:.4g}/M > cap ${req.max_price_per_m:g}/M")
    if model.kind in SELF_HOSTED_KINDS:
        params_b = meta.get("params_b")
        if req.max_params_b is not None:
            if params_b is None:
                reasons.append(f"parameter count unknown (max {req.max_params_b:g}B)")
            elif float(params_b) > req.max_params_b:
                reasons.append(f"{float(params_b):g}B parameters > max {req.max_params_b:g}B")
        if req.licenses is not None:
            lic = meta.get("licence") or meta.get("license")
            if not lic:
                reasons.append(f"licence unknown (allowed: {', '.join(req.licenses)})")
            elif str(lic).lower() not in req.licenses:
                reasons.append(f"licence {lic} not in allow-list ({', '.join(req.licenses)})")
    return reasons


def check_compatibility(models: Iterable[Any], requirements: Requirements | dict[str, Any] | None,
                        input_share: float = 0.75) -> CompatResult:
    """Split ``models`` into compatible ids and rejections (first reason, plus all of them)."""
    req = requirements if isinstance(requirements, Requirements) else Requirements.from_use_case(requirements)
    out = CompatResult()
    for m in models:
        reasons = check_model(m, req, input_share)
        if reasons:
            out.rejected.append(Rejection(model_id=m.id, reason=reasons[0], reasons=reasons))
        else:
            out.compatible.append(m.id)
    return out


def traffic_reasons(traffic: dict[str, dict[str, float]] | None, model: Any, use_case: str) -> list[str]:
    """One line per capability the use case's traffic needs and ``model`` lacks (catalog flags)."""
    caps = set(model.capabilities or [])
    inputs = set(((getattr(model, "meta", None) or {}).get("modalities") or {}).get("input") or [])
    out = []
    for cap, need in (traffic or {}).items():
        what, flags, modality, lacks = _TRAFFIC_CAPS.get(cap, (cap, (cap,), None, f"does not list {cap}"))
        if caps & set(flags) or (modality and modality in inputs):
            continue
        out.append(f"use case {use_case}'s traffic uses {what} ({need.get('share', 0.0):.0%} of requests); "
                   f"model {model.id} {lacks}")
    return out


def infer_requirements(steward: Any, use_case: str, since: str = TRAFFIC_WINDOW,
                       limit: int = TRAFFIC_SAMPLE) -> dict[str, Any]:
    """What the use case's recent traffic needs of a model: ``{"requests": n, "window": since,
    "capabilities": {cap: {"requests": k, "share": k / n}}}`` over its last ``limit`` logged requests
    in ``since`` (shadow calls excluded: they repeat requests).  No traffic: no capabilities."""
    import datetime as dt

    from modelsteward.exchange import loads_json, required_capabilities
    from modelsteward.timeutil import window_start

    start = window_start(since, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    rows = steward.logs.query(
        "SELECT messages, request FROM logs WHERE use_case = ? AND ts >= ? AND coalesce(role, 'primary') <> 'shadow' "
        "ORDER BY ts DESC LIMIT ?", [use_case, start, int(limit)])
    counts: dict[str, int] = {}
    for r in rows:
        msgs = loads_json(r.get("messages"), [])
        for cap in required_capabilities(msgs if isinstance(msgs, list) else [], loads_json(r.get("request"), {})):
            counts[cap] = counts.get(cap, 0) + 1
    n = len(rows)
    return {"requests": n, "window": since,
            "capabilities": {c: {"requests": k, "share": round(k / n, 4)} for c, k in sorted(counts.items())}}
