"""What a re-test of a candidate depends on: its price, its version and the live model it is compared with.

Stored by every evaluation in ``test_results.metrics["fingerprint"]`` (``evals/evaluate.py``), whoever
started it (the candidate intake, the SLO rule, a person), and compared by the candidate intake
(``agent/intake.py``) before it tests a failed candidate again: only a key that was recorded and
differs now is a change.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

__all__ = ["model_fingerprint", "has_fingerprint", "FINGERPRINT_KEYS", "VERSION_KEYS"]

VERSION_KEYS = ("version", "revision", "sha", "digest", "last_modified", "modified_at")
FINGERPRINT_KEYS = (("price_in", "input price"), ("price_out", "output price"), ("version", "version"))


def model_fingerprint(model: Any, live: str | None) -> dict[str, Any]:
    """Price (normalised decimal text), version (the first version-like metadata key) and live model."""
    meta = getattr(model, "meta", None) or {}
    version = next((str(meta[k]) for k in VERSION_KEYS if meta.get(k) not in (None, "")), None)

    def p(v: Decimal | None) -> str | None:
        return None if v is None else format(Decimal(v).normalize(), "f")

    return {"price_in": p(model.price_in_per_m), "price_out": p(model.price_out_per_m), "version": version,
            "live": live}


def has_fingerprint(fp: Any) -> bool:
    """Whether ``fp`` records anything (an empty dict is no fingerprint, not a model with no price)."""
    return isinstance(fp, dict) and any(k in fp for k, _ in FINGERPRINT_KEYS)
