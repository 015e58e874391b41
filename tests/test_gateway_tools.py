"""The official ``openai`` SDK through the gateway (uvicorn, real HTTP) with tool calls (plain, streamed,
parallel), ``json_schema`` answers and tool-turn histories: the SDK sees a correct answer and the
logged row holds the whole request and answer (read back with ``exchange.row_exchange``).  Shadows
get the same body; failed attempts log the request too.  Upstream: the project's fake
(``fakes.upstream``, tool-calling answers from ``fakes.answers``).

Before the gateway logged the whole exchange, a tool-call answer was logged with ``response`` NULL
(plain) or ``""`` (streamed) and no ``tools`` / ``tool_choice`` / ``response_format`` at all."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
from pydantic import BaseModel

from gateway_helpers import GatewayThread, env_for, register_upstream, set_routing
from modelsteward.exchange import row_exchange
from modelsteward.fakes.upstream import InstantUpstream

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]},
                                                    "days": {"type": "integer"}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}
TOOLS = [WEATHER, TIME]


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture
def upstream():
    with InstantUpstream(record=True) as up:
        yield up


@pytest.fixture
def gateway(steward, upstream):
    mid = register_upstream(steward, "tools", upstream.url, price_in="1", price_out="2")
    steward.registry.add_use_case("agent", model=mid)
    with GatewayThread(steward) as gw:
        yield gw


def _client(gw):
    import openai

    return openai.OpenAI(base_url=gw.url, api_key="loopback", max_retries=0)


def _logged(steward, rid):
    rows = steward.logs.query("SELECT * FROM logs WHERE request_id = ?", [rid])
    assert len(rows) == 1, rows
    return rows[0], row_exchange(rows[0])


def _calls(tool_calls):
    return [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in tool_calls]


def test_parallel_tool_calls_plain_are_logged_whole(steward, gateway):
    msgs = [{"role": "system", "content": "You are a helper."},
            {"role": "user", "content": 'get_weather city="New York" and get_time tz=Europe/Paris'}]
    r = _client(gateway).chat.completions.create(model="agent", messages=msgs, tools=TOOLS, tool_choice="auto",
                                                 parallel_tool_calls=True, temperature=0.2, max_tokens=50)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    got = [(c.function.name, orjson.loads(c.function.arguments)) for c in choice.message.tool_calls]
    assert got == [("get_weather", {"city": "New York", "unit": "c"}), ("get_time", {"tz": "Europe/Paris"})]
    row, ex = _logged(steward, r.id)
    assert row["response"] == "" and row["status"] == "ok"  # was NULL: the tool calls were lost
    assert ex["messages"] == msgs
    assert ex["request"] == {"tools": TOOLS, "tool_choice": "auto", "parallel_tool_calls": True,
                             "params": {"temperature": 0.2, "max_tokens": 50}}
    assert ex["answer"]["tool_calls"] == _calls(choice.message.tool_calls)
    assert ex["answer"]["finish_reason"] == "tool_calls"


def test_streamed_tool_calls_are_assembled_into_the_log(steward, upstream, gateway):
    client = _client(gateway)
    msgs = [{"role": "user", "content": "get_weather city=Oslo and get_time tz: UTC"}]
    with client.chat.completions.stream(model="agent", messages=msgs, tools=TOOLS, tool_choice="required") as s:
        events = list(s)
        final = s.get_final_completion()
    fragments = [e for e in events if e.type == "tool_calls.function.arguments.delta"]
    assert len(fragments) > 4  # the arguments really came in pieces
    calls = final.choices[0].message.tool_calls
    assert [(c.function.name, orjson.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Oslo", "unit": "c"}), ("get_time", {"tz": "UTC"})]
    row, ex = _logged(steward, final.id)
    assert row["response"] == ""  # streamed: was "" with nothing else kept
    assert ex["answer"]["tool_calls"] == _calls(calls)
    assert ex["answer"]["finish_reason"] == final.choices[0].finish_reason == "tool_calls"
    assert ex["request"]["tools"] == TOOLS and ex["request"]["tool_choice"] == "required"
    assert orjson.loads(row["metadata"])["stream"] is True
    # the upstream was asked exactly what the client asked (plus the stream's usage)
    (sent,) = [b for b in upstream.bodies if b["messages"] == msgs]
    assert sent["tools"] == TOOLS and sent["tool_choice"] == "required" and sent["stream"] is True


def test_json_schema_answer_parses_and_is_logged(steward, gateway):
    client = _client(gateway)
    msgs = [{"role": "user", "content": "Extract: name: Ada, age 36"}]
    parsed = client.chat.completions.parse(model="agent", messages=msgs, response_format=Person)
    person = parsed.choices[0].message.parsed
    assert person == Person(name="Ada", age=36)
    row, ex = _logged(steward, parsed.id)
    assert orjson.loads(row["response"]) == {"name": "Ada", "age": 36}
    rf = ex["request"]["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["name"] == "Person"
    assert rf["json_schema"]["schema"]["required"] == ["name", "age"]
    assert ex["answer"]["finish_reason"] == "stop"
    # streamed json_schema: the same JSON, assembled
    stream = client.chat.completions.create(model="agent", messages=msgs, stream=True,
                                            response_format={"type": "json_schema", "json_schema": {
                                                "name": "Person", "schema": Person.model_json_schema()}})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    row, ex = _logged(steward, chunks[0].id)
    assert row["response"] == text and orjson.loads(text) == {"name": "Ada", "age": 36}
    assert ex["request"]["response_format"]["json_schema"]["schema"] == Person.model_json_schema()


def test_tool_turn_history_is_logged_as_sent(steward, gateway):
    msgs = [{"role": "user", "content": "weather in Rome?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome","unit":"c"}'}}]},
            {"role": "tool", "tool_call_id": "call_9", "content": "21 C and sunny"}]
    r = _client(gateway).chat.completions.create(
        model="agent", messages=msgs, tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert r.choices[0].message.content == "Tool results: 21 C and sunny"
    row, ex = _logged(steward, r.id)
    assert ex["messages"] == msgs and row["response"] == "Tool results: 21 C and sunny"
    assert ex["request"]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert "tool_calls" not in ex["answer"] and ex["answer"]["finish_reason"] == "stop"


def test_logs_query_cli_returns_the_whole_exchange(steward, upstream):
    mid = register_upstream(steward, "tools", upstream.url)
    steward.registry.add_use_case("agent", model=mid)
    with GatewayThread(steward) as gw:
        r = _client(gw).chat.completions.create(model="agent", messages=[{"role": "user", "content": "get_time tz=UTC"}],
                                                tools=[TIME])
    steward.logs.flush()
    out = subprocess.run([sys.executable, "-m", "modelsteward", "logs", "query", "--json",
                          f"SELECT * FROM logs WHERE request_id = '{r.id}'"],
                         env=env_for(steward.settings), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (row,) = orjson.loads(out.stdout)
    ex = row_exchange(row)
    assert ex["request"]["tools"] == [TIME]
    assert ex["answer"]["tool_calls"] == _calls(r.choices[0].message.tool_calls)
    assert ex["answer"]["tool_calls"][0]["function"] == {"name": "get_time", "arguments": '{"tz":"UTC"}'}


def test_shadow_gets_the_same_body_and_logs_its_tool_calls(steward, upstream):
    with InstantUpstream(record=True) as shadow_up:
        main = register_upstream(steward, "main", upstream.url)
        shadow = register_upstream(steward, "wrong-tools", shadow_up.url)
        steward.registry.add_use_case("agent", model=main)
        set_routing(steward, "agent", [{"model_id": main, "weight": 100, "role": "primary"},
                                       {"model_id": shadow, "weight": 100, "role": "shadow"}])
        msgs = [{"role": "user", "content": "get_weather city=Lima"}]
        with GatewayThread(steward) as gw:
            client = _client(gw)
            r = client.chat.completions.create(model="agent", messages=msgs, tools=TOOLS, tool_choice="auto",
                                               response_format=None, seed=7)
            with client.chat.completions.stream(model="agent", messages=msgs, tools=TOOLS) as s:
                streamed = s.get_final_completion()
    assert [b["model"] for b in shadow_up.bodies] == ["wrong-tools", "wrong-tools"]
    for b in shadow_up.bodies:  # the shadow was asked what the client asked
        assert b["messages"] == msgs and b["tools"] == TOOLS
    assert shadow_up.bodies[0]["tool_choice"] == "auto" and shadow_up.bodies[0]["seed"] == 7
    shadows = steward.logs.query("SELECT * FROM logs WHERE role = 'shadow' ORDER BY request_id")
    assert sorted(x["request_id"] for x in shadows) == sorted([f"{r.id}-s1", f"{streamed.id}-s1"])
    for x in shadows:
        ex = row_exchange(x)
        assert ex["request"]["tools"] == TOOLS and ex["messages"] == msgs
        # the wrong caller (fakes.answers): another function, arguments that break the schema
        assert ex["answer"]["tool_calls"][0]["function"] == {"name": "get_time", "arguments": '{"unexpected":1}'}
        assert ex["answer"]["finish_reason"] == "tool_calls"
    _, primary = _logged(steward, r.id)
    assert primary["answer"]["tool_calls"][0]["function"]["name"] == "get_weather"


def test_failed_attempts_log_the_request(steward, upstream):
    with InstantUpstream(error_rate=1.0) as broken:
        bad = register_upstream(steward, "bad", broken.url)
        good = register_upstream(steward, "good", upstream.url)
        steward.registry.add_use_case("agent", model=bad, fallback=[good])
        with GatewayThread(steward) as gw:
            r = _client(gw).chat.completions.create(
                model="agent", messages=[{"role": "user", "content": "get_time tz=UTC"}], tools=[TIME])
    failed = steward.logs.query("SELECT * FROM logs WHERE status = 'error'")
    assert failed and all(x["request_id"].startswith(f"{r.id}-a") for x in failed)
    for x in failed:
        ex = row_exchange(x)
        assert ex["request"] == {"tools": [TIME]} and x["response"] is None and x["answer"] is None
    row, ex = _logged(steward, r.id)
    assert row["role"] == "fallback" and ex["answer"]["tool_calls"][0]["function"]["name"] == "get_time"


@pytest.mark.slow
def test_llm_katan_upstream_plain_stream_and_tools(steward, tmp_path):
    """A second upstream we did not write: llm-katan's echo backend (no model download).  It calls
    tools itself and answers a *stream* request with tools as one whole JSON completion (a degenerate
    upstream): the gateway streams it to the SDK and logs the same tool calls."""
    from gateway_helpers import Katan

    katan = Katan("echo-model", tmp=tmp_path)
    try:
        mid = register_upstream(steward, "katan", katan.url)
        steward.registry.add_use_case("agent", model=mid)
        with GatewayThread(steward) as gw:
            client = _client(gw)
            msgs = [{"role": "user", "content": "Once upon a [time]"}]
            plain = client.chat.completions.create(model="agent", messages=msgs, max_tokens=20, temperature=0.3)
            chunks = list(client.chat.completions.create(model="agent", messages=msgs, stream=True, seed=3))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            tool = client.chat.completions.create(model="agent", messages=msgs, tools=[TIME])
            with client.chat.completions.stream(model="agent", messages=msgs, tools=[TIME]) as s:
                streamed = s.get_final_completion()
    finally:
        katan.stop()
    row, ex = _logged(steward, plain.id)
    assert row["response"] == plain.choices[0].message.content and "User: Once upon a [time]" in row["response"]
    assert ex["request"] == {"params": {"max_tokens": 20, "temperature": 0.3}}
    assert ex["answer"]["finish_reason"] == plain.choices[0].finish_reason == "stop"
    row, ex = _logged(steward, chunks[0].id)
    assert row["response"] == text and text.endswith("User: Once upon a [time]")
    assert ex["request"] == {"params": {"seed": 3}} and ex["answer"]["finish_reason"] == "stop"
    for r in (tool, streamed):
        calls = r.choices[0].message.tool_calls
        assert [c.function.name for c in calls] == ["get_time"] and orjson.loads(calls[0].function.arguments)
        row, ex = _logged(steward, r.id)
        assert row["response"] == "" and ex["answer"]["tool_calls"] == _calls(calls)
        assert ex["answer"]["finish_reason"] == "tool_calls" and ex["request"] == {"tools": [TIME]}
