"""Streams through the gateway against a local upstream speaking real SSE over HTTP: a long healthy
stream is not cut by a total timeout (nor counted as a failure), an idle one still times out, and an
SSE line over the client's line limit is a clear upstream error rather than an escaped exception."""

from __future__ import annotations

import asyncio
import threading
import time

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from modelsteward.gateway import create_gateway_app
from gateway_helpers import asgi_client, chat_body, fast_options, free_port, register_upstream

pytestmark = pytest.mark.slow  # starts a server


def _chunk(text: str) -> bytes:
    return b"data: " + orjson.dumps({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "sse",
                                     "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}) + b"\n\n"


async def _completions(request: Request) -> StreamingResponse:
    body = await request.json()
    what = body["messages"][-1]["content"]

    async def events():  # type: ignore[no-untyped-def]
        if what == "huge-first":
            yield b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"content": "x" * (3 << 20)}}]}) + b"\n\n"
            return
        yield _chunk("start ")
        if what == "slow":
            for i in range(8):
                await asyncio.sleep(0.3)
                yield _chunk(f"{i} ")
        elif what == "stall":
            await asyncio.sleep(6)
        elif what == "huge-later":
            yield b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"content": "x" * (3 << 20)}}]}) + b"\n\n"
        yield b"data: " + orjson.dumps({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 9}}) + b"\n\n"
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def sse_upstream():
    import uvicorn

    port = free_port()
    app = Starlette(routes=[Route("/v1/chat/completions", _completions, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    t.join(10)


@pytest.fixture
async def gw(steward, sse_upstream):
    mid = register_upstream(steward, "sse", sse_upstream, timeout_s=1.0)  # 1 s: the idle limit
    steward.registry.add_use_case("story", model=mid)
    app = create_gateway_app(steward, options=fast_options(retries=0, cooldown_after=1))
    await app.state.gateway.start()
    with asgi_client(app) as client:
        yield client, app.state.gateway, mid
    await app.state.gateway.stop()


def _events(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


async def test_long_healthy_stream_is_not_cut_by_a_total_timeout(gw, steward):
    client, state, mid = gw
    t0 = time.monotonic()
    r = await client.post("/v1/chat/completions", json=chat_body("story", "slow", stream=True), timeout=30)
    took = time.monotonic() - t0
    events = _events(r.text)
    assert took > 2.0 and events[-1] == "[DONE]", r.text[:500]
    text = "".join(orjson.loads(e)["choices"][0]["delta"]["content"] for e in events[:-1] if orjson.loads(e).get("choices"))
    assert text == "start 0 1 2 3 4 5 6 7 "
    assert not state.cooldowns.cooling(mid)
    (row,) = steward.logs.query("SELECT status, error FROM logs")
    assert row == {"status": "ok", "error": None}


async def test_idle_stream_still_times_out(gw, steward):
    client, state, mid = gw
    t0 = time.monotonic()
    r = await client.post("/v1/chat/completions", json=chat_body("story", "stall", stream=True), timeout=30)
    took = time.monotonic() - t0
    events = _events(r.text)
    assert took < 4.0
    err = orjson.loads(events[-2] if events[-1] == "[DONE]" else events[-1])["error"]
    assert "sent nothing for 1s" in err["message"], err
    (row,) = steward.logs.query("SELECT status, error FROM logs")
    assert row["status"] == "error" and "sent nothing for 1s" in row["error"]


@pytest.mark.parametrize("where", ["huge-first", "huge-later"])
async def test_sse_line_over_the_limit_is_a_clear_upstream_error(gw, steward, where):
    client, state, mid = gw
    r = await client.post("/v1/chat/completions", json=chat_body("story", where, stream=True), timeout=30)
    if where == "huge-first":  # before the first chunk: the attempt fails, the client gets a 502
        assert r.status_code == 502, r.text[:300]
        message = r.json()["error"]["message"]
    else:  # mid-stream: an error event, then the stream ends
        assert r.status_code == 200
        message = next(orjson.loads(e)["error"]["message"] for e in _events(r.text) if '"error"' in e[:12])
    assert "SSE line longer than" in message, message
    rows = steward.logs.query("SELECT status, error FROM logs")
    assert rows and all(x["status"] == "error" and "SSE line longer than" in x["error"] for x in rows)
