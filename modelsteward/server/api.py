"""``/api`` read routes (through the read model, ``storage/read.py``) and the routes that are not
tools: approvals, tokens.

Every route names the least role it needs (viewer for reads).  Lists take ``limit``/``offset`` and
return newest first where rows have a time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from modelsteward.context import Steward
from modelsteward.server import schemas as S
from modelsteward.server.auth import list_tokens, role_at_least
from modelsteward.server.deps import AdminDep, IdentityDep, StewardDep, ViewerDep, tool_context
from modelsteward.storage import read
from modelsteward.storage.states import MODEL_STATUSES
from modelsteward.tools import access as access_tools
from modelsteward.tools.base import call_tool

__all__ = ["router", "ERROR_RESPONSES", "IdPath"]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": S.ErrorOut, "description": "Missing, invalid or revoked token."},
    403: {"model": S.ErrorOut, "description": "The token's role is too low (the message names the role needed)."},
    404: {"model": S.ErrorOut, "description": "Unknown id or name."},
    409: {"model": S.ErrorOut, "description": "The current state does not allow it (e.g. already decided)."},
    422: {"model": S.ErrorOut, "description": "Invalid input; details.errors lists the fields."},
}

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)

IdPath = Annotated[int, Path(ge=1, le=2_147_483_647, description="Row id.")]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many rows.")]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
UseCaseQ = Annotated[str | None, Query(max_length=100, description="Only this use case.")]
ModelStatus = Literal[MODEL_STATUSES]  # type: ignore[valid-type]


# ---------------------------------------------------------------- identity and tools
@router.get("/me", response_model=S.Me, tags=["auth"], summary="Who the token belongs to")
def me(ident: IdentityDep) -> S.Me:
    return S.Me(name=ident.name, role=ident.role, actor=ident.actor)


@router.get("/tools", response_model=list[S.ToolOut], tags=["auth"], summary="The typed tools behind the API")
def tools(_: ViewerDep) -> list[S.ToolOut]:
    from modelsteward.tools.base import list_tools

    return [
        S.ToolOut(name=t.name, description=t.description, mutating=t.mutating, long_running=t.long_running,
                  input_schema=t.json_schema())
        for t in list_tools()
    ]


# ---------------------------------------------------------------- use cases
@router.get("/use-cases", response_model=list[S.UseCaseOut], tags=["use cases"])
def list_use_cases(steward: StewardDep, _: ViewerDep) -> list[Any]:
    return list(steward.registry.list_use_cases())


@router.get("/use-cases/{name}", response_model=S.UseCaseDetail, tags=["use cases"])
def get_use_case(steward: StewardDep, _: ViewerDep, name: Annotated[str, Path(max_length=100)]) -> S.UseCaseDetail:
    uc = steward.registry.get_use_case(name)
    dep = steward.registry.deployment(name)
    base = S.UseCaseOut.model_validate(uc).model_dump()
    return S.UseCaseDetail(
        **base, deployment_version=dep.version,
        allocations=[S.AllocationOut(**a) for a in steward.registry.routing_table(dep)],
    )


@router.get("/use-cases/{name}/history", response_model=list[S.HistoryOut], tags=["use cases"],
            summary="Routing-table changes, newest first")
def use_case_history(
    steward: StewardDep, _: ViewerDep, name: Annotated[str, Path(max_length=100)], limit: Limit = 100,
) -> list[Any]:
    return read.history(steward, name, limit=limit)


@router.get("/use-cases/{name}/stats", response_model=list[dict[str, Any]], tags=["use cases"],
            summary="Request-log statistics per model and role")
def use_case_stats(
    steward: StewardDep, _: ViewerDep, name: Annotated[str, Path(max_length=100)],
    since: Annotated[str, Query(pattern=r"^\d{1,5}[mhdw]$", description="Window, e.g. 30m, 24h, 7d, 2w.")] = "7d",
) -> list[dict[str, Any]]:
    steward.registry.get_use_case(name)
    from modelsteward.server.views import jsonable_rows

    return jsonable_rows(steward.logs.stats(use_case=name, since=since))


# ---------------------------------------------------------------- models
@router.get("/models", response_model=list[S.ModelOut], tags=["models"])
def list_models(
    steward: StewardDep, _: ViewerDep, use_case: UseCaseQ = None, status: ModelStatus | None = None,
    provider: Annotated[str | None, Query(max_length=50)] = None,
    kind: Literal["paid", "self_hosted", "fine_tuned"] | None = None,
) -> list[Any]:
    rows = steward.registry.list_models(use_case=use_case, status=status, provider=provider, kind=kind)
    return _model_outs(steward, rows)


def _model_outs(steward: Steward, rows: list[Any]) -> list[S.ModelOut]:
    per = steward.registry.use_case_statuses([m.id for m in rows])
    return [S.ModelOut.model_validate(m).model_copy(update={"use_case_statuses": per.get(m.id, {})}) for m in rows]


@router.get("/models/{model_id:path}", response_model=S.ModelOut, tags=["models"],
            summary="One model by its id (provider:model)")
def get_model(steward: StewardDep, _: ViewerDep, model_id: Annotated[str, Path(max_length=300)]) -> Any:
    return _model_outs(steward, [steward.registry.get_model(model_id)])[0]


# ---------------------------------------------------------------- evaluations, jobs, rollouts, violations
@router.get("/evaluations", response_model=list[S.TestResultOut], tags=["evaluations"])
def list_evaluations(
    steward: StewardDep, _: ViewerDep, use_case: UseCaseQ = None,
    candidate: Annotated[str | None, Query(max_length=300)] = None, limit: Limit = 100, offset: Offset = 0,
) -> list[Any]:
    return read.evaluations(steward, use_case=use_case, candidate=candidate, limit=limit, offset=offset)


@router.get("/evaluations/{result_id}", response_model=S.TestResultOut, tags=["evaluations"])
def get_evaluation(steward: StewardDep, _: ViewerDep, result_id: IdPath) -> Any:
    return read.evaluation(steward, result_id)


@router.get("/fine-tuning-jobs", response_model=list[S.FineTuningJobOut], tags=["fine-tuning"])
def list_jobs(
    steward: StewardDep, _: ViewerDep, use_case: UseCaseQ = None,
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
    limit: Limit = 100, offset: Offset = 0,
) -> list[Any]:
    return read.jobs(steward, use_case=use_case, status=status, limit=limit, offset=offset)


@router.get("/fine-tuning-jobs/{job_id}", response_model=S.FineTuningJobOut, tags=["fine-tuning"])
def get_job(steward: StewardDep, _: ViewerDep, job_id: IdPath) -> Any:
    return read.job(steward, job_id)


@router.get("/rollouts", response_model=list[S.RolloutOut], tags=["rollouts"])
def list_rollouts(
    steward: StewardDep, _: ViewerDep, use_case: UseCaseQ = None,
    state: Literal["running", "waiting", "paused", "completed", "aborted", "rolled_back"] | None = None,
    limit: Limit = 100, offset: Offset = 0,
) -> list[S.RolloutOut]:
    return read.rollouts(steward, use_case=use_case, state=state, limit=limit, offset=offset)


@router.get("/rollouts/{rollout_id}", response_model=S.RolloutOut, tags=["rollouts"])
def get_rollout(steward: StewardDep, _: ViewerDep, rollout_id: IdPath) -> S.RolloutOut:
    return read.rollout(steward, rollout_id)


@router.get("/violations", response_model=list[S.ViolationOut], tags=["guardrails"])
def list_violations(
    steward: StewardDep, _: ViewerDep, use_case: UseCaseQ = None,
    severity: Literal["info", "warn", "pause", "rollback", "disable"] | None = None,
    limit: Limit = 100, offset: Offset = 0,
) -> list[Any]:
    return read.violations(steward, use_case=use_case, severity=severity, limit=limit, offset=offset)


# ---------------------------------------------------------------- approvals (reads)
@router.get("/approvals", response_model=list[S.ApprovalOut], tags=["approvals"])
def list_approvals(
    steward: StewardDep, _: ViewerDep,
    status: Literal["pending", "approved", "rejected", "expired", "executed", "withdrawn"] | None = None,
    limit: Limit = 100, offset: Offset = 0,
) -> list[Any]:
    return read.approvals(steward, status=status, limit=limit, offset=offset)


@router.get("/approvals/{approval_id}", response_model=S.ApprovalOut, tags=["approvals"])
def get_approval(steward: StewardDep, _: ViewerDep, approval_id: IdPath) -> Any:
    return read.approval(steward, approval_id)


# ---------------------------------------------------------------- agent runs (reads)
@router.get("/agent-runs", response_model=list[S.AgentRunOut], tags=["agent"])
def list_agent_runs(
    steward: StewardDep, who: ViewerDep, use_case: UseCaseQ = None,
    status: Annotated[str | None, Query(max_length=20)] = None, limit: Limit = 100, offset: Offset = 0,
) -> list[Any]:
    runs = read.agent_runs(steward, use_case=use_case, status=status, limit=limit, offset=offset)
    return runs if role_at_least(who.role, "operator") else [_for_viewer(r) for r in runs]


_HIDDEN = "(hidden: this step read logged text; query results are for operators)"


def _for_viewer(run: Any) -> Any:
    """A run as a viewer sees it: steps that read or quote logged text (query results) lose their
    text, and so does the report that may quote them (issue 25)."""
    if not any(isinstance(s, dict) and s.get("logged_text") for s in run.steps):
        return run
    steps = [{**s, "result": _HIDDEN, "output": None, "text": _HIDDEN} if isinstance(s, dict) and s.get("logged_text")
             else s for s in run.steps]
    return run.model_copy(update={"steps": steps, "report": _HIDDEN if run.report else run.report})


@router.get("/agent-runs/{run_id}", response_model=S.AgentRunOut, tags=["agent"])
def get_agent_run(steward: StewardDep, who: ViewerDep, run_id: IdPath) -> Any:
    """A run with its steps; what read logged text (query results) is for operators (``_for_viewer``)."""
    run = read.agent_run(steward, run_id)
    return run if role_at_least(who.role, "operator") else _for_viewer(run)


# ---------------------------------------------------------------- tokens (admin)
@router.get("/tokens", response_model=list[S.TokenOut], tags=["auth"])
def get_tokens(steward: StewardDep, _: AdminDep) -> list[Any]:
    return list_tokens(steward)


@router.post("/tokens", response_model=S.TokenCreated, status_code=201, tags=["auth"],
             summary="Create a token (the plain token is in the answer, once)")
def post_token(steward: StewardDep, ident: AdminDep, body: S.TokenIn) -> S.TokenCreated:
    out = call_tool(access_tools.token_create, {"name": body.name, "role": body.role}, tool_context(steward, ident))
    return S.TokenCreated.model_validate(out.model_dump())


@router.delete("/tokens/{token_id}", response_model=S.TokenOut, tags=["auth"], summary="Revoke a token")
def delete_token(steward: StewardDep, ident: AdminDep, token_id: IdPath) -> Any:
    return call_tool(access_tools.token_revoke, {"token_id": token_id}, tool_context(steward, ident))
