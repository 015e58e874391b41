"""Log store crash paths: a compaction that crashed before deleting its sources must not merge them
again (rows and spend counted twice), and a WAL batch whose conversion failed must not stay hidden
until a restart."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from modelsteward.storage import segments
from modelsteward.storage.logstore import LogStore


def _row(i: int) -> dict:
    return {"request_id": f"r{i}", "use_case": "story", "model_id": "local:a", "role": "primary",
            "input_tokens": 10, "output_tokens": 20, "latency_ms": 5.0, "cost_usd": 0.25, "status": "ok"}


def _totals(store: LogStore) -> tuple[int, float, float]:
    q = store.query("SELECT count(*) AS n, sum(cost_usd) AS usd FROM logs")[0]
    (s,) = store.stats(since=None)
    assert s["count"] == q["n"] and s["cost_usd"] == pytest.approx(q["usd"])
    return q["n"], q["usd"], s["cost_usd"]


def test_compaction_after_a_crash_does_not_merge_the_same_sources_twice(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "logs"
    with LogStore(root, flush_seconds=60, compact_after=1000) as store:
        for k in range(3):
            store.append_many([_row(k * 10 + i) for i in range(10)])
            store.flush()
        # crash between writing the merged file and deleting its sources: the unlinks never happen
        real_unlink = Path.unlink

        def crash(self: Path, missing_ok: bool = False) -> None:
            if self.name.startswith("seg-"):
                raise SystemExit("simulated crash after the compacted file was renamed into place")
            real_unlink(self, missing_ok=missing_ok)

        monkeypatch.setattr(Path, "unlink", crash)
        with pytest.raises(SystemExit):
            store.compact()
        monkeypatch.setattr(Path, "unlink", real_unlink)
        part = next((root / "requests").glob("date=*/use_case=story"))
        leftovers = {p.name for p in part.glob("seg-*.parquet")}
        assert len(list(part.glob("cmp-*.parquet"))) == 1 and len(leftovers) == 3
        assert _totals(store) == (30, pytest.approx(7.5), pytest.approx(7.5))

        # after the restart: more rows, then the next compaction
        store.append_many([_row(100 + i) for i in range(10)])
        store.flush()
        store.compact()
        assert _totals(store) == (40, pytest.approx(10.0), pytest.approx(10.0))
        assert not leftovers & {p.name for p in part.glob("*.parquet")}, "leftover sources were not removed"
        ids = store.query("SELECT count(DISTINCT request_id) AS d FROM logs")[0]["d"]
        assert ids == 40


def test_a_failed_wal_conversion_is_retried_not_hidden(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "logs"
    store = LogStore(root, flush_seconds=3600, batch_rows=10**9)
    try:
        real = LogStore._convert_wal
        failures = {"left": 1}

        def flaky(self: LogStore, stream: str, path: Path) -> int:
            if failures["left"]:
                failures["left"] -= 1
                raise OSError(28, "No space left on device (simulated)")
            return real(self, stream, path)

        monkeypatch.setattr(LogStore, "_convert_wal", flaky)
        store.append_many([_row(i) for i in range(5)])
        with pytest.raises(OSError):
            store.flush()
        store.append_many([_row(10 + i) for i in range(5)])
        # the failed batch's rows stay visible (read from its WAL), counted once
        assert store.query("SELECT count(*) AS n FROM logs")[0]["n"] == 10
        # the same process, no restart: the failed batch is converted on a later flush
        store.flush()
        assert store.query("SELECT count(*) AS n FROM logs")[0]["n"] == 10
        assert not list((root / "wal").glob("requests-*.000001.jsonl")), "the failed WAL was left behind"
    finally:
        store.close()
    reopened = LogStore(root)
    try:
        assert reopened.replayed == 0  # nothing was left for a restart to find
        assert reopened.query("SELECT count(*) AS n FROM logs")[0]["n"] == 10
    finally:
        reopened.close()
