"""Providers are cached once (issue 27): ``providers.factory`` owns the provider objects; the
gateway's per-model memo only remembers which provider that cache gave it for a registry row, and
is void once the cache is cleared (``clear_provider_cache``, "after re-registering models"), so the
gateway never keeps calling a provider the rest of the process has dropped."""

from __future__ import annotations

import asyncio

from modelsteward.gateway.core import GatewayState
from modelsteward.gateway.routing import model_info
from modelsteward.providers import clear_provider_cache, get_provider


def test_the_gateway_serves_the_provider_of_the_one_cache(steward, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("STEWARD_OPENAI_BASE_URL", raising=False)
    m = steward.registry.register_model("openai", "gpt-4o-mini")
    info = model_info(m)
    gw = GatewayState(steward)
    first = asyncio.run(gw.provider(info))
    assert first is get_provider(m, steward.settings)
    assert asyncio.run(gw.provider(info)) is first  # the memo answers without asking again
    clear_provider_cache()
    fresh = get_provider(m, steward.settings)
    assert fresh is not first
    assert asyncio.run(gw.provider(info)) is fresh  # not the provider the cache dropped
