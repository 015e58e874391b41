"""``logs query`` (user SQL over the logs) stops at a statement timeout and a memory limit, with a
clear error naming the setting, instead of running unbounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from modelsteward.errors import InvalidInput
from modelsteward.storage.logstore import LogStore


@pytest.fixture
def store(tmp_path: Path):
    s = LogStore(tmp_path / "logs", flush_seconds=0.2)
    s.append({"request_id": "r1", "use_case": "story", "model_id": "custom:x"})
    yield s
    s.close()


def test_a_long_query_is_stopped_at_the_timeout(store, monkeypatch) -> None:
    monkeypatch.setenv("STEWARD_QUERY_TIMEOUT_S", "1")
    t0 = time.monotonic()
    with pytest.raises(InvalidInput, match="STEWARD_QUERY_TIMEOUT_S") as err:
        store.query("SELECT sum(a.range * b.range) AS s FROM range(40000) a, range(40000) b, logs")
    took = time.monotonic() - t0
    assert took < 3.0, took
    assert "1s" in str(err.value)
    assert store.query("SELECT count(*) AS n FROM logs") == [{"n": 1}]  # the store still answers


def test_a_query_over_the_memory_limit_fails_clearly(store, monkeypatch) -> None:
    monkeypatch.setenv("STEWARD_QUERY_MEMORY", "64MB")
    with pytest.raises(InvalidInput, match="STEWARD_QUERY_MEMORY"):
        store.query("SELECT count(DISTINCT range::VARCHAR || 'x') AS n FROM range(8000000), logs")


def test_bad_limit_settings_are_named(store, monkeypatch) -> None:
    from modelsteward.errors import ConfigError

    monkeypatch.setenv("STEWARD_QUERY_TIMEOUT_S", "soon")
    with pytest.raises(ConfigError, match="STEWARD_QUERY_TIMEOUT_S"):
        store.query("SELECT 1 AS x")
