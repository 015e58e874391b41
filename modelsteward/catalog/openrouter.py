"""Parsing one entry of OpenRouter's model list into a ``ScannedModel``.

Shared by the OpenRouter scanner (``catalog/paid.py``, which re-exports it) and the price-table
builder (``catalog/prices.py``), which the paid scanners read: its own module so that those two
do not import each other (issue 27).
"""

from __future__ import annotations

from typing import Any

from modelsteward.catalog.base import MissingField, ScannedModel, per_token_to_per_m, require

__all__ = ["parse_openrouter_entry"]


def _modalities(arch: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Input/output modalities from ``architecture`` (lists, or the older ``"text+image->text"``)."""
    ins = arch.get("input_modalities")
    outs = arch.get("output_modalities")
    if isinstance(ins, list) and isinstance(outs, list):
        return [str(x) for x in ins], [str(x) for x in outs]
    modality = arch.get("modality")
    if isinstance(modality, str) and "->" in modality:
        left, right = modality.split("->", 1)
        return left.split("+"), right.split("+")
    return ["text"], ["text"]


def parse_openrouter_entry(raw: dict[str, Any]) -> ScannedModel:
    """One entry of OpenRouter's ``GET /api/v1/models`` ``data`` list.

    Required: ``id`` and ``pricing.prompt`` / ``pricing.completion`` (decimal strings, USD per
    token).  ``"-1"`` (router models such as ``openrouter/auto``) means unknown: stored as None
    with ``metadata.price_unknown``.  ``context_length`` may be null (then ``top_provider``'s).
    """
    mid = str(require(raw, "id"))
    pricing = require(raw, "pricing")
    if not isinstance(pricing, dict):
        raise MissingField("pricing is not an object")
    pin = per_token_to_per_m(require(pricing, "prompt"))
    pout = per_token_to_per_m(require(pricing, "completion"))
    arch = raw.get("architecture") or {}
    ins, outs = _modalities(arch if isinstance(arch, dict) else {})
    params = set(raw.get("supported_parameters") or [])
    caps = set()
    if "text" in outs:
        caps.add("text")
    if "image" in ins:
        caps.add("image_input")
    if "tools" in params:
        caps.add("tools")
    if params & {"response_format", "structured_outputs"}:
        caps.add("json")
    if "structured_outputs" in params:
        caps.add("structured_outputs")
    if params & {"reasoning", "include_reasoning"}:
        caps.add("reasoning")
    ctx = raw.get("context_length") or (raw.get("top_provider") or {}).get("context_length")
    extra = {k: v for k, v in pricing.items() if k not in ("prompt", "completion")}
    meta: dict[str, Any] = {
        "modalities": {"input": ins, "output": outs},
        "family": mid.split("/", 1)[0] if "/" in mid else None,
        "hugging_face_id": raw.get("hugging_face_id") or None,
        "price_unknown": pin is None or pout is None,
        "price_source": "openrouter catalog (USD per token x 1e6)",
        "tokenizer": arch.get("tokenizer") if isinstance(arch, dict) else None,
        "created": raw.get("created"),
    }
    if extra:
        meta["pricing_extra"] = extra
    top = raw.get("top_provider") or {}
    if isinstance(top, dict) and top.get("max_completion_tokens"):
        meta["max_output_tokens"] = top["max_completion_tokens"]
    return ScannedModel(
        provider="openrouter", model=mid, display_name=str(raw.get("name") or mid),
        price_in_per_m=pin, price_out_per_m=pout, context_length=int(ctx) if ctx else None,
        capabilities=sorted(caps), metadata={k: v for k, v in meta.items() if v is not None}, kind="paid",
    )
