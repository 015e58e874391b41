"""Reads never write: ``query``/``stats``/``connect`` read the write-ahead files instead of
flushing them into Parquet, so a row is visible to every process as soon as ``append()`` returns
(nobody sleeps for it), and a conversion running concurrently is counted exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

from modelsteward.storage.logstore import LogStore


def _row(i: int, **kw: Any) -> dict[str, Any]:
    base = {"request_id": f"r{i}", "use_case": "story", "model_id": "local:a", "role": "primary",
            "messages": [{"role": "user", "content": f"prompt {i}"}], "response": f"answer {i}",
            "input_tokens": 10, "output_tokens": 20, "latency_ms": float(i), "cost_usd": 0.001, "status": "ok"}
    base.update(kw)
    return base


def _parquet(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def test_query_stats_and_connect_create_no_parquet_file(tmp_path: Path) -> None:
    with LogStore(tmp_path, flush_seconds=3600, batch_rows=10**9) as store:
        store.append_many([_row(i) for i in range(30)])
        store.append(_row(30, status="error", error="boom"))
        store.record_feedback("r4", 1.0)
        assert store.query("SELECT count(*) AS n FROM logs")[0]["n"] == 31
        assert store.query("SELECT feedback FROM logs WHERE request_id = 'r4'") == [{"feedback": 1.0}]
        s = store.stats(since="all")
        assert s[0]["count"] == 31 and s[0]["errors"] == 1 and s[0]["feedback_count"] == 1
        assert s[0]["p50_ms"] == 14.5  # the 30 ok rows' latencies 0..29
        con = store.connect()
        try:
            assert con.execute("SELECT count(*) FROM raw_logs").fetchone()[0] == 31
        finally:
            con.close()
        assert _parquet(tmp_path) == [], "a read turned the write-ahead file into Parquet"
        assert store.pending == 32  # still in the write-ahead files
        # once sealed, the same answers come from the segments
        store.flush()
        assert _parquet(tmp_path)
        assert store.query("SELECT count(*) AS n FROM logs")[0]["n"] == 31
        assert store.stats(since="all")[0]["count"] == 31


_CHILD = textwrap.dedent("""
    import sys, time
    from modelsteward.storage.logstore import LogStore
    store = LogStore(sys.argv[1], flush_seconds=3600, batch_rows=10**9)
    store.append({"request_id": "from-child", "use_case": "story", "model_id": "local:a", "latency_ms": 5.0})
    store.record_feedback("from-child", 0.5)
    print("appended", flush=True)
    time.sleep(600)
""")


def test_a_row_is_visible_to_another_process_as_soon_as_append_returns(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "appended"
        # no sleep, no flush: the child's write-ahead file is read as it is
        with LogStore(tmp_path, flush_seconds=3600) as reader:
            rows = reader.query("SELECT request_id, feedback FROM logs")
            assert rows == [{"request_id": "from-child", "feedback": 0.5}]
            assert reader.stats(since="all")[0]["count"] == 1
            assert _parquet(tmp_path) == []
        # the writer dies without sealing anything: its row is still read (an orphaned WAL)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        from modelsteward.storage.logquery import LogReader

        assert LogReader(tmp_path).query("SELECT count(*) AS n FROM logs")[0]["n"] == 1
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


def test_a_concurrent_conversion_is_counted_exactly_once(tmp_path: Path) -> None:
    """While a writer appends and seals batches (WAL -> segments -> WAL deleted, and compaction),
    every read counts at least the rows acknowledged before it began and at most those acknowledged
    by its end: never a row twice (in a WAL and its segment), never a row missing in between."""
    acked = 0
    done = threading.Event()
    errors: list[str] = []
    with LogStore(tmp_path, flush_seconds=3600, batch_rows=10**9, compact_after=4) as store:

        def write() -> None:
            nonlocal acked
            try:
                for b in range(40):
                    store.append_many([_row(b * 50 + i) for i in range(50)])
                    acked += 50
                    if b % 2:
                        store.flush()
            finally:
                done.set()

        t = threading.Thread(target=write)
        t.start()
        reads = 0
        while not done.is_set() or reads < 3:
            before = acked
            n = store.query("SELECT count(*) AS n FROM logs")[0]["n"]
            s = sum(r["count"] for r in store.stats(since="all"))
            after = acked
            if not before <= n <= after or not before <= s <= after:
                errors.append(f"read {n} / stats {s} outside [{before}, {after}]")
            reads += 1
        t.join()
        assert not errors, errors[:5]
        assert store.query("SELECT count(*) AS n, count(DISTINCT request_id) AS d FROM logs")[0] == {"n": 2000, "d": 2000}


def test_request_key_from_own_and_other_writers_wal_then_segments(tmp_path: Path) -> None:
    """``request_key``: who made an answered request, from any writer's write-ahead file (no flush)
    and, once flushed, from the segments; failed attempts and shadows are not answers."""
    other = LogStore(tmp_path, flush_seconds=3600, batch_rows=10**9)  # another replica on the same folder
    with LogStore(tmp_path, flush_seconds=3600, batch_rows=10**9) as store:
        store.append(_row(1, metadata={"key": "app"}))
        store.append(_row(2, use_case="chat"))  # no key (a loopback client)
        store.append(_row(3, request_id="r1-a1", metadata={"key": "app", "primary_request_id": "r1"}))
        other.append(_row(4, metadata={"key": "ops", "stream": True}))
        other.append(_row(5, request_id="r4-s1", metadata={"primary_request_id": "r4"}))
        assert store.request_key("r1") == ("story", "app")
        assert store.request_key("r2") == ("chat", None)
        assert store.request_key("r4") == ("story", "ops"), "another replica's write-ahead file"
        assert store.request_key("r1-a1") is None and store.request_key("r4-s1") is None
        assert store.request_key("r9") is None and store.request_key('r1"') is None
        assert _parquet(tmp_path) == [], "a look-up turned the write-ahead file into Parquet"
        other.close()
        store.flush()
        assert _parquet(tmp_path) and not list(store.wal_dir.glob("requests-*.jsonl"))[1:]
        assert store.request_key("r1") == ("story", "app") and store.request_key("r4") == ("story", "ops")
        assert store.request_key("r2") == ("chat", None) and store.request_key("r4-s1") is None
