"""The request-log store: durability, partitions, analytics, read-only queries, corrupt segments."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelsteward.errors import InvalidInput, ReadOnlyViolation
from modelsteward.storage.logquery import CorruptSegmentWarning
from modelsteward.storage.logstore import LogStore


def _row(i: int, **kw: object) -> dict:
    base = {
        "request_id": f"r{i}", "use_case": "story", "model_id": "local:a", "role": "primary",
        "messages": [{"role": "user", "content": f"prompt {i}"}], "response": f"answer {i}",
        "input_tokens": 10, "output_tokens": 20, "latency_ms": float(i), "cost_usd": 0.001, "status": "ok",
    }
    base.update(kw)
    return base


def test_append_query_stats_and_partitions(tmp_path: Path) -> None:
    with LogStore(tmp_path, flush_seconds=60) as store:
        for i in range(1, 101):
            store.append(_row(i))
        store.append(_row(101, status="error", error="boom", latency_ms=None))
        store.append(_row(102, use_case="other", ts="2026-01-02T03:04:05Z", model_id="openai:x", role="canary"))
        store.append(_row(103, ts=1767225600))  # epoch seconds: 2026-01-01
        store.record_feedback("r5", 1.0)
        store.record_feedback("r5", -0.5)  # the latest wins
        stats = {(r["use_case"], r["model_id"], r["role"]): r for r in store.stats(since="all")}
        s = stats[("story", "local:a", "primary")]
        assert s["count"] == 102 and s["errors"] == 1
        assert s["error_rate"] == pytest.approx(1 / 102)
        assert s["p50_ms"] == pytest.approx(51.0)  # over the ok rows only (1..100 and 103)
        assert s["input_tokens"] == 1020 and s["cost_usd"] == pytest.approx(0.102)
        assert s["mean_feedback"] == pytest.approx(-0.5) and s["feedback_count"] == 1
        assert ("other", "openai:x", "canary") in stats
        # windows: the 2026-01 rows are outside a 1-day window
        recent = store.stats(since="1d")
        assert sum(r["count"] for r in recent) == 101
        rows = store.query("SELECT request_id, messages FROM logs WHERE request_id = 'r7'")
        assert rows and '"prompt 7"' in rows[0]["messages"]
    parts = sorted(str(p.relative_to(tmp_path / "requests")) for p in (tmp_path / "requests").glob("date=*/use_case=*"))
    assert "date=2026-01-02/use_case=other" in parts and "date=2026-01-01/use_case=story" in parts
    assert not list((tmp_path / "wal").glob("*.jsonl"))  # all flushed on close


def test_stats_feedback_matches_the_joined_logs_view(tmp_path: Path) -> None:
    """stats() corrects inline feedback with feedback events without joining every row; same answer as the view."""
    import random

    rng = random.Random(3)
    with LogStore(tmp_path, flush_seconds=60) as store:
        for i in range(400):
            inline = rng.choice([None, None, 1.0, -1.0, 0.5])
            store.append(_row(i, model_id=rng.choice(["local:a", "local:b"]), role=rng.choice(["primary", "shadow"]),
                              latency_ms=rng.random() * 100, **({"feedback": inline} if inline is not None else {})))
        for i in rng.sample(range(400), 120):
            store.record_feedback(f"r{i}", rng.choice([1.0, -1.0, 0.0]))
        store.record_feedback("r-unknown", 1.0)  # an event for no logged request changes nothing
        got = {(r["model_id"], r["role"]): r for r in store.stats(since="all")}
        want = store.query("SELECT model_id, role, avg(feedback) AS m, count(feedback) AS n, count(*) AS c, "
                           "quantile_cont(latency_ms, 0.95) AS p95 FROM logs GROUP BY ALL")
        assert len(want) == len(got) == 4
        for w in want:
            g = got[(w["model_id"], w["role"])]
            assert g["feedback_count"] == w["n"] and g["count"] == w["c"]
            assert g["mean_feedback"] == pytest.approx(w["m"]) and g["p95_ms"] == pytest.approx(w["p95"])


@pytest.mark.parametrize("sql", [
    "INSERT INTO logs VALUES (1)", "UPDATE logs SET response = 'x'", "DELETE FROM logs",
    "COPY (SELECT 1) TO 'out.csv'", "ATTACH 'x.db'", "CREATE TABLE t AS SELECT 1", "DROP VIEW logs",
    "SET threads = 1", "PRAGMA version", "SELECT 1; DELETE FROM logs", "INSTALL httpfs",
])
def test_query_refuses_writes(tmp_path: Path, sql: str) -> None:
    with LogStore(tmp_path) as store:
        store.append(_row(1))
        with pytest.raises(ReadOnlyViolation):
            store.query(sql)


def test_query_cannot_read_outside_the_store(tmp_path: Path) -> None:
    secret = tmp_path.parent / f"secret-{os.getpid()}.csv"
    secret.write_text("a,b\n1,2\n")
    with LogStore(tmp_path / "logs") as store:
        with pytest.raises(InvalidInput):
            store.query(f"SELECT * FROM read_csv('{secret}')")
    secret.unlink()


def test_bad_rows_rejected_whole(tmp_path: Path) -> None:
    with LogStore(tmp_path) as store:
        with pytest.raises(InvalidInput, match="role"):
            store.append_many([_row(1), _row(2, role="boss")])
        with pytest.raises(InvalidInput, match="feedback"):
            store.append(_row(3, feedback=3))
        with pytest.raises(InvalidInput, match="request_id"):
            store.append({"use_case": "x", "model_id": "m"})
        assert store.query("SELECT count(*) AS n FROM logs")[0]["n"] == 0


def test_corrupt_segment_is_skipped_with_warning(tmp_path: Path) -> None:
    with LogStore(tmp_path) as store:
        store.append_many([_row(i) for i in range(10)])
        store.flush()
        store.append_many([_row(i, use_case="other") for i in range(5)])
        store.flush()
        seg = next((tmp_path / "requests").glob("date=*/use_case=other/*.parquet"))
        seg.write_bytes(b"PAR1 this is not parquet")
        with pytest.warns(CorruptSegmentWarning, match=seg.name):
            n = store.query("SELECT count(*) AS n FROM logs")[0]["n"]
        assert n == 10


def test_compaction_merges_without_double_counting(tmp_path: Path) -> None:
    with LogStore(tmp_path, flush_seconds=60, compact_after=1000) as store:
        for k in range(5):
            store.append_many([_row(k * 10 + i) for i in range(10)])
            store.flush()
        part = next((tmp_path / "requests").glob("date=*/use_case=story"))
        assert len(list(part.glob("seg-*.parquet"))) == 5
        assert store.compact() == 5
        assert [p.name[:4] for p in part.glob("*.parquet")] == ["cmp-"]
        assert store.query("SELECT count(DISTINCT request_id) AS d, count(*) AS n FROM logs")[0] == {"d": 50, "n": 50}


def test_reader_ignores_sources_left_by_a_crashed_compaction(tmp_path: Path) -> None:
    import shutil

    with LogStore(tmp_path, flush_seconds=60, compact_after=1000) as store:
        for k in range(3):
            store.append_many([_row(k * 10 + i) for i in range(10)])
            store.flush()
        part = next((tmp_path / "requests").glob("date=*/use_case=story"))
        backup = tmp_path.parent / "backup"
        shutil.copytree(part, backup)
        store.compact()
        for p in backup.glob("seg-*.parquet"):  # as if the sources were never deleted
            shutil.copy(p, part / p.name)
        assert store.query("SELECT count(*) AS n FROM logs")[0]["n"] == 30


def test_wal_replayed_on_next_open(tmp_path: Path) -> None:
    store = LogStore(tmp_path, flush_seconds=3600, batch_rows=10**9)
    store.append_many([_row(i) for i in range(25)])
    # simulate a crash: drop the writer without flushing (release the WAL locks)
    store._closed = True
    for s in (store._requests, store._feedback):
        s.mm.close()  # the mapped file keeps its zero-filled tail, as after a kill
        os.close(s.fd)
    wal = list((tmp_path / "wal").glob("requests-*.jsonl"))
    assert wal and wal[0].stat().st_size > 25 * 100  # grown ahead of the rows
    with LogStore(tmp_path) as again:
        assert again.replayed == 25
        assert again.query("SELECT count(*) AS n FROM logs")[0]["n"] == 25


_WRITER = textwrap.dedent(
    """
    import sys
    from modelsteward.storage.logstore import LogStore
    store = LogStore(sys.argv[1], flush_seconds=0.05, batch_rows=50)
    i = 0
    while True:
        store.append({"request_id": f"k{i}", "use_case": "story", "model_id": "m", "response": "x" * 200})
        print(i, flush=True)  # acknowledged
        i += 1
    """
)


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_row(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(root)], stdout=subprocess.PIPE, text=True)
    acked = -1
    deadline = time.time() + 60
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line:
            acked = int(line)
        if acked >= 3000:
            break
    os.kill(proc.pid, signal.SIGKILL)
    # rows printed after our last read were acknowledged too; read what remains in the pipe
    rest = proc.stdout.read()
    proc.wait()
    for line in rest.splitlines():
        if line.strip():
            acked = int(line)
    assert acked >= 3000
    with LogStore(root) as store:
        ids = [r["request_id"] for r in store.query("SELECT request_id FROM logs")]
    got = set(ids)
    missing = [i for i in range(acked + 1) if f"k{i}" not in got]
    assert not missing, f"{len(missing)} acknowledged rows lost, first {missing[:5]}"
    assert len(ids) == len(got), "a replayed row was stored twice"


def test_parse_ts_forms() -> None:
    from modelsteward.storage.logstore import parse_ts

    assert parse_ts("2026-05-01T10:00:00+02:00") == dt.datetime(2026, 5, 1, 8, 0)
    assert parse_ts(1767225600) == dt.datetime(2026, 1, 1)
    assert parse_ts(1767225600000) == dt.datetime(2026, 1, 1)
    assert parse_ts(1767225600000000) == dt.datetime(2026, 1, 1)
    with pytest.raises(InvalidInput, match="ISO 8601"):
        parse_ts("yesterday")


def test_mapped_wal_grows_past_its_first_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelsteward.storage import logstore

    monkeypatch.setattr(logstore._Stream, "INITIAL_BYTES", 1024)
    big = "y" * 5000  # one row larger than the whole first mapping
    with LogStore(tmp_path, flush_seconds=3600, batch_rows=10**9) as store:
        store.append({**_row(0), "response": big})
        store.append_many([_row(i) for i in range(1, 40)])
        assert store._requests.pos > 1024
        rows = store.query("SELECT request_id, response FROM logs ORDER BY ts")
    assert len(rows) == 40
    assert any(r["response"] == big for r in rows)
    assert not list((tmp_path / "wal").glob("*.jsonl")), "a closed store leaves no write-ahead file"


def test_stats_from_footer_rollups_equal_a_full_scan(tmp_path: Path) -> None:
    """Files wholly inside the window add their footer rollups; straddling and legacy files are scanned."""
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    from modelsteward.timeutil import window_start as parse_window
    from modelsteward.storage.logstore import LOG_COLUMNS
    from modelsteward.storage.segments import ROLLUP_KEY, _schema

    rng = random.Random(5)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

    def rows(k0: int, n: int, ago: dt.timedelta) -> list[dict]:
        return [_row(k0 + i, ts=(now - ago + dt.timedelta(seconds=i)).isoformat() + "Z",
                     use_case=rng.choice(["story", "faq"]), model_id=rng.choice(["local:a", "local:b"]),
                     role=rng.choice(["primary", "canary", "shadow"]), latency_ms=rng.random() * 900,
                     status=rng.choice(["ok"] * 9 + ["error"]), input_tokens=rng.choice([None, 3, 40]),
                     cost_usd=rng.random() / 1000, **({"feedback": rng.choice([-1.0, 0.5, 1.0])} if i % 3 else {}))
                for i in range(n)]

    with LogStore(tmp_path, flush_seconds=3600, batch_rows=10**9, compact_after=10**6) as store:
        for k in range(4):  # several segments per partition, some compacted below
            store.append_many(rows(k * 100, 60, dt.timedelta(minutes=30 + k)))
            store.flush()
        store.append_many(rows(1000, 60, dt.timedelta(seconds=630)))  # straddles a 10-minute window
        store.flush()
        store.compact()
        store.append_many(rows(1500, 40, dt.timedelta(minutes=2)))  # wholly inside it
        store.flush()
        store.append_many(rows(2000, 30, dt.timedelta(days=3)))  # outside a short window
        store.flush()
        # a segment written by something else: no rollup in its footer, so it is always scanned
        legacy = tmp_path / "requests" / f"date={now.date()}" / "use_case=story" / "seg-legacy.parquet"
        table = pa.Table.from_pylist([{**r, "ts": now - dt.timedelta(minutes=5)} for r in
                                      [{k: v for k, v in _row(3000 + i, messages="[]").items() if k in LOG_COLUMNS}
                                       for i in range(7)]], schema=_schema(LOG_COLUMNS))
        pq.write_table(table, legacy)
        assert ROLLUP_KEY not in (pq.read_metadata(legacy).metadata or {})

        for since, uc in [("all", None), ("10m", None), ("2h", "story"), ("20m", "faq")]:
            got = {(r["use_case"], r["model_id"], r["role"]): r for r in store.stats(use_case=uc, since=since)}
            cut = parse_window(since) or dt.datetime(1970, 1, 1)
            want = store.query(
                "SELECT use_case, model_id, role, count(*) AS n, count(*) FILTER (WHERE status='error') AS e, "
                "quantile_cont(latency_ms, [0.5, 0.95]) FILTER (WHERE status='ok') AS q, "
                "coalesce(sum(input_tokens), 0) AS tin, sum(cost_usd) AS cost, count(feedback) AS fn, "
                "avg(feedback) AS fm, min(ts) AS first, max(ts) AS last FROM logs "
                "WHERE ts >= ? AND (? IS NULL OR use_case = ?) GROUP BY ALL", [cut, uc, uc])
            assert want and len(got) == len(want), since
            for w in want:
                g = got[(w["use_case"], w["model_id"], w["role"])]
                assert (g["count"], g["errors"], g["input_tokens"], g["feedback_count"]) == (
                    w["n"], w["e"], w["tin"], w["fn"]), since
                assert g["p50_ms"] == pytest.approx(w["q"][0]) and g["p95_ms"] == pytest.approx(w["q"][1])
                assert g["cost_usd"] == pytest.approx(w["cost"]) and g["mean_feedback"] == pytest.approx(w["fm"])
                assert (g["first_ts"], g["last_ts"]) == (w["first"], w["last"]), since

        reader = store.reader
        files = reader._files("requests")
        rolled, scan = reader._split_by_rollup(files, None, parse_window("all"))
        assert str(legacy) in scan and len(scan) == 1
        assert any(Path(f).name.startswith("cmp-") for f, _, _ in rolled), "compacted files carry a rollup too"
        rolled10, scan10 = reader._split_by_rollup(files, None, parse_window("10m"))
        assert {Path(f).name.split(".")[0][:4] for f in scan10} == {"cmp-", "seg-"}  # straddling + legacy
        assert rolled10 and all(Path(f).name.startswith("seg-requests") for f, _, _ in rolled10)


def test_a_forked_child_cannot_write_into_the_parents_mapped_wal(tmp_path: Path) -> None:
    with LogStore(tmp_path, flush_seconds=3600) as store:
        store.append(_row(1))
        pid = os.fork()
        if pid == 0:  # the child: its copy of the store must refuse, leaving the shared map alone
            try:
                store.append(_row(2))
                os._exit(1)
            except RuntimeError as exc:
                os._exit(0 if "forked" in str(exc) else 2)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        store.append(_row(3))
        assert sorted(r["request_id"] for r in store.query("SELECT request_id FROM logs")) == ["r1", "r3"]


def test_a_full_disk_refuses_the_append_and_keeps_acknowledged_rows(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    real = os.posix_fallocate

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with LogStore(tmp_path, flush_seconds=3600, batch_rows=10**9) as store:
        store.append_many([_row(i) for i in range(5)])
        monkeypatch.setattr(os, "posix_fallocate", full)
        with pytest.raises(OSError, match="No space"):
            store.append({**_row(99), "response": "z" * (5 << 20)})  # needs more room than was reserved
        store.append(_row(5))  # still fits in the reserved blocks
        with pytest.raises(OSError):
            store.flush()  # the next WAL cannot be made: the current one stays in use, nothing lost
        store.append(_row(6))
        monkeypatch.setattr(os, "posix_fallocate", real)
        ids = sorted(r["request_id"] for r in store.query("SELECT request_id FROM logs"))
    assert ids == sorted(f"r{i}" for i in range(7))
