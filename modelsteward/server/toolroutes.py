"""``/api`` routes that act: each is a thin wrapper over one typed tool (``tools.call_tool``).

The request body is the tool's own input model (less the fields taken from the path), the answer
its output model, so the OpenAPI spec documents exactly what the tools accept.  Routes are POST
unless the table names another method (``PATCH``/``DELETE /use-cases/{use_case}``).  A route is added
only when its tool is registered (areas land their tools independently); the table below is the
whole list.  A tool that needs an approval answers 202 with the approval id
(``code: approval_required``); one whose model check failed answers 424 (``code: check_failed``,
``details.fix``; see ``tools/checks.py``).  Mutating and long-running tools need role operator; read-only
tools need viewer.  Long-running tools answer 202 with a background task (``tasks``) unless the
caller asks ``?wait=true``.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, create_model

from modelsteward.server.api import ERROR_RESPONSES
from modelsteward.server.deps import StewardDep, require_role, tool_context
from modelsteward.server.schemas import ErrorOut
from modelsteward.server.tasks import TaskOut
from modelsteward.tools.base import ToolSpec, call_tool, load_all_tools

__all__ = ["ToolRoute", "TOOL_ROUTES", "build_tool_router"]


@dataclass(frozen=True)
class ToolRoute:
    tool: str
    path: str  # under /api; ``{field}`` path parameters fill tool fields of the same name
    tag: str
    summary: str
    role: str | None = None  # default: operator for mutating/long-running tools, else viewer
    status_code: int = 200
    method: str = "POST"


TOOL_ROUTES: tuple[ToolRoute, ...] = (
    ToolRoute("usecase_add", "/use-cases", "use cases", "Create a use case", status_code=201),
    ToolRoute("usecase_update", "/use-cases/{use_case}", "use cases", "Change a use case (partial update)",
              method="PATCH"),
    ToolRoute("usecase_delete", "/use-cases/{use_case}", "use cases", "Delete a use case", method="DELETE"),
    ToolRoute("models_register", "/models", "models", "Register a model", status_code=201),
    ToolRoute("scan", "/scan", "catalog", "Scan model catalogs for candidates"),
    ToolRoute("rank", "/rank", "catalog", "Rank the candidates of a use case"),
    ToolRoute("evaluate", "/evaluations", "evaluations", "Evaluate a candidate against the current model"),
    ToolRoute("build_dataset", "/datasets", "fine-tuning", "Build a fine-tuning dataset from the logs"),
    ToolRoute("fine_tune", "/fine-tuning-jobs", "fine-tuning", "Fine-tune a base model", status_code=201),
    ToolRoute("fine_tune_cancel", "/fine-tuning-jobs/{job_id}/cancel", "fine-tuning", "Stop a fine-tuning job"),
    ToolRoute("deploy", "/rollouts", "rollouts", "Start a rollout (shadow, canary or full)"),
    ToolRoute("rollout_status", "/use-cases/{use_case}/rollout/status", "rollouts", "Rollout status and analysis"),
    ToolRoute("rollout_advance", "/use-cases/{use_case}/rollout/advance", "rollouts", "Advance the rollout a step"),
    ToolRoute("rollout_abort", "/use-cases/{use_case}/rollout/abort", "rollouts", "Abort the rollout"),
    ToolRoute("rollback", "/use-cases/{use_case}/rollback", "rollouts", "Roll back to a snapshot"),
    ToolRoute("guard_check", "/guard/check", "guardrails", "Check the guardrails now"),
    ToolRoute("set_policy", "/use-cases/{use_case}/policy", "guardrails", "Set policy, rollout or guardrail thresholds"),
    ToolRoute("models_check", "/models/{model_id:path}/check", "models",
              "Check a model with one tiny completion (URL, key, status, latency, likely fix)", role="operator"),
    ToolRoute("retire_model", "/models/retire", "models", "Retire a model (off every routing table)"),
    ToolRoute("agent_run", "/agent-runs", "agent", "Run the agent once", status_code=201),
    ToolRoute("hosts_allow", "/hosts", "egress", "Approve a host to receive model calls (admin)", role="admin",
              status_code=201),
)

# tools that check a model before it takes traffic (tools/checks.py): a failed check answers 424
_CHECK_FAILED: dict[int | str, dict[str, Any]] = {424: {"model": ErrorOut, "description": (
    "code check_failed: the model's check before it takes traffic failed; nothing changed. details.fix names the "
    "fix, details.check is the check's output; no_check: true forces the change.")}}

_PATH_PARAM = re.compile(r"{(\w+)(?::path)?}")  # ``{model_id:path}``: an id that holds slashes


def _body_model(spec: ToolSpec, path_fields: list[str]) -> type[BaseModel]:
    """The request body: the tool's input model less its path fields.  A tool that takes nothing
    besides its path still gets an (empty, optional) body model, so a body with a field it does
    not know is refused (422 naming the field) rather than ignored, as on every other route."""
    fields = spec.input_model.model_fields
    if not path_fields:
        return spec.input_model
    rest = {n: (f.annotation, f) for n, f in fields.items() if n not in path_fields}
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{spec.input_model.__name__}Body", __config__=spec.input_model.model_config, **rest,
    )


def _endpoint(spec: ToolSpec, route: ToolRoute, role: str) -> Any:
    path_fields = _PATH_PARAM.findall(route.path)
    missing = [f for f in path_fields if f not in spec.input_model.model_fields]
    if missing:
        raise RuntimeError(f"Route {route.path} names {missing} that tool {spec.name!r} does not take.")
    body_model = _body_model(spec, path_fields)

    def endpoint(steward: Any, ident: Any, request: Request, body: BaseModel | None = None, wait: bool = True,
                 **path: Any) -> Any:
        args: dict[str, Any] = body.model_dump(exclude_unset=True) if body is not None else {}
        args.update(path)
        ctx = tool_context(steward, ident)
        if spec.long_running and not wait:
            task = request.app.state.tasks.start(spec.name, args, ctx)
            return JSONResponse(status_code=202, content=task.model_dump(mode="json"),
                                headers={"Location": f"/api/tasks/{task.id}"})
        return call_tool(spec.name, args, ctx)

    params = [
        inspect.Parameter("steward", inspect.Parameter.KEYWORD_ONLY, annotation=StewardDep),
        inspect.Parameter("ident", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[Any, require_role(role)]),
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
    ]
    if spec.long_running:
        params.append(inspect.Parameter(
            "wait", inspect.Parameter.KEYWORD_ONLY, default=False,
            annotation=Annotated[bool, Query(description="Run inside the request instead of answering 202 with a task.")],
        ))
    for name in path_fields:
        ann = spec.input_model.model_fields[name].annotation
        ann = ann if ann in (int, str) else str
        extra: dict[str, Any] = {"max_length": 300} if ann is str else {"ge": 1, "le": 2_147_483_647}
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[ann, Path(**extra)]))
    required = any(f.is_required() for f in body_model.model_fields.values())
    params.append(inspect.Parameter(
        "body", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[body_model, Body()],
        default=inspect.Parameter.empty if required else None,
    ))
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    endpoint.__name__ = f"tool_{spec.name}"
    endpoint.__doc__ = spec.description
    return endpoint


def build_tool_router(tools: dict[str, ToolSpec] | None = None) -> APIRouter:
    """An ``/api`` router with one route per registered tool in ``TOOL_ROUTES``."""
    tools = load_all_tools() if tools is None else tools
    router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)
    for route in TOOL_ROUTES:
        spec = tools.get(route.tool)
        if spec is None:
            continue
        role = route.role or ("operator" if spec.mutating or spec.long_running else "viewer")
        accepted = (
            {"model": TaskOut | ErrorOut, "description": "Started in the background (a task; poll /api/tasks/{id}), "
             "or (code approval_required) the action needs an approval: details.approval_id."}
            if spec.long_running else
            {"model": ErrorOut, "description": "The action needs an approval; details.approval_id."}
        )
        router.add_api_route(
            route.path, _endpoint(spec, route, role), methods=[route.method], response_model=spec.output_model,
            status_code=route.status_code, tags=[route.tag], summary=route.summary,
            description=f"{spec.description}\n\nTool `{spec.name}`; needs role `{role}`."
            + (" Long-running: answers 202 with a task unless `wait=true`." if spec.long_running else ""),
            responses={202: accepted, **(_CHECK_FAILED if "no_check" in spec.input_model.model_fields else {})},
            openapi_extra={"x-steward-tool": spec.name, "x-steward-role": role},
        )
    return router
