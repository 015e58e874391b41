"""Providers: the public surface, base-URL and key resolution, dispatch and caching, the HTTP
provider against the instant fake upstream (answers, streams, errors, timeouts), and keys CLI."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
import typer
from typer.testing import CliRunner

import modelsteward.gateway as gateway_pkg
import modelsteward.providers as providers
from modelsteward.errors import ConfigError, Conflict, NotFound, UpstreamError
from modelsteward.fakes.upstream import InstantUpstream
from modelsteward.providers import (
    ChatResult,
    LocalProvider,
    OpenAIHTTPProvider,
    StreamChunk,
    complete,
    get_provider,
    resolve_api_key,
    resolve_base_url,
)


def test_public_surfaces_are_pinned():
    assert sorted(providers.__all__) == sorted([
        "ChatResult", "StreamChunk", "ChatProvider", "Message", "UpstreamError", "get_provider", "complete",
        "run_sync", "clear_provider_cache", "local_model_paths", "sampling_params", "SamplingArgs", "OpenAIHTTPProvider",
        "LocalProvider", "DEFAULT_BASE_URLS", "API_KEY_ENV", "resolve_base_url", "resolve_api_key",
        "close_sessions",
    ])
    assert sorted(gateway_pkg.__all__) == sorted([
        "create_gateway_app", "gateway_router", "GatewayFastPath", "GatewayState", "GatewayOptions", "Served",
        "GatewayError", "error_body", "error_response", "validate_chat_body", "serve", "create_key", "list_keys",
        "revoke_key", "hash_key", "CreatedKey",
    ])
    for name in providers.__all__ + gateway_pkg.__all__:
        assert hasattr(providers, name) or hasattr(gateway_pkg, name)


def test_base_url_and_key_resolution(monkeypatch):
    monkeypatch.delenv("STEWARD_OPENROUTER_BASE_URL", raising=False)
    assert resolve_base_url("openrouter") == "https://openrouter.ai/api/v1"
    monkeypatch.setenv("STEWARD_OPENROUTER_BASE_URL", "http://proxy.local/v1/")
    assert resolve_base_url("openrouter") == "http://proxy.local/v1"
    assert resolve_base_url("openrouter", "http://explicit:9/v1") == "http://explicit:9/v1"
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:11434")
    monkeypatch.delenv("STEWARD_OLLAMA_BASE_URL", raising=False)
    assert resolve_base_url("ollama") == "http://gpu-box:11434/v1"
    assert resolve_base_url("google").endswith("/v1beta/openai")
    monkeypatch.delenv("STEWARD_CUSTOM_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="STEWARD_CUSTOM_BASE_URL"):
        resolve_base_url("custom")
    monkeypatch.setenv("GEMINI_API_KEY", "g-key")
    monkeypatch.setenv("MY_KEY", "mine")
    assert resolve_api_key("google") == "g-key"
    assert resolve_api_key("custom", {"api_key_env": "MY_KEY"}) == "mine"


def test_get_provider_dispatches_and_caches(steward, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("STEWARD_OPENAI_BASE_URL", raising=False)
    m = steward.registry.register_model("openai", "gpt-4o-mini")
    p = get_provider(m, steward.settings)
    assert isinstance(p, OpenAIHTTPProvider)
    assert p.url == "https://api.openai.com/v1/chat/completions" and p.headers["Authorization"] == "Bearer sk-test"
    assert get_provider(steward.registry.get_model(m.id), steward.settings) is p
    local = steward.registry.register_model("local", "tiny", metadata={"path": "/nowhere/tiny"})
    lp = get_provider(local, steward.settings)
    assert isinstance(lp, LocalProvider) and str(lp.path) == "/nowhere/tiny"
    orphan = steward.registry.register_model("local", "no-weights")
    with pytest.raises(ConfigError, match="no weights"):
        get_provider(orphan, steward.settings)


def test_fine_tuned_row_resolves_to_parent_weights_plus_adapter(steward, tmp_path):
    from modelsteward.providers import local_model_paths

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    steward.registry.register_model("local", "tiny", metadata={"path": str(tmp_path / "tiny")})
    ft = steward.registry.register_model("local", "tiny-ft", kind="fine_tuned", parent_model_id="local:tiny",
                                         adapter_path=str(adapter))
    assert local_model_paths(ft, steward.settings) == (tmp_path / "tiny", adapter)
    full = tmp_path / "full"
    full.mkdir()
    (full / "config.json").write_text("{}")
    ft_full = steward.registry.register_model("local", "tiny-full", kind="fine_tuned", parent_model_id="local:tiny",
                                              adapter_path=str(full))
    assert local_model_paths(ft_full, steward.settings) == (full, None)


@pytest.fixture
def instant():
    with InstantUpstream() as up:
        yield up


async def test_http_provider_chat_and_stream(instant):
    p = OpenAIHTTPProvider("custom:instant", "instant", instant.url)
    r = await p.chat([{"role": "user", "content": "hi"}], max_tokens=5, temperature=0)
    assert isinstance(r, ChatResult)
    assert (r.text, r.input_tokens, r.output_tokens, r.finish_reason, r.model_id) == (
        "Hello from the instant upstream.", 12, 7, "stop", "custom:instant")
    assert r.latency_ms > 0
    chunks = [c async for c in p.stream([{"role": "user", "content": "hi"}])]
    assert all(isinstance(c, StreamChunk) for c in chunks)
    assert "".join(c.text for c in chunks) == "Hello from the instant upstream."
    assert chunks[-1].final and (chunks[-1].input_tokens, chunks[-1].output_tokens) == (12, 7)
    many = await asyncio.gather(*(p.chat([{"role": "user", "content": str(i)}]) for i in range(50)))
    assert len(many) == 50 and instant.requests >= 52


async def test_http_provider_errors_are_upstream_errors():
    with InstantUpstream(error_rate=1.0) as bad:
        p = OpenAIHTTPProvider("custom:bad", "bad", bad.url)
        with pytest.raises(UpstreamError) as e:
            await p.chat([{"role": "user", "content": "hi"}])
        assert e.value.status == 500 and e.value.retryable and "injected failure" in e.value.message
        with pytest.raises(UpstreamError) as e:
            async for _ in p.stream([{"role": "user", "content": "hi"}]):
                pass
        assert e.value.status == 500
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = OpenAIHTTPProvider("custom:closed", "x", f"http://127.0.0.1:{port}/v1")
    with pytest.raises(UpstreamError) as e:
        await closed.chat([{"role": "user", "content": "hi"}])
    assert e.value.status == 502 and e.value.retryable and "unreachable" in e.value.message
    with InstantUpstream(latency_ms=500) as slow:
        p = OpenAIHTTPProvider("custom:slow", "slow", slow.url, timeout_s=0.1)
        with pytest.raises(UpstreamError) as e:
            await p.chat([{"role": "user", "content": "hi"}])
        assert e.value.status == 504 and "timed out" in e.value.message


def test_sync_complete_for_non_async_callers(steward, instant):
    m = steward.registry.register_model("custom", "instant", base_url=instant.url)
    r = complete(m, steward.settings, [{"role": "user", "content": "hi"}], max_tokens=4)
    assert r.text == "Hello from the instant upstream." and r.model_id == "custom:instant"


def _cli() -> typer.Typer:
    from modelsteward.cli import gateway as gateway_cli

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    gateway_cli.register(app)
    return app


def test_keys_create_prints_once_and_stores_only_a_hash(steward):
    steward.registry.add_use_case("chat")
    runner = CliRunner()
    app = _cli()
    res = runner.invoke(app, ["keys", "create", "--name", "story-app", "--use-case", "chat", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["key"].startswith("sk-steward-") and data["use_cases"] == ["chat"]
    from modelsteward.gateway.keys import hash_key, list_keys

    (row,) = list_keys(steward.registry)
    assert row.key_hash == hash_key(data["key"]) and data["key"] not in (row.key_hash, row.prefix)
    again = runner.invoke(app, ["keys", "create", "--name", "story-app"])
    assert again.exit_code != 0 and isinstance(again.exception, Conflict)
    unknown = runner.invoke(app, ["keys", "create", "--name", "x", "--use-case", "chta"])
    assert isinstance(unknown.exception, NotFound) and "chat" in str(unknown.exception)
    listed = runner.invoke(app, ["keys", "list", "--json"])
    assert data["key"] not in listed.stdout and json.loads(listed.stdout)[0]["name"] == "story-app"
    assert runner.invoke(app, ["keys", "revoke", "story-app"]).exit_code == 0
    assert list_keys(steward.registry)[0].revoked
