"""Scorers per answer kind: ``tool_calls`` and ``structured``, and the gate's checks on them.

Mixed traffic is stratified by the request's kind (``exchange.request_kind``; ``evals/replay.py``);
the text scorers (similarity, quality) read every answer's text, tool calls as ``name(arguments)``.
These two score what text cannot: whether the right function was called with the right arguments,
and whether a structured answer is JSON that the application's schema accepts.  The rules are in
``evals/kindrules.py`` (the tool rules anchored on the Berkeley Function Calling Leaderboard's AST
checker).

Per item the reference answer is, in this order: the golden set's reference; the live model's
logged answer (unless it failed or its feedback is below ``min_feedback``); else the baseline's
answer in this run.  Both models are judged against it; when the reference is the baseline's own
answer, the baseline is judged only on validity (it cannot disagree with itself).

- ``tool_calls`` (items whose request offers tools, or whose reference calls one): an item passes
  when every call names a function the request offered with arguments valid against its schema,
  the calls match the reference's (count, names, arguments; parallel calls unordered), a reference
  answered in text is answered in text, and a request forcing a call (``tool_choice`` ``required``
  or a named function) gets one.  Metrics per side: ``accuracy`` (share of items passed),
  ``valid_rate`` (share of items whose calls are all valid), ``called`` (items with a call),
  ``errors`` (upstream errors: their own column, never a pass; they count in the denominator),
  ``failures`` (count per reason).
- ``structured`` (items whose request asks for a JSON response format): per side ``json_valid_rate``,
  ``schema_valid_rate`` (JSON valid against the request's schema) and ``field_agreement`` (mean
  share of the reference's leaf fields the answer has equal), ``errors`` as above.

The gate (``kind_checks``, called by ``gate.decide``) adds one check per kind present, named after
its stratum (``tools``, ``structured``):

- fail when the candidate cannot do what the stratum needs: no tool call at all where the reference
  or the request needs one (``tools``), no valid JSON at all (``structured``), while the baseline can;
- fail when the candidate's tool-call accuracy / schema-valid rate is below the baseline's by more
  than ``KIND_MARGIN`` (0.05: five points), or below ``KIND_FLOOR`` (0.5) while the baseline is not;
- inconclusive on fewer than ``min_samples`` items of the kind; else pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelsteward.evals.kindrules import (
    call_problem,
    field_agreement,
    match_calls,
    needs_call,
    parse_json_answer,
    schema_problem,
    tool_schemas,
)
from modelsteward.evals.checks import Check
from modelsteward.evals.scorers import EvalData, ScoreResult, register_scorer
from modelsteward.exchange import response_schema

if TYPE_CHECKING:
    from modelsteward.evals.replay import EvalItem
    from modelsteward.evals.runner import Generation

__all__ = ["tool_calls", "structured", "kind_checks", "KIND_MARGIN", "KIND_FLOOR", "KIND_CHECKS"]

KIND_MARGIN = 0.05  # the candidate may be this much (absolute share) below the baseline
KIND_FLOOR = 0.5  # below this share the candidate fails unless the baseline is as low
KIND_CHECKS = ("tools", "structured")  # the gate checks' names (one per stratum)
ERROR = "upstream error"


def _answer(gen: Generation) -> Mapping[str, Any]:
    return gen.answer if gen.answer is not None else {"content": gen.text}


def _reference(item: EvalItem, base: Generation) -> tuple[Mapping[str, Any] | None, str]:
    """The item's reference answer and where it comes from (golden | logs | baseline | none)."""
    if item.answer is not None:
        return item.answer, item.source
    if base.ok:
        return _answer(base), "baseline"
    return None, "none"


# ---------------------------------------------------------------------------------------------- tool calls
def _tool_verdict(item: EvalItem, gen: Generation, ref: Mapping[str, Any] | None, self_ref: bool) -> str | None:
    """Why one answer fails its tool-call item (a reason), or None when it passes."""
    if not gen.ok:
        return ERROR
    tools = tool_schemas(item.request)
    calls = _answer(gen).get("tool_calls") or []
    bad = next((p for c in calls if (p := call_problem(c, tools))), None)
    if bad:
        return bad
    if self_ref:
        return None
    ref_calls = (ref or {}).get("tool_calls") or []
    if ref_calls:
        return "no tool call" if not calls else match_calls(calls, ref_calls, tools)
    if calls and ref is not None:
        return "called a tool where the reference answered in text"
    if not calls and needs_call(item.request):
        return "no tool call"
    return None


def _category(reason: str) -> str:
    for key in ("unknown function", "arguments are not", "arguments break", "wrong function", "wrong arguments",
                "wrong count", "no tool call", "called a tool", ERROR):
        if key in reason:
            return key
    return "other"


def _side_tools(verdicts: dict[int, str | None], gens: list[Generation], needs: set[int]) -> dict[str, Any]:
    n = len(verdicts)
    calls = {i for i in verdicts if gens[i].ok and _answer(gens[i]).get("tool_calls")}
    invalid = sum(1 for v in verdicts.values() if v and _category(v) in ("unknown function", "arguments are not",
                                                                           "arguments break"))
    errors = sum(1 for v in verdicts.values() if v == ERROR)
    return {"accuracy": sum(v is None for v in verdicts.values()) / n if n else None,
            "valid_rate": (n - invalid - errors) / n if n else None, "called": len(calls),
            "needed": len(needs), "called_where_needed": len(calls & needs), "errors": errors,
            "failures": dict(Counter(_category(v) for v in verdicts.values() if v and v != ERROR))}


@register_scorer("tool_calls")
def tool_calls(data: EvalData) -> ScoreResult:
    """Tool-call accuracy and validity per model on the items that offer tools (module docstring)."""
    idx = [i for i in data.replay if data.items[i].kind == "tools"
           or (data.items[i].answer or {}).get("tool_calls")]
    if not idx:
        return ScoreResult(metrics={"applies": False})
    refs = {i: _reference(data.items[i], data.baseline[i]) for i in idx}
    needs = {i for i in idx if (refs[i][0] or {}).get("tool_calls") or needs_call(data.items[i].request)}
    out: dict[str, Any] = {"applies": True, "n": len(idx),
                           "reference": dict(Counter(src for _, src in refs.values()))}
    columns: dict[str, dict[int, Any]] = {}
    for side, gens in (("candidate", data.candidate), ("baseline", data.baseline)):
        verdicts = {i: _tool_verdict(data.items[i], gens[i], refs[i][0], side == "baseline" and refs[i][1] == "baseline")
                    for i in idx}
        out[side] = _side_tools(verdicts, gens, needs)
        columns[f"tools_{side}"] = {i: v or "ok" for i, v in verdicts.items()}
    return ScoreResult(metrics=out, columns=columns)


# ---------------------------------------------------------------------------------------------- structured
def _structured_one(item: EvalItem, gen: Generation, ref: Any) -> tuple[str | None, float | None]:
    """(why the answer fails, field agreement with the reference) for one structured item."""
    if not gen.ok:
        return ERROR, None
    value, why = parse_json_answer(_answer(gen).get("content"))
    if why:
        return why, None
    bad = schema_problem(value, response_schema(item.request))
    agree = None if ref is None else field_agreement(value, ref)
    return (f"breaks the schema: {bad}" if bad else None), agree


@register_scorer("structured")
def structured(data: EvalData) -> ScoreResult:
    """JSON validity, schema validity and field agreement per model on the structured items."""
    idx = [i for i in data.replay if data.items[i].kind == "structured"]
    if not idx:
        return ScoreResult(metrics={"applies": False})
    out: dict[str, Any] = {"applies": True, "n": len(idx)}
    columns: dict[str, dict[int, Any]] = {}
    refs: dict[int, tuple[Any, str]] = {}
    for i in idx:
        answer, src = _reference(data.items[i], data.baseline[i])
        value, why = parse_json_answer((answer or {}).get("content"))
        refs[i] = (value, src) if answer is not None and not why else (None, "none")
    out["reference"] = dict(Counter(src for _, src in refs.values()))
    for side, gens in (("candidate", data.candidate), ("baseline", data.baseline)):
        res = {i: _structured_one(data.items[i], gens[i], None if side == "baseline" and refs[i][1] == "baseline"
                                  else refs[i][0]) for i in idx}
        n = len(idx)
        errors = sum(1 for why, _ in res.values() if why == ERROR)
        not_json = sum(1 for why, _ in res.values() if why in ("not valid JSON", "empty answer, no JSON"))
        agree = [a for _, a in res.values() if a is not None]
        out[side] = {"json_valid_rate": (n - errors - not_json) / n, "schema_valid_rate": sum(w is None for w, _ in
                     res.values()) / n, "field_agreement": sum(agree) / len(agree) if agree else None, "errors": errors}
        columns[f"structured_{side}"] = {i: why or "ok" for i, (why, _) in res.items()}
        columns[f"field_agreement_{side}"] = {i: a for i, (_, a) in res.items() if a is not None}
    return ScoreResult(metrics=out, columns=columns)


# ---------------------------------------------------------------------------------------------- gate
def _kind_check(name: str, what: str, c: float, b: float, n: int, min_samples: int, cannot: str | None) -> Check:
    extra = {"n": n, "margin": KIND_MARGIN, "floor": KIND_FLOOR, "baseline": b}
    desc = f"{name} stratum: candidate {what} {c:.0%} vs baseline {b:.0%} on {n} item(s)"
    if cannot:
        return Check(name, "fail", f"{name} stratum: {cannot}", c, b, extra)
    if c < b - KIND_MARGIN - 1e-9:
        return Check(name, "fail", f"{desc}: more than {KIND_MARGIN:.0%} below the baseline", c, b, extra)
    if c < KIND_FLOOR <= b:
        return Check(name, "fail", f"{desc}: below the floor {KIND_FLOOR:.0%}", c, b, extra)
    if n < min_samples:
        return Check(name, "inconclusive", f"{desc}; at least {min_samples} items are needed to tell", c, b, extra)
    return Check(name, "pass", f"{desc}: within {KIND_MARGIN:.0%} of the baseline", c, b, extra)


def kind_checks(metrics: Mapping[str, Any], min_samples: int) -> list[Check]:
    """One gate check per answer kind the evaluation scored (module docstring)."""
    checks = []
    tc = metrics.get("tool_calls") or {}
    if tc.get("applies"):
        c, b = tc["candidate"], tc["baseline"]
        cannot = None
        if c["needed"] and not c["called_where_needed"] and b["called_where_needed"]:
            cannot = (f"the candidate made no tool call on any of the {c['needed']} item(s) that need one "
                      f"(the baseline called on {b['called_where_needed']})")
        check = _kind_check("tools", "tool-call accuracy", c["accuracy"], b["accuracy"], tc["n"], min_samples, cannot)
        check.extra["failures"] = c["failures"]
        checks.append(check)
    st = metrics.get("structured") or {}
    if st.get("applies"):
        c, b = st["candidate"], st["baseline"]
        cannot = None
        if not c["json_valid_rate"] and b["json_valid_rate"]:
            cannot = f"the candidate answered no valid JSON on {st['n']} item(s) (the baseline: {b['json_valid_rate']:.0%})"
        check = _kind_check("structured", "schema-valid JSON", c["schema_valid_rate"], b["schema_valid_rate"], st["n"],
                            min_samples, cannot)
        check.extra["field_agreement"] = c["field_agreement"]
        checks.append(check)
    return checks
