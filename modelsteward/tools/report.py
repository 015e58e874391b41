"""The realised-gain ledger as tools: ``measure_gains`` (mutating: writes the ledger and raises a
violation when a promotion's realised gain contradicts its stated one) and ``gain_report`` (read)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelsteward.tools.base import ToolContext, tool

__all__ = ["GainsIn", "GainReport"]


class GainsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    use_case: str = Field(min_length=1, description="Use case name.")
    since: str = Field(default="90d", description="Promotions in this window (30d, 12w, 2160h).")
    window_hours: float = Field(default=168.0, gt=0, le=24 * 90,
                                description="Hours of traffic compared before the rollout and after the promotion.")

    @field_validator("since")
    @classmethod
    def _window(cls, v: str) -> str:
        from modelsteward.timeutil import parse_duration

        try:
            parse_duration(v, what="Window")
        except Exception as exc:  # InvalidInput -> a validation error naming the field
            raise ValueError(str(getattr(exc, "message", exc))) from None
        return v


class GainReport(BaseModel):
    use_case: str
    since: str
    entries: list[dict[str, Any]] = Field(description="One per promotion: metrics before/after with 95% intervals.")
    totals: dict[str, Any] = Field(description="Counts by verdict, contradictions, summed cost-per-request change.")


def _report(use_case: str, since: str, entries: list[dict[str, Any]]) -> GainReport:
    verdicts: dict[str, int] = {}
    for e in entries:
        verdicts[e["verdict"]] = verdicts.get(e["verdict"], 0) + 1
    return GainReport(use_case=use_case, since=since, entries=entries, totals={
        "promotions": len(entries), "verdicts": verdicts,
        "contradicted": sum(1 for e in entries if e["contradicts"]),
    })


def _days(since: str) -> float:
    from modelsteward.timeutil import parse_duration

    return parse_duration(since, what="Window").total_seconds() / 86400


@tool("measure_gains", input_model=GainsIn, output_model=GainReport, mutating=True)
def measure_gains(ctx: ToolContext, inp: GainsIn) -> GainReport:
    """Measure what each promotion of a use case changed in the logs (cost per request, error rate, p95
    latency, feedback; window before vs after, 95% intervals) and update its realised-gain ledger."""
    from modelsteward.rollout.ledger import measure

    entries = measure(ctx.steward, inp.use_case, since_days=_days(inp.since), window_hours=inp.window_hours,
                      actor=ctx.actor)
    return _report(inp.use_case, inp.since, entries)


@tool("gain_report", input_model=GainsIn, output_model=GainReport, mutating=False)
def gain_report(ctx: ToolContext, inp: GainsIn) -> GainReport:
    """The realised-gain ledger of a use case: one entry per promotion, with stated and realised gains."""
    from modelsteward.rollout.ledger import ledger

    ctx.steward.registry.get_use_case(inp.use_case)  # NotFound naming close matches
    return _report(inp.use_case, inp.since, ledger(ctx.steward, inp.use_case, since_days=_days(inp.since)))
