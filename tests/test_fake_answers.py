"""The fake upstream's built answers (``fakes.answers``): tool calls that satisfy the offered
function's schema (checked with ``jsonschema``), json_schema answers, streamed tool-call fragments
that assemble to the plain answer, the wrong caller, and plain requests left as they were."""

from __future__ import annotations

import jsonschema
import orjson
import pytest

from modelsteward.exchange import StreamAssembler, answer_from_completion
from modelsteward.fakes import answers
from modelsteward.fakes.upstream import RESPONSE, InstantUpstream

ORDER = {"type": "function", "function": {"name": "place_order", "parameters": {
    "type": "object", "required": ["item", "qty", "express", "tags", "address"],
    "properties": {"item": {"type": "string"}, "qty": {"type": "integer", "minimum": 1},
                   "express": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}},
                   "size": {"type": "string", "enum": ["s", "m", "l"]},
                   "address": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}},
    "additionalProperties": False}}}
CANCEL = {"type": "function", "function": {"name": "cancel_order", "parameters": {
    "type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "string"}}}}}


def body(text, **extra):
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def test_tool_call_arguments_satisfy_the_schema():
    ans = answers.answer(body("place_order item=lamp qty 3 city=Paris", tools=[ORDER, CANCEL]))
    assert ans["finish_reason"] == "tool_calls" and ans["content"] is None
    (call,) = ans["tool_calls"]
    args = orjson.loads(call["function"]["arguments"])
    jsonschema.validate(args, ORDER["function"]["parameters"])
    assert args["item"] == "lamp" and args["qty"] == 3 and args["address"] == {"city": "Paris"}


def test_tool_choice_parallel_and_none():
    both = answers.answer(body("place_order item=x and cancel_order order_id=A1", tools=[ORDER, CANCEL]))
    assert [c["function"]["name"] for c in both["tool_calls"]] == ["place_order", "cancel_order"]
    one = answers.answer(body("place_order and cancel_order order_id=A1", tools=[ORDER, CANCEL],
                              parallel_tool_calls=False))
    assert [c["function"]["name"] for c in one["tool_calls"]] == ["place_order"]
    forced = answers.answer(body("place_order please", tools=[ORDER, CANCEL],
                                 tool_choice={"type": "function", "function": {"name": "cancel_order"}}))
    assert [c["function"]["name"] for c in forced["tool_calls"]] == ["cancel_order"]
    off = answers.answer(body("place_order", tools=[ORDER], tool_choice="none"))
    assert "tool_calls" not in off and off["content"] == "You said: place_order"


def test_legacy_functions_are_called_too():
    ans = answers.answer(body("cancel_order order_id=Z9", functions=[CANCEL["function"]]))
    assert ans["tool_calls"][0]["function"] == {"name": "cancel_order", "arguments": '{"order_id":"Z9"}'}


def test_json_schema_answer_and_json_object():
    schema = {"type": "object", "required": ["name", "score"], "properties": {
        "name": {"type": "string"}, "score": {"type": "number"}, "note": {"type": "string"}}}
    ans = answers.answer(body("name: Ada score 9.5", response_format={
        "type": "json_schema", "json_schema": {"name": "s", "schema": schema}}))
    obj = orjson.loads(ans["content"])
    jsonschema.validate(obj, schema)
    assert obj == {"name": "Ada", "score": 9.5}
    assert orjson.loads(answers.answer(body("hi", response_format={"type": "json_object"}))["content"]) == {"answer": "hi"}


def test_wrong_caller_breaks_function_and_schema():
    wrong = answers.answer({**body("place_order item=lamp", tools=[ORDER, CANCEL]), "model": "wrong-tools"})
    (call,) = wrong["tool_calls"]
    assert call["function"]["name"] == "cancel_order"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(orjson.loads(call["function"]["arguments"]), CANCEL["function"]["parameters"])
    alone = answers.answer(body("place_order", tools=[ORDER]), wrong=True)
    assert alone["tool_calls"][0]["function"]["name"] == "not_a_tool"
    schema = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    bad = answers.answer(body("name: Ada", response_format={"type": "json_schema", "json_schema": {"schema": schema}}),
                         wrong=True)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(orjson.loads(bad["content"]), schema)


@pytest.mark.parametrize("extra", [{"tools": [ORDER, CANCEL]}, {"response_format": {"type": "json_object"}}])
def test_stream_fragments_assemble_to_the_plain_answer(extra):
    b = body("place_order item=lamp and cancel_order order_id=A1", **extra)
    asm = StreamAssembler()
    chunks = list(answers.chunks(b))
    for c in chunks:
        asm.add(c)
    assert asm.answer() == answer_from_completion(answers.completion(b))
    if "tools" in extra:  # arguments in several fragments, the id and name only in the first delta of a call
        frags = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
                 if c["choices"] and c["choices"][0]["delta"].get("tool_calls")]
        assert len(frags) > 4 and sum(1 for f in frags if "id" in f) == 2


def test_upstream_keeps_the_fixed_answer_for_plain_requests():
    import httpx

    with InstantUpstream() as up:
        plain = httpx.post(f"{up.url}/chat/completions", json=body('say "tools" please'))
        tools = httpx.post(f"{up.url}/chat/completions", json=body("cancel_order order_id=1", tools=[CANCEL]))
    assert plain.content == RESPONSE
    assert tools.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"order_id":"1"}'
