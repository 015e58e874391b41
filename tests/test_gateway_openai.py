"""The official openai client (sync, async, streaming) against a running gateway, with llm-katan's
echo backend and with the local SmolLM2 provider as upstreams; answers and logged rows checked."""

from __future__ import annotations

import orjson
import pytest

from gateway_helpers import GatewayThread, Katan, register_upstream

pytestmark = pytest.mark.slow


@pytest.fixture
def katan(tmp_path):
    k = Katan("echo-model", tmp=tmp_path)
    yield k
    k.stop()


def _rows(steward, sql="SELECT * FROM logs ORDER BY ts"):
    return steward.logs.query(sql)


def test_openai_client_sync_async_stream_through_llm_katan(steward, katan):
    import asyncio

    import openai

    mid = register_upstream(steward, "katan", katan.url, price_in="0.5", price_out="1.5")
    steward.registry.add_use_case("story", model=mid)
    with GatewayThread(steward) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key="unused-on-loopback", max_retries=0)
        r = client.chat.completions.create(model="story", messages=[{"role": "user", "content": "Once upon a time"}],
                                           max_tokens=20)
        assert r.choices[0].message.content.endswith("User: Once upon a time")
        assert r.model == mid and r.usage.completion_tokens > 0

        async def run_async():
            ac = openai.AsyncOpenAI(base_url=gw.url, api_key="x", max_retries=0)
            try:
                return await ac.chat.completions.create(
                    model="story", messages=[{"role": "user", "content": "async hello"}], user="u1")
            finally:
                await ac.close()

        ra = asyncio.run(run_async())
        assert "async hello" in ra.choices[0].message.content

        stream = client.chat.completions.create(
            model="story", messages=[{"role": "user", "content": "stream me"}], stream=True,
            stream_options={"include_usage": True})
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.endswith("User: stream me")
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0

        with pytest.raises(openai.NotFoundError) as nf:
            client.chat.completions.create(model="stroy", messages=[{"role": "user", "content": "x"}])
        assert "story" in str(nf.value)
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="story", messages=[{"role": "wizard", "content": "x"}])
        models = client.models.list()
        assert [m.id for m in models.data] == ["story"]
    rows = _rows(steward)
    assert len(rows) == 3 and all(x["status"] == "ok" and x["model_id"] == mid for x in rows)
    by_id = {x["request_id"]: x for x in rows}
    assert by_id[r.id]["response"] == r.choices[0].message.content
    assert by_id[r.id]["input_tokens"] == r.usage.prompt_tokens
    assert by_id[r.id]["cost_usd"] == pytest.approx((r.usage.prompt_tokens * 0.5 + r.usage.completion_tokens * 1.5) / 1e6)
    assert orjson.loads(by_id[ra.id]["metadata"])["user"] == "u1"
    assert by_id[chunks[0].id]["response"] == text


def test_openai_client_through_local_smollm2(steward):
    import openai

    from modelsteward.providers.local_assets import BASE_MODEL_NAME

    m = steward.registry.register_model("local", BASE_MODEL_NAME)
    steward.registry.add_use_case("local-chat", model=m.id)
    with GatewayThread(steward) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key="x", max_retries=0, timeout=120)
        r = client.chat.completions.create(
            model="local-chat", messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=8, temperature=0)
        assert r.choices[0].message.content.strip()
        assert 0 < r.usage.completion_tokens <= 8 and r.usage.prompt_tokens > 5
        stream = client.chat.completions.create(
            model="local-chat", messages=[{"role": "user", "content": "Say hello"}], max_tokens=6, stream=True,
            stream_options={"include_usage": True})
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.strip() and 0 < chunks[-1].usage.completion_tokens <= 6
    rows = {x["request_id"]: x for x in _rows(steward)}
    assert rows[r.id]["response"] == r.choices[0].message.content and rows[r.id]["model_id"] == m.id
    assert rows[chunks[0].id]["response"] == text
