"""Issue 28 item 1: an import's duplicate check is bulk work: with a spill folder it runs on a
connection that may spill there, not under the ad-hoc query's memory limit and timeout; the bulk
limit comes from the machine's memory unless STEWARD_BUILD_MEMORY sets it."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelsteward.storage.importers import import_file
from modelsteward.storage.logstore import LogStore

FIX = Path(__file__).resolve().parent / "fixtures" / "import"


def test_the_duplicate_check_runs_on_the_spilling_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spill = tmp_path / "tmp" / "duckdb"
    with LogStore(tmp_path / "logs") as store:
        first = import_file(store, FIX / "otel_tools_spans.jsonl", use_case="weather", spill_dir=spill)
        store.flush()

        def no_adhoc(*_a: object, **_k: object) -> None:
            raise AssertionError("the duplicate check went through the ad-hoc query path")

        monkeypatch.setattr(store, "query", no_adhoc)
        again = import_file(store, FIX / "otel_tools_spans.jsonl", use_case="weather", spill_dir=spill)
    assert (first.rows, again.rows, again.duplicates) == (2, 0, 2)
    assert spill.is_dir()


def test_the_build_limit_comes_from_the_machine_or_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from modelsteward.errors import ConfigError
    from modelsteward.storage.logquery import build_memory

    monkeypatch.delenv("STEWARD_BUILD_MEMORY", raising=False)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert build_memory() == f"{max(1024, int(total * 0.15 / 2**20))}MiB"
    monkeypatch.setenv("STEWARD_BUILD_MEMORY", "3GB")
    assert build_memory() == "3GB"
    monkeypatch.setenv("STEWARD_BUILD_MEMORY", "lots")
    with pytest.raises(ConfigError, match="STEWARD_BUILD_MEMORY='lots' must be a size"):
        build_memory()
