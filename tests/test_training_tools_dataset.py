"""Datasets with tools: logged tool calls, tool turns and structured answers become OpenAI fine-tuning rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelsteward import exchange
from modelsteward.errors import InvalidInput
from modelsteward.training.dataset import DatasetSpec, build_from_connection, load_initial_data
from modelsteward.training.pii import redact_json
from training_helpers import SYSTEM, log_row, story_rows

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city; results go to ops@weather.example",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "email": {"type": "string"}},
                   "required": ["city"]}}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": {
    "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}}}


def _sdk_answer(message: dict[str, Any], finish: str) -> exchange.Answer:
    """An answer as the official ``openai`` SDK parses it (``ChatCompletion``), read by ``exchange``."""
    from openai.types.chat import ChatCompletion

    done = ChatCompletion.model_validate({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", **message}}]})
    return exchange.answer_from_completion(done.model_dump())


def _tool_rows() -> list[dict[str, Any]]:
    call = {"id": "call_a", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Oslo", "email": "kim@corp.example"})}}
    ask = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Weather in Oslo? I am kim@corp.example"}]
    return [
        # 1. the answer is a tool call (plain text empty)
        log_row("t-call", "x", None, request={"tools": [WEATHER], "tool_choice": "auto", "parallel_tool_calls": False},
                answer=_sdk_answer({"content": None, "tool_calls": [call]}, "tool_calls"), messages=ask),
        # 2. the history holds the client's tool call and its result; the answer is text
        log_row("t-after", "x", None, request={"tools": [WEATHER]},
                answer=_sdk_answer({"content": "It is 4 degrees in Oslo."}, "stop"),
                messages=ask + [{"role": "assistant", "content": None, "tool_calls": [call]},
                                {"role": "tool", "tool_call_id": "call_a", "content": "4C, call +44 20 7946 0958"}]),
        # 3. a json_schema answer
        log_row("t-json", "Is the sky blue? Answer as JSON.", '{"ok": true}', request={"response_format": SCHEMA}),
        # 4. an image part: the trainer fine-tunes text-only models
        log_row("t-image", "x", "A cat.", messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}]),
        # 5. an answer whose arguments are not JSON: never a target
        log_row("t-broken", "x", None, request={"tools": [WEATHER]}, answer={"content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": "{city: Oslo"}}]}),
        # 6. imported from another system
        log_row("t-imported", "Tell me a joke about ducks and kettles.", "Quack goes the kettle.", origin="import:otel"),
        # 7. text content parts only: flattened to their text
        log_row("t-parts", "x", "Parts answered.", messages=[{"role": "user", "content": [
            {"type": "text", "text": "First part"}, {"type": "text", "text": "second part."}]}]),
    ]


def _build(steward, tmp_path: Path, **spec: Any):  # type: ignore[no-untyped-def]
    steward.registry.add_use_case("story", description="story game")
    steward.logs.append_many(story_rows(6) + _tool_rows())
    steward.logs.flush()
    con = steward.logs.reader.connect(lock_down=False)
    card = build_from_connection(con, DatasetSpec(use_case="story", min_rows=1, validation_fraction=0.0, **spec),
                                 tmp_path / "ds")
    lines = Path(card.train_path).read_text().splitlines()
    return card, [json.loads(line) for line in lines], "\n".join(lines)


def _by(rows: list[dict[str, Any]], needle: str) -> dict[str, Any]:
    return next(r for r in rows if needle in json.dumps(r))


def test_tool_rows_in_openai_fine_tuning_format(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    card, rows, raw = _build(steward, tmp_path)
    c = card.counts
    assert (c["non_text_content"], c["bad_tool_call"], c["imported"], c["malformed"]) == (1, 1, 1, 0)
    assert card.train_rows == 6 + 4
    for r in rows:  # every row is what the trainer (and OpenAI's fine-tuning API) accepts
        exchange.check_messages(r["messages"], "row")
        exchange.check_request({k: v for k, v in r.items() if k != "messages"}, "row")
        assert set(r) <= {"messages", "tools", "parallel_tool_calls"}

    called = next(r for r in rows if r["messages"][-1].get("tool_calls"))
    assert called["tools"][0]["function"]["name"] == "get_weather" and called["parallel_tool_calls"] is False
    last = called["messages"][-1]
    assert last["content"] is None and "weight" not in last
    assert last["tool_calls"][0]["function"]["name"] == "get_weather" and last["tool_calls"][0]["id"] == "call_a"
    assert json.loads(last["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo", "email": "[EMAIL]"}

    after = _by(rows, "It is 4 degrees")
    assert [m["role"] for m in after["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    history_call, result = after["messages"][2], after["messages"][3]
    assert history_call["weight"] == 0 and history_call["tool_calls"][0]["id"] == "call_a"
    assert result == {"role": "tool", "content": "4C, call [PHONE]", "tool_call_id": "call_a"}
    assert "parallel_tool_calls" not in after and "tool_call_id" not in after["messages"][1]

    as_json = _by(rows, "Is the sky blue")
    assert as_json == {"messages": [{"role": "system", "content": SYSTEM},
                                    {"role": "user", "content": "Is the sky blue? Answer as JSON."},
                                    {"role": "assistant", "content": '{"ok": true}'}]}
    assert _by(rows, "Parts answered")["messages"][0] == {"role": "user", "content": "First part second part."}
    # redaction reached tool arguments, tool results and tool definitions
    assert "kim@corp.example" not in raw and "7946" not in raw and "ops@weather.example" not in raw
    assert called["tools"][0]["function"]["description"] == "Weather in a city; results go to [EMAIL]"
    assert c["redacted_rows"] == 2
    assert "Quack" not in raw and "data:image" not in raw and "{city: Oslo" not in raw


def test_imported_rows_only_when_asked(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    card, rows, raw = _build(steward, tmp_path, include_imported=True)
    assert card.counts["imported"] == 0 and "Quack goes the kettle." in raw


def test_redact_json_keeps_json() -> None:
    args = json.dumps({"password": "hunter2hunter2", "to": "bob@corp.example", "n": 3})
    out = json.loads(redact_json(args))
    assert out == {"password": "[PASSWORD]", "to": "[EMAIL]", "n": 3}
    assert redact_json("not json bob@corp.example") == "not json [EMAIL]"


def test_initial_data_with_tools(steward, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}
    good = tmp_path / "init.jsonl"
    good.write_text(json.dumps({"tools": [WEATHER], "parallel_tool_calls": True, "messages": [
        {"role": "user", "content": "Weather in Rome?"}, {"role": "assistant", "tool_calls": [call]}]}) + "\n")
    init = load_initial_data(good)
    assert init[0]["calls"] == [{"id": "c1", "name": "get_weather", "arguments": '{"city": "Rome"}'}]
    steward.registry.add_use_case("story", description="story game")
    steward.logs.append_many(story_rows(3))
    steward.logs.flush()
    con = steward.logs.reader.connect(lock_down=False)
    card = build_from_connection(con, DatasetSpec(use_case="story", min_rows=1, validation_fraction=0.0),
                                 tmp_path / "o", initial_rows=init)
    rows = [json.loads(x) for x in Path(card.train_path).read_text().splitlines()]
    row = next(r for r in rows if "tools" in r)
    assert row["parallel_tool_calls"] is True and row["messages"][-1]["tool_calls"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize(("row", "error"), [
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}, "arguments are not JSON"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]},
                   {"role": "assistant", "content": "a cat"}]}, "image_url part; fine-tuning here trains text-only"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "r"},
                   {"role": "assistant", "content": "y"}]}, "needs 'tool_call_id'"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 12}}}],
      "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}, "not a valid JSON Schema"),
])
def test_bad_initial_rows_one_line_error(tmp_path: Path, row: dict[str, Any], error: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(row) + "\n")
    with pytest.raises(InvalidInput) as err:
        load_initial_data(bad)
    assert error in err.value.message and f"{bad}:1" in err.value.message and "\n" not in err.value.message
