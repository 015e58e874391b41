"""Small formatting helpers shared by the CLI tables and the Markdown reports (no heavy imports)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

__all__ = ["fmt_value", "fmt_decimal"]


def fmt_decimal(d: Decimal) -> str:
    """A Decimal as the number it is: ``1`` not ``1.0000000000``, ``0`` not ``0E-10``, ``0.15``."""
    d = d.normalize()
    if d.is_zero():
        return "0"
    return format(d.quantize(Decimal(1)) if d.as_tuple().exponent > 0 else d, "f")  # type: ignore[operator]


def fmt_value(v: Any) -> str:
    """A table cell: ``-`` for None, 3 decimals for small floats, thousands separators for big ones,
    Decimals (money) as the plain number they hold."""
    if v is None:
        return "-"
    if isinstance(v, Decimal):
        return fmt_decimal(v)
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)
