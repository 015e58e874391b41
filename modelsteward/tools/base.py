"""The typed tool surface: every front-end (CLI, API, console, agent) acts through these.

A tool is a function ``(ctx: ToolContext, inp: InputModel) -> OutputModel`` registered with
``@tool``.  Every mutating tool has a policy rule (``modelsteward.policies.registry``):
``load_all_tools`` checks the two registries against each other and fails, naming the culprit, on
a mutating tool without a rule or a rule for an unknown tool.  Mutating tools pass the policy
engine first (``modelsteward.policies``, ``pass_policies``): a denial raises
``PolicyDenied`` (recorded), a needs-approval verdict persists an ``approvals`` row and raises
``ApprovalRequired`` carrying its id, unless the call executes that very approval.  A rule that
needs facts beyond the registry (a rollout analysis, the use case's traffic) gets them from the
tool: ``@tool(..., facts=gather)`` where ``gather(ctx, inp) -> dict`` of ``policies.Facts`` fields.
One verdict per call: the facts are gathered and the rules run once (``policies.judge``); the
resulting ``Verdict`` travels with the call (``call_tool(..., verdict=)``, ``ctx.verdict``) so
neither the tool nor the domain below it recomputes what was judged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from pydantic import BaseModel, ConfigDict, ValidationError

from modelsteward.context import ToolContext
from modelsteward.errors import InvalidInput, NotFound, RegistryError, close_matches
from modelsteward.facts import Decision, Verdict
from modelsteward.tools.observation import Observation, ObservedUseCase

__all__ = ["InputModel", "ToolContext", "ToolSpec", "FactsHook", "Verify", "tool", "call_tool", "pass_policies",
           "policy_verdict", "get_tool", "list_tools", "TOOLS", "observed_use_case"]



class InputModel(BaseModel):
    """The base of every input model (each tool's, and the API's own request bodies): a field it
    does not know is refused, naming the field (``extra_forbidden``), never silently dropped."""

    model_config = ConfigDict(extra="forbid")


In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)
# gathers what the tool's policy rule needs beyond the registry: names of ``policies.Facts`` fields -> values
FactsHook = Callable[[ToolContext, Any], dict[str, Any]]


# (the call's validated input, the world before, the world after) -> (the effect is visible, what was compared).
# The worlds are the agent's observations, typed (``tools/observation.py``; ``agent/observe.py`` builds them).
Verify = Callable[[Any, Observation, Observation], tuple[bool, str]]


def observed_use_case(observation: Observation, name: str | None) -> ObservedUseCase:
    """One use case of an observation (an empty one when it is not there): what ``verify`` hooks compare."""
    return observation.use_case(name) or ObservedUseCase(name=name or "")


@dataclass(frozen=True)
class ToolSpec(Generic[In, Out]):
    """One registered tool, typed by its input and output models: ``call_tool(spec, ...)`` returns ``Out``.
    ``@tool`` hands the spec back in place of the function (calling it calls the function)."""

    name: str
    description: str
    input_model: type[In]
    output_model: type[Out]
    func: Callable[[ToolContext, In], Out]
    mutating: bool
    long_running: bool = False
    # checks that need the workspace (unknown ids, unreadable files), run before the policies, so no
    # approval is ever requested for a call that cannot run
    check: Callable[[ToolContext, Any], None] | None = None
    facts: FactsHook | None = None
    verify: Verify | None = None  # how the agent checks a change showed up (None: nothing to check)
    # its output carries logged text (prompts, answers): the agent redacts it before a planner, a
    # journal or a checkpoint sees it, and viewers do not see it in a run's steps (issue 25)
    logged_text: bool = False

    def __call__(self, ctx: ToolContext, inp: In) -> Out:
        """The function itself, without validation or policies (``call_tool`` adds both)."""
        return self.func(ctx, inp)

    def json_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()


TOOLS: dict[str, ToolSpec[Any, Any]] = {}


def tool(
    name: str,
    *,
    input_model: type[In],
    output_model: type[Out],
    mutating: bool,
    long_running: bool = False,
    description: str | None = None,
    check: Callable[[ToolContext, Any], None] | None = None,
    facts: FactsHook | None = None,
    verify: Verify | None = None,
    logged_text: bool = False,
) -> Callable[[Callable[[ToolContext, In], Out]], ToolSpec[In, Out]]:
    """Register a tool; a duplicate name fails at import, naming both definitions.  The decorated name
    becomes the tool's ``ToolSpec`` (still callable as the function), the typed handle ``call_tool`` takes."""

    def deco(func: Callable[[ToolContext, In], Out]) -> ToolSpec[In, Out]:
        if input_model.model_config.get("extra") != "forbid":
            raise TypeError(f"Tool {name!r}: input model {input_model.__qualname__} must derive from "
                            "tools.base.InputModel (unknown fields refused, not dropped).")
        if name in TOOLS:
            other = TOOLS[name].func
            raise RegistryError(
                f"Tool {name!r} registered twice: {other.__module__}.{other.__qualname__} and "
                f"{func.__module__}.{func.__qualname__}."
            )
        doc = (description or func.__doc__ or name).strip()
        spec = ToolSpec(name, doc, input_model, output_model, func, mutating, long_running,
                        check=check, facts=facts, verify=verify, logged_text=logged_text)
        TOOLS[name] = spec
        return spec

    return deco


# cheap modules first: a read command finds its tool without importing catalog (numpy), evals or training
_TOOL_MODULES = ("registry", "hosts", "logs", "rollout", "approvals", "agent", "report", "access", "catalog", "evals",
                 "training", "checks")
_CHECKED: list[frozenset[tuple[str, bool]]] = []  # the tool set last found to match the policy registry


def _import_tool_module(mod: str) -> None:
    import importlib

    try:
        importlib.import_module(f"modelsteward.tools.{mod}")
    except ModuleNotFoundError as exc:
        if exc.name != f"modelsteward.tools.{mod}":
            raise


def load_all_tools() -> dict[str, ToolSpec[Any, Any]]:
    """Import every tools module that exists (each registers its tools on import), then check that
    every mutating tool has a policy rule and every rule a mutating tool (``PolicyRegistryError``)."""
    from modelsteward.policies import check_rules

    for mod in _TOOL_MODULES:
        _import_tool_module(mod)
    facts = frozenset((name, spec.mutating) for name, spec in TOOLS.items())
    if not _CHECKED or _CHECKED[0] != facts:
        check_rules(dict(facts))
        _CHECKED[:] = [facts]
    return TOOLS


def get_tool(name: str) -> ToolSpec[Any, Any]:
    """The tool called ``name``; tools modules are imported in order only until it is found."""
    for mod in _TOOL_MODULES:
        if name in TOOLS:
            break
        _import_tool_module(mod)
    if name not in TOOLS:
        load_all_tools()
        raise NotFound(f"Unknown tool {name!r}." + close_matches(name, list(TOOLS)), kind="tool", name=name)
    if TOOLS[name].mutating:
        load_all_tools()  # a mutating tool runs only once every tool is known to match the policy registry
    return TOOLS[name]


def list_tools() -> list[ToolSpec[Any, Any]]:
    return sorted(load_all_tools().values(), key=lambda t: t.name)


def pass_policies(spec: ToolSpec[Any, Any], ctx: ToolContext, inp: BaseModel, verdict: Verdict | None = None) -> Verdict:
    """Pass the policy engine with a validated call of a mutating tool (``PolicyDenied`` /
    ``ApprovalRequired`` as ``policies.enforce`` raises them); returns the verdict acted on.

    ``verdict``: one judged already for this call (the agent's guard node hands it on), acted on
    when it fits the call (``modelsteward/facts.py``: same tool, arguments, actor, approval,
    workspace, and fresh by ``ctx.clock``); absent or not fitting, the tool's facts hook gathers the
    facts and the rules run once here."""
    from modelsteward.policies import enforce, judge
    from modelsteward.policies.engine import misfit

    args = inp.model_dump(mode="json")
    if verdict is None or misfit(verdict, ctx, spec.name, args) is not None:
        verdict = judge(ctx, spec.name, args, facts=spec.facts(ctx, inp) if spec.facts else None)
    enforce(ctx, spec.name, args, verdict=verdict)
    return verdict


def policy_verdict(name: str, args: dict[str, Any] | BaseModel, ctx: ToolContext) -> Decision:
    """The policy engine's verdict (``policies.Decision``) on a call of a mutating tool, with the facts
    its hook gathers, without acting on it (no decision row, no approval)."""
    from modelsteward.policies import judge

    spec = get_tool(name)
    inp = _validated(spec, name, args)
    return judge(ctx, name, inp.model_dump(mode="json"), facts=spec.facts(ctx, inp) if spec.facts else None).decision


def _validated(spec: ToolSpec[Any, Any], name: str, args: dict[str, Any] | BaseModel) -> BaseModel:
    try:
        return args if isinstance(args, spec.input_model) else spec.input_model.model_validate(
            args.model_dump() if isinstance(args, BaseModel) else args
        )
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"Invalid arguments for tool {name!r}: {fields}", errors=exc.errors(include_url=False)) from exc


@overload
def call_tool(tool: ToolSpec[In, Out], args: dict[str, Any] | BaseModel, ctx: ToolContext, *,
              verdict: Verdict | None = None) -> Out: ...


@overload
def call_tool(tool: str, args: dict[str, Any] | BaseModel, ctx: ToolContext, *,
              verdict: Verdict | None = None) -> BaseModel: ...


def call_tool(tool: ToolSpec[Any, Any] | str, args: dict[str, Any] | BaseModel, ctx: ToolContext, *,
              verdict: Verdict | None = None) -> BaseModel:
    """Validate ``args``, pass the policy engine when the tool mutates (reusing ``verdict`` when it
    was judged for this very call, see ``pass_policies``), run it.  The tool's body finds the
    verdict it runs under in ``ctx.verdict``: the facts it acts on are the ones judged.  Given the
    tool's spec (``from modelsteward.tools.registry import list_models``) the result is typed as its
    output model; given its name (the agent, the API's generic routes), as ``BaseModel``."""
    name = tool if isinstance(tool, str) else tool.name
    spec = get_tool(name)
    inp = _validated(spec, name, args)
    if spec.check is not None:
        spec.check(ctx, inp)
    outer = ctx.verdict
    ctx.verdict = pass_policies(spec, ctx, inp, verdict) if spec.mutating else None
    try:
        out: BaseModel = spec.func(ctx, inp)
        return out
    finally:
        ctx.verdict = outer
