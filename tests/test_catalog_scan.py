"""Catalog scanners against local servers that speak each API (modelsteward.fakes.catalogs)."""

from __future__ import annotations

import json
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from modelsteward.catalog import SCANNERS, Scanner, register_scanner, run_scan
from modelsteward.catalog.scan import resolve_providers
from modelsteward.errors import InvalidInput
from modelsteward.fakes.catalogs import FakeCatalog
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import CatalogScan

KEY = "test-key"


@pytest.fixture
def catalogs(fixtures_dir: Path) -> Path:
    return fixtures_dir / "catalogs"


@pytest.fixture
def hf_online(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite sets HF_HUB_OFFLINE=1; the hub client may talk to our local fake hub."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def _ov(fake: FakeCatalog, key: str | None = KEY) -> dict[str, dict[str, Any]]:
    kw: dict[str, Any] = {"base_url": fake.scanner_base}
    if fake.kind in ("openai", "anthropic", "google", "huggingface"):
        kw["api_key"] = key
    return {fake.kind: kw}


def _scan(steward, fake: FakeCatalog, key: str | None = KEY, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    return run_scan(steward, fake.kind, overrides=_ov(fake, key), timeout=timeout).source(fake.kind)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------ OpenRouter
def test_openrouter_real_catalogs_report_134_new_and_76_gone(steward, catalogs: Path) -> None:
    with FakeCatalog("openrouter", data=catalogs / "openrouter_models_2026-05.json") as fake:
        first = _scan(steward, fake)
        assert first.status == "ok" and first.first_scan
        assert first.seen == 356 and len(first.new) == 356 and first.gone == [] and first.skipped == 0
        fake.set_data(catalogs / "openrouter_models_2026-08.json")
        second = _scan(steward, fake)
    assert second.status == "ok" and not second.first_scan
    assert second.seen == 414
    assert len(second.new) == 134
    assert len(second.gone) == 76
    old = {m["id"] for m in json.loads((catalogs / "openrouter_models_2026-05.json").read_text())["data"]}
    assert all(mid.removeprefix("openrouter:") not in old for mid in second.new)
    assert second.repriced, "prices changed between the two real files"
    with session_scope(steward.sessions) as s:
        rows = list(s.scalars(select(CatalogScan).order_by(CatalogScan.id)))
        assert [(r.seen, len(r.new), len(r.gone)) for r in rows] == [(356, 356, 0), (414, 134, 76)]
    gone = steward.registry.get_model(second.gone[0])
    assert gone.meta["catalog_gone_since_scan"] == rows[1].id and gone.status == "discovered"
    assert len(steward.registry.list_models(provider="openrouter")) == 356 + 134


def test_openrouter_prices_per_million_unknown_router_price_and_capabilities(steward, catalogs: Path) -> None:
    payload = json.loads((catalogs / "openrouter_models_2026-08.json").read_text())
    raw = {m["id"]: m for m in payload["data"]}
    with FakeCatalog("openrouter", data=payload) as fake:
        rep = _scan(steward, fake)
    assert rep.status == "ok"
    auto = steward.registry.get_model("openrouter:openrouter/auto")
    assert auto.price_in_per_m is None and auto.price_out_per_m is None and auto.meta["price_unknown"] is True
    qwen = steward.registry.get_model("openrouter:qwen/qwen3.8-27b")
    assert qwen.price_in_per_m == Decimal(raw["qwen/qwen3.8-27b"]["pricing"]["prompt"]) * 1_000_000 == Decimal("0.45")
    assert qwen.price_out_per_m == Decimal("3.2")
    assert {"tools", "json", "reasoning", "text", "image_input"} <= set(qwen.capabilities)
    assert qwen.meta["modalities"]["output"] == ["text"] and qwen.context_length == 262144
    free = [m for m in payload["data"] if m["pricing"]["prompt"] == "0" and m["pricing"]["completion"] == "0"]
    assert free and steward.registry.get_model(f"openrouter:{free[0]['id']}").price_in_per_m == 0


def test_openrouter_older_shape_null_context_and_missing_fields_are_skipped(steward) -> None:
    good = {"id": "acme/old-shape", "name": "Old", "context_length": None,
            "architecture": {"modality": "text+image->text"},
            "top_provider": {"context_length": 32768}, "pricing": {"prompt": "0.000001", "completion": "0.000002"},
            "supported_parameters": ["tools"]}
    no_ctx = {**good, "id": "acme/no-context", "top_provider": {}}
    bad = [{"name": "no id", "pricing": {"prompt": "0", "completion": "0"}}, {"id": "acme/no-pricing"},
           {"id": "acme/half-pricing", "pricing": {"prompt": "0.1"}}, "not an object",
           {"id": "acme/bad-price", "pricing": {"prompt": "abc", "completion": "1"}}]
    with FakeCatalog("openrouter", data={"data": [good, no_ctx, *bad]}) as fake:
        rep = _scan(steward, fake)
    assert rep.status == "ok" and rep.seen == 2 and rep.skipped == 5
    assert any("pricing" in e for e in rep.skipped_examples)
    m = steward.registry.get_model("openrouter:acme/old-shape")
    assert m.context_length == 32768 and m.price_in_per_m == 1 and m.price_out_per_m == 2
    assert m.meta["modalities"] == {"input": ["text", "image"], "output": ["text"]}
    assert set(m.capabilities) == {"text", "image_input", "tools"}
    assert steward.registry.get_model("openrouter:acme/no-context").context_length is None


def test_repriced_and_reappearing_models(steward) -> None:
    entry = {"id": "acme/a", "pricing": {"prompt": "0.000001", "completion": "0.000002"}}
    other = {"id": "acme/b", "pricing": {"prompt": "0", "completion": "0"}}
    with FakeCatalog("openrouter", data={"data": [entry, other]}) as fake:
        _scan(steward, fake)
        fake.set_data({"data": [{**entry, "pricing": {"prompt": "0.0000005", "completion": "0.000002"}}]})
        rep = _scan(steward, fake)
        assert rep.repriced == [{"id": "openrouter:acme/a", "in": ["1", "0.5"], "out": ["2", "2"]}]
        assert rep.gone == ["openrouter:acme/b"] and rep.new == []
        fake.set_data({"data": [entry, other]})
        rep = _scan(steward, fake)
    assert rep.new == ["openrouter:acme/b"] and rep.gone == []
    assert "catalog_gone_since_scan" not in steward.registry.get_model("openrouter:acme/b").meta


# ------------------------------------------------------------------------------------ pagination
def test_anthropic_paginates_with_after_id_while_has_more(steward) -> None:
    with FakeCatalog("anthropic", page_size=2) as fake:
        rep = _scan(steward, fake)
        reqs = list(fake.requests)
    assert rep.status == "ok" and rep.seen == 5 and rep.pages == 3
    assert [r["query"].get("after_id") for r in reqs] == [None, "claude-sonnet-4-5-20250929", "claude-3-haiku-20240307"]
    assert all(r["headers"]["x-api-key"] == KEY and r["headers"]["anthropic-version"] for r in reqs)
    sonnet = steward.registry.get_model("anthropic:claude-sonnet-4-5-20250929")
    assert (sonnet.price_in_per_m, sonnet.price_out_per_m) == (Decimal(3), Decimal(15))
    assert "price table 2026-08" in sonnet.meta["price_source"]
    unknown = steward.registry.get_model("anthropic:claude-experimental-1")
    assert unknown.price_in_per_m is None and unknown.meta["price_unknown"] is True


def test_google_paginates_with_next_page_token_and_keeps_generate_content(steward) -> None:
    with FakeCatalog("google", page_size=2) as fake:
        rep = _scan(steward, fake)
        tokens = [r["query"].get("pageToken") for r in fake.requests]
    assert rep.status == "ok" and rep.pages == 3 and tokens == [None, "2", "4"]
    assert rep.seen == 4 and rep.filtered == 1  # text-embedding-004 has no generateContent
    ids = {m.id for m in steward.registry.list_models(provider="google")}
    assert "google:gemini-3.5-flash" in ids and not any("models/" in i for i in ids)
    assert "google:text-embedding-004" not in ids
    flash = steward.registry.get_model("google:gemini-3.5-flash")
    assert flash.context_length == 1048576 and "reasoning" in flash.capabilities


def test_huggingface_follows_absolute_link_next(steward, hf_online: None) -> None:
    with FakeCatalog("huggingface", page_size=2) as fake:
        rep = _scan(steward, fake)
        reqs = list(fake.requests)
    assert rep.status == "ok", rep.error
    assert len(reqs) == 3 and [r["query"].get("cursor") for r in reqs] == [None, "2", "4"]
    assert reqs[0]["query"]["pipeline_tag"] == "text-generation" and reqs[0]["query"]["sort"] == "downloads"
    assert rep.seen == 5
    smol = steward.registry.get_model("huggingface:HuggingFaceTB/SmolLM2-135M-Instruct")
    assert smol.meta["params_b"] == pytest.approx(0.1345, abs=1e-4) and smol.meta["licence"] == "apache-2.0"
    assert smol.kind == "self_hosted" and smol.price_in_per_m == 0
    gguf = steward.registry.get_model("huggingface:bartowski/SmolLM2-1.7B-Instruct-GGUF")
    assert gguf.meta["params_b"] == pytest.approx(1.711, abs=1e-3) and gguf.context_length == 8192
    assert gguf.meta["quantization"] == "gguf"


def test_ollama_tags_and_show(steward) -> None:
    with FakeCatalog("ollama") as fake:
        rep = _scan(steward, fake)
        shows = [r for r in fake.requests if r["path"] == "/api/show"]
    assert rep.status == "ok" and rep.seen == 3 and rep.filtered == 1  # nomic-embed-text is embedding-only
    assert len(shows) == 4
    llama = steward.registry.get_model("ollama:llama3.2")
    assert llama.context_length == 131072 and llama.meta["params_b"] == pytest.approx(3.2127, abs=1e-3)
    assert llama.meta["quantization"] == "Q4_K_M" and llama.meta["family"] == "llama"
    assert "tools" in llama.capabilities and llama.base_url == f"{fake.url}/v1"
    assert "image_input" in steward.registry.get_model("ollama:llava:7b").capabilities


def test_openai_lists_chat_models_prices_from_table_or_unknown(steward) -> None:
    with FakeCatalog("openai") as fake:
        rep = _scan(steward, fake)
        assert fake.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"
    assert rep.status == "ok" and rep.seen == 4 and rep.filtered == 5
    assert any("price table" in n for n in rep.notes)
    mini = steward.registry.get_model("openai:gpt-5-mini")
    assert (mini.price_in_per_m, mini.price_out_per_m) == (Decimal("0.25"), Decimal(2))
    legacy = steward.registry.get_model("openai:gpt-legacy-preview")
    assert legacy.price_in_per_m is None and legacy.meta["price_unknown"] is True


def test_local_source_lists_smollm2_offline(steward) -> None:
    steward.registry.register_model("local", "support-ft-1", kind="fine_tuned", price_in_per_m=0, price_out_per_m=0)
    rep = run_scan(steward, "local").source("local")
    assert rep.status == "ok"
    assert set(rep.new) == {"local:smollm2-135m-instruct", "local:support-ft-1"}
    m = steward.registry.get_model("local:smollm2-135m-instruct")
    assert m.context_length == 8192 and m.meta["licence"] == "apache-2.0" and m.meta["quantization"] == "Q4_1"
    assert m.meta["params_b"] == pytest.approx(0.1345, abs=1e-3)
    assert steward.registry.get_model("local:support-ft-1").kind == "fine_tuned"


# ------------------------------------------------------------------------------------ error paths
REMOTE = ("openrouter", "openai", "anthropic", "google", "huggingface", "ollama")
FAULTS = {
    "server_error": ({"status": 503}, "server_error"),
    "rate_limited": ({"status": 429, "retry_after": "7"}, "rate_limited"),
    "malformed_json": ({"malformed": True}, "malformed_json"),
    "timeout": ({"delay": 2.0}, "timeout"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("kind", REMOTE)
def test_each_source_reports_faults(steward, kind: str, fault: str, hf_online: None) -> None:
    inject, expected = FAULTS[fault]
    with FakeCatalog(kind) as fake:
        fake.inject(**inject)
        rep = _scan(steward, fake, timeout=0.6 if fault == "timeout" else 1.5)
    assert rep.status == "error" and rep.error_kind == expected, rep.error
    assert rep.seen == 0 and kind in rep.error
    if fault == "rate_limited" and kind != "huggingface":  # the hub client waits out Retry-After itself
        assert rep.retry_after == 7 and "retry after 7s" in rep.error
    with session_scope(steward.sessions) as s:
        row = s.scalars(select(CatalogScan)).one()
        assert row.status == "error" and row.error.startswith(expected)
    assert steward.registry.list_models(provider=kind) == []


@pytest.mark.parametrize("kind", ["openai", "anthropic", "google", "huggingface"])
def test_wrong_key_is_unauthorized(steward, kind: str, hf_online: None) -> None:
    with FakeCatalog(kind) as fake:
        rep = _scan(steward, fake, key="wrong")
    assert rep.status == "error" and rep.error_kind == "unauthorized" and rep.http_status in (400, 401)


@pytest.mark.parametrize("kind", REMOTE)
def test_unreachable_source(steward, kind: str, hf_online: None) -> None:
    fake = FakeCatalog(kind)  # never started: point at a closed port
    base = fake.scanner_base.replace(fake.url, f"http://127.0.0.1:{_free_port()}")
    kw: dict[str, Any] = {"base_url": base, "api_key": KEY}
    if kind in ("openrouter", "ollama"):
        kw.pop("api_key")
    rep = run_scan(steward, kind, overrides={kind: kw}, timeout=1.0).source(kind)
    fake.stop()
    assert rep.status == "error" and rep.error_kind == "unreachable", rep.error


def test_hub_name_that_does_not_resolve_fails_at_once(steward, hf_online: None) -> None:
    """An offline machine: no five retries with back-off, the scan says unreachable straight away."""
    import time

    t0 = time.monotonic()
    rep = run_scan(steward, "huggingface", overrides={"huggingface": {"base_url": "http://hub.steward-test.invalid"}},
                   timeout=30.0).source("huggingface")
    assert rep.status == "error" and rep.error_kind == "unreachable", rep.error
    assert "cannot resolve hub.steward-test.invalid" in rep.error
    assert time.monotonic() - t0 < 10  # the hub client alone retries for about 20 s


@pytest.mark.parametrize("kind", ["anthropic", "google", "ollama"])
def test_wrong_shape_is_reported(steward, kind: str) -> None:
    with FakeCatalog(kind) as fake:
        fake.route = lambda *a: (200, {"unexpected": True}, {})  # type: ignore[method-assign]
        rep = _scan(steward, fake)
    assert rep.status == "error" and rep.error_kind == "bad_shape"


def test_missing_fields_skipped_in_every_json_source(steward) -> None:
    with FakeCatalog("anthropic", data=[{"type": "model"}, {"type": "model", "id": "claude-x"}]) as a, \
         FakeCatalog("google", data=[{"displayName": "no name"}, {"name": "models/g", "supportedGenerationMethods":
                                                                 ["generateContent"]}]) as g, \
         FakeCatalog("ollama", data=[{"size": 1}, {"name": "m:latest", "details": {}}]) as o, \
         FakeCatalog("openai", data=[{"object": "model"}, {"id": "gpt-x"}]) as oa:
        ov = {**_ov(a), **_ov(g), **_ov(o), **_ov(oa)}
        report = run_scan(steward, ["anthropic", "google", "ollama", "openai"], overrides=ov, timeout=5)
    for src in report.sources:
        assert src.status == "ok" and src.seen == 1 and src.skipped == 1, src


def test_huggingface_entry_without_id_is_a_source_error(steward, hf_online: None) -> None:
    with FakeCatalog("huggingface", data=[{"downloads": 3, "pipeline_tag": "text-generation"}]) as fake:
        rep = _scan(steward, fake)
    assert rep.status == "error" and rep.error_kind == "bad_shape"


def test_a_failing_source_does_not_stop_the_others_nor_mark_models_gone(steward) -> None:
    entry = {"id": "acme/a", "pricing": {"prompt": "0", "completion": "0"}}
    with FakeCatalog("openrouter", data={"data": [entry]}) as orr, FakeCatalog("anthropic") as ant:
        ov = {**_ov(orr), **_ov(ant)}
        run_scan(steward, ["openrouter"], overrides=ov)
        orr.inject(status=500, times=1)
        report = run_scan(steward, ["openrouter", "anthropic", "local"], overrides=ov)
        assert report.source("openrouter").status == "error"
        assert report.source("anthropic").status == "ok" and report.source("anthropic").seen == 5
        assert report.source("local").status == "ok"
        assert "catalog_gone_since_scan" not in steward.registry.get_model("openrouter:acme/a").meta
        again = run_scan(steward, ["openrouter"], overrides=ov).source("openrouter")
    assert again.status == "ok" and again.new == [] and again.gone == []  # compared with the last good scan


def test_no_key_is_reported_not_faked(steward, monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(env, raising=False)
    with FakeCatalog("openai") as fake:
        monkeypatch.setenv("STEWARD_OPENAI_BASE_URL", fake.scanner_base)
        report = run_scan(steward, ["openai", "anthropic", "google"])
        assert fake.requests == []
    for src in report.sources:
        assert src.status == "no_key" and src.seen == 0 and "_API_KEY" in (src.error or "")


def test_env_overrides_base_url_and_key(steward, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeCatalog("anthropic") as fake:
        monkeypatch.setenv("STEWARD_ANTHROPIC_BASE_URL", fake.scanner_base)
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        rep = run_scan(steward, "anthropic").source("anthropic")
    assert rep.status == "ok" and rep.seen == 5


# ------------------------------------------------------------------------------------ bad input, registry
def test_unknown_provider_lists_known_ones() -> None:
    with pytest.raises(InvalidInput) as exc:
        resolve_providers("openrouterx")
    for name in ("openrouter", "openai", "anthropic", "google", "huggingface", "ollama", "local", "all"):
        assert name in exc.value.message
    assert resolve_providers("all") == list(SCANNERS)
    assert resolve_providers("openai,local") == ["openai", "local"]


def test_scanner_registry_rejects_duplicate_names() -> None:
    resolve_providers("all")
    with pytest.raises(RuntimeError, match="registered twice"):
        @register_scanner
        class Again(Scanner):  # noqa: F841
            name = "openrouter"
    assert SCANNERS["openrouter"].__name__ == "OpenRouterScanner"


def test_public_surface_is_pinned() -> None:
    import modelsteward.catalog as catalog

    assert sorted(catalog.__all__) == sorted([
        "SCANNERS", "MissingField", "RankedModel", "Ranking", "Requirements", "ScanReport", "ScannedModel",
        "Scanner", "SourceError", "SourceReport", "SourceResult", "check_compatibility", "get_scanner",
        "known_providers", "rank_use_case", "register_scanner", "run_scan",
    ])
    assert all(hasattr(catalog, name) for name in catalog.__all__)
