"""The price table for catalogs whose API lists no prices (OpenAI, Anthropic, Google).

``price_table.json`` (beside this module) is built by :func:`build_price_table` from a saved
OpenRouter catalog, which lists first-party models at the provider's own list price.  It says
where its figures come from and when they were taken; a model missing from it keeps an unknown
price (never a guess).  Rebuild it with ``python -m modelsteward.catalog.prices FILE DATE``.
"""

from __future__ import annotations

import json
import re
import sys
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["PriceEntry", "lookup_price", "price_table_info", "build_price_table", "normalise_id"]

TABLE_PATH = Path(__file__).with_name("price_table.json")
PROVIDERS = ("openai", "anthropic", "google")

PriceEntry = dict[str, Any]


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    return json.loads(TABLE_PATH.read_text(encoding="utf-8"))


def price_table_info() -> dict[str, str]:
    """``{"as_of": ..., "source": ...}`` of the shipped table."""
    t = _table()
    return {"as_of": t["as_of"], "source": t["source"]}


def normalise_id(provider: str, model_id: str) -> str:
    """A provider's own model id -> the table key (OpenRouter's slug without the provider prefix).

    Anthropic ids carry a date and use ``-`` between version digits (``claude-sonnet-4-5-20250929``);
    OpenRouter writes ``claude-sonnet-4.5``.
    """
    mid = model_id.strip().lower()
    if provider == "anthropic":
        mid = re.sub(r"-\d{8}$", "", mid)
        mid = re.sub(r"-latest$", "", mid)
        mid = re.sub(r"(?<=\d)-(?=\d(?:$|-))", ".", mid)
    return mid


def lookup_price(provider: str, model_id: str) -> PriceEntry | None:
    """``{"in": Decimal, "out": Decimal, "context_length": int|None, "capabilities": [...]}`` or None."""
    entry = _table()["models"].get(provider, {}).get(normalise_id(provider, model_id))
    if entry is None:
        return None
    return {
        "in": Decimal(entry["in"]),
        "out": Decimal(entry["out"]),
        "context_length": entry.get("context_length"),
        "capabilities": list(entry.get("capabilities", [])),
    }


def build_price_table(openrouter_payload: dict[str, Any], as_of: str, origin: str) -> dict[str, Any]:
    """Build the table from an OpenRouter ``/api/v1/models`` payload (first-party entries only)."""
    from modelsteward.catalog.openrouter import parse_openrouter_entry

    models: dict[str, dict[str, Any]] = {p: {} for p in PROVIDERS}
    for raw in openrouter_payload.get("data", []):
        slug = str(raw.get("id", ""))
        prefix, _, rest = slug.partition("/")
        if prefix not in PROVIDERS or not rest or ":" in rest:  # skip :batch / :free variants
            continue
        try:
            m = parse_openrouter_entry(raw)
        except (ValueError, KeyError, TypeError):
            continue
        if m.price_in_per_m is None or m.price_out_per_m is None:
            continue
        models[prefix][rest.lower()] = {
            "in": str(m.price_in_per_m), "out": str(m.price_out_per_m),
            "context_length": m.context_length, "capabilities": m.capabilities,
        }
    return {
        "as_of": as_of,
        "source": (f"OpenRouter GET /api/v1/models as saved in {origin}; OpenRouter lists first-party models at "
                   "the provider's list price. USD per million tokens (input, output)."),
        "models": models,
    }


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    src, date = Path(sys.argv[1]), sys.argv[2]
    table = build_price_table(json.loads(src.read_text()), date, src.name)
    TABLE_PATH.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {TABLE_PATH}: " + ", ".join(f"{p} {len(v)}" for p, v in table["models"].items()))
