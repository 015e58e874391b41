"""Discovery tools: ``scan`` (catalogs -> registry, mutating) and ``rank`` (read-only)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from modelsteward.catalog.compat import CompatResult, Requirements, check_compatibility, infer_requirements
from modelsteward.catalog.rank import DEFAULT_INPUT_SHARE, Ranking, log_evidence, rank_use_case
from modelsteward.catalog.scan import SourceReport, resolve_providers, run_scan
from modelsteward.tools.base import InputModel, ToolContext, tool
from modelsteward.tools.observation import Observation

__all__ = ["ScanInput", "ScanOutput", "RankInput", "scan", "rank"]


class ScanInput(InputModel):
    provider: str = Field(default="all", description="openrouter | openai | anthropic | google | huggingface | "
                                                      "ollama | local | all (or a comma list)")
    use_case: str | None = Field(default=None, description="also filter the registry for this use case")
    timeout_s: float = Field(default=20.0, gt=0, le=600, description="per source")
    limit: int | None = Field(default=None, ge=1, description="max models from Hugging Face (default 200)")


class ScanOutput(BaseModel):
    sources: list[SourceReport]
    use_case: str | None = None
    compatibility: CompatResult | None = None


class RankInput(InputModel):
    use_case: str
    weights: dict[str, float] | None = Field(default=None, description="override: quality, cost, latency")
    since: str = Field(default="30d", description="log window for token mix, feedback and latency")
    top: int | None = Field(default=None, ge=1)


def _scan_recorded(inp: ScanInput, before: Observation, after: Observation) -> tuple[bool, str]:
    """A scan shows as a newer last scan of the catalog."""
    b, a = before.catalog.last_scan_at, after.catalog.last_scan_at
    return a != b, f"last scan {a}"


@tool("scan", input_model=ScanInput, output_model=ScanOutput, mutating=True, verify=_scan_recorded)
def scan(ctx: ToolContext, inp: ScanInput) -> ScanOutput:
    """Scan model catalogs, upsert what they list (new ones as 'discovered'), record new/gone/re-priced."""
    steward = ctx.steward
    resolve_providers(inp.provider)  # unknown names fail before anything runs
    uc = steward.registry.get_use_case(inp.use_case) if inp.use_case else None
    report = run_scan(steward, inp.provider, timeout=inp.timeout_s, limit=inp.limit)
    out = ScanOutput(sources=report.sources, use_case=inp.use_case)
    if uc is not None:
        _, share, _ = log_evidence(steward, uc.name)
        req = Requirements.from_use_case(uc.requirements).with_traffic(infer_requirements(steward, uc.name), uc.name)
        out.compatibility = check_compatibility(steward.registry.list_models(), req,
                                                share if share is not None else DEFAULT_INPUT_SHARE)
    return out


@tool("rank", input_model=RankInput, output_model=Ranking, mutating=False)
def rank(ctx: ToolContext, inp: RankInput) -> Ranking:
    """Rank compatible models for a use case by weighted quality, cost and latency, with the Pareto front."""
    return rank_use_case(ctx.steward, inp.use_case, weights=inp.weights, since=inp.since, top=inp.top)
