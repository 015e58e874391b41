"""The rules that judge an answer by its kind: tool calls and structured (JSON-schema) outputs.

Pure functions over the canonical shapes of ``modelsteward.exchange``; the scorers (``evals/kinds.py``)
and the rollout analysis (``rollout/analysis.py``) use them.  The tool-call rules follow the
Berkeley Function Calling Leaderboard's AST checker (BFCL, ``ast_checker.py``), adapted from its
"list of possible answers" to one reference call:

- the number of calls must match; parallel calls are matched as an unordered set (each reference
  call takes the first unmatched call to the same function with equal arguments);
- the function name must be the reference's, and every call must name a function the request
  offered (a function the request did not offer is hallucinated);
- the arguments must be a JSON object valid against the function's ``parameters`` schema
  (``jsonschema``: required arguments present, types right, no argument the schema forbids);
- argument values are compared after JSON normalisation: strings without case, whitespace and the
  punctuation ``,./-_*^`` (``"April 1, 2024"`` = ``"april 1 2024"``), numbers by value (``1`` =
  ``1.0``, but ``true`` is not ``1``), lists in order, objects key by key; an argument one side
  leaves out equals the other side's value when that is the schema's ``default``.

Structured outputs: the answer's text must be JSON (as it is, no code fence: the application parses
it), valid against the request's schema (``response_format.json_schema.schema``; any JSON for
``json_object``); field agreement with a reference is the share of the reference's leaf fields
(scalars, found by path) that the answer has equal under the rules above.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from modelsteward.exchange import parse_arguments, request_kind, response_schema
from modelsteward.errors import InvalidInput

__all__ = [
    "normalise_string", "values_equal", "tool_schemas", "call_problem", "match_calls", "parse_json_answer",
    "schema_problem", "field_agreement", "answer_violation", "needs_call",
]

_PUNCT = re.compile(r"[\s,./\-_*^]")


def normalise_string(text: str) -> str:
    """A string as BFCL compares it: no whitespace nor ``,./-_*^``, lower case, ``'`` as ``"``."""
    return _PUNCT.sub("", text).lower().replace("'", '"')


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def values_equal(a: Any, b: Any, schema: Mapping[str, Any] | None = None) -> bool:
    """Two JSON values equal after normalisation (see the module docstring); ``schema`` gives defaults."""
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b or normalise_string(a) == normalise_string(b)
    if isinstance(a, list) and isinstance(b, list):
        items = (schema or {}).get("items") if isinstance(schema, Mapping) else None
        return len(a) == len(b) and all(values_equal(x, y, items) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return _first_difference(a, b, schema) is None
    return type(a) is type(b) and a == b


_MISSING = object()


def _first_difference(a: Mapping[str, Any], b: Mapping[str, Any], schema: Mapping[str, Any] | None) -> str | None:
    """The first key on which two objects differ (an absent key equals the schema's default), else None."""
    props = (schema or {}).get("properties") or {} if isinstance(schema, Mapping) else {}
    for key in list(a) + [k for k in b if k not in a]:
        sub = props.get(key) if isinstance(props, Mapping) else None
        default = sub.get("default", _MISSING) if isinstance(sub, Mapping) else _MISSING
        va, vb = a.get(key, default), b.get(key, default)
        if va is _MISSING or vb is _MISSING or not values_equal(va, vb, sub):
            return key
    return None


def tool_schemas(request: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The functions a request offers: name -> its ``parameters`` schema (``{}`` when it gives none)."""
    out: dict[str, dict[str, Any]] = {}
    for tool in (request or {}).get("tools") or ():
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            out[fn["name"]] = dict(params) if isinstance(params, Mapping) else {}
    return out


@functools.lru_cache(maxsize=512)
def _validator(schema_json: bytes) -> Any:
    from jsonschema import validators

    schema = orjson.loads(schema_json)
    cls = validators.validator_for(schema)
    return cls(schema)


def schema_problem(value: Any, schema: Mapping[str, Any] | None) -> str | None:
    """Why ``value`` breaks ``schema`` (the most relevant ``jsonschema`` error, one line), else None.
    A schema that is itself invalid is reported as such (never a pass)."""
    if not schema:
        return None
    from jsonschema.exceptions import SchemaError, best_match

    try:
        validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
        err = best_match(validator.iter_errors(value))
    except SchemaError as exc:
        return f"the schema itself is invalid: {exc.message}"
    if err is None:
        return None
    where = "/".join(str(p) for p in err.absolute_path)
    return (f"{where}: " if where else "") + err.message[:160]


def call_problem(call: Mapping[str, Any], tools: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why one tool call is invalid for the request (unknown function, arguments not a JSON object,
    arguments breaking the function's schema), else None."""
    name = (call.get("function") or {}).get("name")
    if not isinstance(name, str) or name not in tools:
        return f"unknown function {name!r}"
    try:
        args = parse_arguments(call)
    except InvalidInput:
        return f"{name}: arguments are not a JSON object"
    bad = schema_problem(args, tools[name])
    return f"{name}: arguments break its schema ({bad})" if bad else None


def _args(call: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        return parse_arguments(call)
    except InvalidInput:
        return None


def _name(call: Mapping[str, Any]) -> str:
    return str((call.get("function") or {}).get("name"))


def match_calls(calls: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]],
                tools: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why ``calls`` do not match the ``reference`` calls (count, function, arguments), else None.
    Parallel calls match as an unordered set."""
    if len(calls) != len(reference):
        return f"wrong count: {len(calls)} call(s), expected {len(reference)}"
    free = list(range(len(calls)))
    for ref in reference:
        name, ref_args = _name(ref), _args(ref) or {}
        same_name = [i for i in free if _name(calls[i]) == name]
        if not same_name:
            got = ", ".join(sorted({_name(calls[i]) for i in free}))
            return f"wrong function: called {got}, expected {name}"
        schema = tools.get(name)
        hit = next((i for i in same_name if (a := _args(calls[i])) is not None
                    and _first_difference(a, ref_args, schema) is None), None)
        if hit is None:
            args = _args(calls[same_name[0]])
            key = "arguments" if args is None else _first_difference(args, ref_args, schema)
            return f"wrong arguments: {name}.{key} differs from the reference"
        free.remove(hit)
    return None


def needs_call(request: Mapping[str, Any] | None) -> bool:
    """The request forces a tool call (``tool_choice`` ``required`` or a named function)."""
    choice = (request or {}).get("tool_choice")
    return choice == "required" or isinstance(choice, Mapping)


def parse_json_answer(text: str | None) -> tuple[Any, str | None]:
    """(value, None) when the text is one JSON value as it is; (None, why) otherwise."""
    if text is None or not text.strip():
        return None, "empty answer, no JSON"
    try:
        return orjson.loads(text), None
    except orjson.JSONDecodeError:
        return None, "not valid JSON"


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(value, list) and value:
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*path, i))]
    return [(path, value)]


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        if isinstance(value, dict) and isinstance(step, str) and step in value:
            value = value[step]
        elif isinstance(value, list) and isinstance(step, int) and step < len(value):
            value = value[step]
        else:
            return _MISSING
    return value


def field_agreement(value: Any, reference: Any) -> float:
    """Share of the reference's leaf fields that ``value`` has, equal (0..1)."""
    leaves = _leaves(reference)
    same = sum(1 for path, ref in leaves if (v := _at(value, path)) is not _MISSING and values_equal(v, ref))
    return same / len(leaves)


def answer_violation(request: Mapping[str, Any] | None, answer: Mapping[str, Any]) -> str | None:
    """What in a logged answer breaks its own request, else None: a tool call to a function the
    request did not offer or with arguments breaking its schema; a structured answer that is not
    JSON or breaks the response schema.  A text answer to a tools request breaks nothing."""
    kind = request_kind(request)
    if kind == "structured":
        value, why = parse_json_answer(answer.get("content"))
        return why or schema_problem(value, response_schema(request))
    if answer.get("tool_calls"):
        tools = tool_schemas(request)
        return next((p for c in answer["tool_calls"] if (p := call_problem(c, tools))), None)
    return None
