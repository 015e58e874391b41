"""The compatibility filter: a use case's requirements -> compatible models, and a reason per rejection.

Requirement keys (``use_cases.requirements`` JSON; aliases accepted): ``min_context``
(``min_context_length``), ``requires`` (list or comma string of capabilities: ``tools``, ``json``,
``reasoning``, ``image_input`` ...; ``required_capabilities``), ``max_price_per_m``
(``max_blended_price_per_m``: USD per million tokens blended at the use case's token mix),
``max_params_b`` (billions, self-hosted models only), ``licenses`` (``licences``: allow-list,
self-hosted models only), ``text_output`` (default true).

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

__all__ = ["Requirements", "Rejection", "CompatResult", "check_compatibility", "check_model", "blended_price"]

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
