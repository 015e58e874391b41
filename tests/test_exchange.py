"""The canonical request/answer shape (modelsteward/exchange.py) and its storage columns."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelsteward import exchange as ex
from modelsteward.errors import InvalidInput
from modelsteward.storage.logstore import LogStore

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def _chunks() -> list[dict]:
    """OpenAI's stream shape for one answer with two parallel tool calls, arguments in fragments."""
    def c(delta: dict, finish: str | None = None) -> dict:
        return {"id": "x", "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": delta, "finish_reason": finish}]}
    return [
        c({"role": "assistant", "content": None}),
        c({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                           "function": {"name": "get_weather", "arguments": ""}}]}),
        c({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
        c({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}),
        c({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                           "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]}),
        c({}, "tool_calls"),
        {"id": "x", "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7}},
    ]


def test_a_streamed_tool_call_assembles_to_the_unstreamed_answer() -> None:
    asm = ex.StreamAssembler()
    for chunk in _chunks():
        asm.add(chunk)
    whole = ex.answer_from_completion({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
        ]}}]})
    assert asm.answer() == whole
    assert asm.usage == {"prompt_tokens": 11, "completion_tokens": 7}
    assert ex.answer_kind(whole) == "tool_calls"
    assert ex.answer_text(whole) == 'get_weather({"city": "Paris"}) get_weather({"city": "Rome"})'


def test_request_part_keeps_tools_format_and_sampling_and_nothing_for_plain() -> None:
    body = {"model": "uc", "messages": [{"role": "user", "content": "hi"}], "tools": TOOLS, "tool_choice": "auto",
            "temperature": 0.2, "stream": True, "user": "u1"}
    part = ex.request_part(body)
    assert part == {"tools": TOOLS, "tool_choice": "auto", "params": {"temperature": 0.2}}
    assert ex.request_part({"model": "uc", "messages": []}) is None
    assert ex.request_kind(part) == "tools"
    assert ex.request_kind({"tools": TOOLS, "tool_choice": "none"}) == "text"
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert ex.request_kind({"response_format": rf}) == "structured"
    assert ex.request_body([{"role": "user", "content": "q"}], part, {"temperature": 0})["temperature"] == 0


def test_logged_rows_keep_the_whole_exchange_and_old_segments_read_as_before(tmp_path: Path) -> None:
    # a segment written before the request/answer/origin columns existed
    part = tmp_path / "requests" / "date=2026-01-01" / "use_case=uc"
    part.mkdir(parents=True)
    pq.write_table(pa.table({
        "ts": pa.array([1_767_225_600_000_000], pa.timestamp("us")), "request_id": ["old"], "model_id": ["m"],
        "role": ["primary"], "messages": ['[{"role": "user", "content": "hi"}]'], "response": ["hello"],
        "input_tokens": [1], "output_tokens": [1], "latency_ms": [1.0], "cost_usd": [0.0], "status": ["ok"],
        "error": [None], "feedback": [None], "metadata": [None]}), part / "seg-old.parquet")
    with LogStore(tmp_path, flush_seconds=3600, batch_rows=10**9) as store:
        rows = store.query("SELECT request_id, request, answer, origin, response FROM logs")
        assert rows == [{"request_id": "old", "request": None, "answer": None, "origin": None, "response": "hello"}]
        answer = ex.answer_from_completion({"choices": [{"finish_reason": "tool_calls", "message": {
            "content": None, "tool_calls": [{"id": "c1", "function": {"name": "get_weather",
                                                                      "arguments": '{"city": "Oslo"}'}}]}}]})
        store.append({"request_id": "new", "use_case": "uc", "model_id": "m",
                      "messages": [{"role": "user", "content": "weather?"}],
                      "request": ex.request_part({"tools": TOOLS}), "answer": answer})
        store.flush()
        got = {r["request_id"]: ex.row_exchange(r) for r in store.query("SELECT * FROM logs")}
    assert got["old"]["answer"] == {"content": "hello", "finish_reason": None} and got["old"]["request"] == {}
    assert got["new"]["answer"] == {**answer, "content": ""}
    assert got["new"]["request"] == {"tools": TOOLS}


def test_bad_input_gets_one_line_naming_the_problem() -> None:
    with pytest.raises(InvalidInput, match="arguments are not JSON"):
        ex.check_messages([{"role": "user", "content": "x"}, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "1", "function": {"name": "f", "arguments": "{city: Paris"}}]}], "f.jsonl line 3")
    with pytest.raises(InvalidInput, match="tool_call_id"):
        ex.check_messages([{"role": "tool", "content": "18C"}], "w")
    with pytest.raises(InvalidInput, match="needs 'content' or 'tool_calls'"):
        ex.check_messages([{"role": "assistant"}], "w")
    with pytest.raises(InvalidInput, match="not a valid JSON Schema"):
        ex.check_request({"response_format": {"type": "json_schema", "json_schema": {
            "name": "x", "schema": {"type": "objekt"}}}}, "w")
    ok = ex.check_messages([{"role": "assistant", "content": None, "tool_calls": [
        {"id": "1", "function": {"name": "f", "arguments": {"a": 1}}}]}], "w")
    assert ok[0]["tool_calls"][0]["function"]["arguments"] == '{"a":1}'


def test_capabilities_from_traffic() -> None:
    img = [{"role": "user", "content": [{"type": "text", "text": "what is this"},
                                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}]
    assert ex.required_capabilities(img, None) == {"vision"}
    assert ex.required_capabilities([{"role": "user", "content": "x"}], {"tools": TOOLS}) == {"tools"}
    assert ex.required_capabilities([], {"response_format": {"type": "json_object"}}) == {"json"}
