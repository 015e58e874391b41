"""The log store on S3-compatible object storage, against a real S3 wire protocol (moto's server):
segments, compaction and feedback in the bucket (Hive layout, atomic uploads), write-ahead files
on local disk; unsupported schemes and missing buckets are configuration errors; two ``steward
serve`` replicas write to one bucket and a third process reads every row; a replica killed with
``kill -9`` loses no acknowledged row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from s3_helpers import MotoS3

from modelsteward.errors import ConfigError, InvalidInput
from modelsteward.storage.logstore import LogStore
from modelsteward.storage.objectstore import parse_log_location

BUCKET = "steward-logs"


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    server = MotoS3()
    server.make_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture
def aws_env(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    return s3.env


def _row(i: int, **kw: Any) -> dict[str, Any]:
    base = {"request_id": f"r{i}", "use_case": "story", "model_id": "local:a", "role": "primary",
            "messages": [{"role": "user", "content": f"prompt {i}"}], "response": f"answer {i}",
            "input_tokens": 10, "output_tokens": 20, "latency_ms": float(i), "cost_usd": 0.001, "status": "ok"}
    base.update(kw)
    return base


def test_append_seal_stats_query_and_compact_through_the_bucket(s3: MotoS3, aws_env: dict, tmp_path: Path) -> None:
    url = f"s3://{BUCKET}/t1/logs"
    with LogStore(url, wal_dir=tmp_path / "wal-a", flush_seconds=3600) as store:
        assert store.remote and store.root == url
        store.append_many([_row(i) for i in range(50)])
        store.append(_row(50, use_case="other", ts="2026-01-02T03:04:05Z"))
        store.record_feedback("r3", -1.0)
        # acknowledged rows are readable before anything reaches the bucket (from the WAL)
        assert not s3.keys(BUCKET, "t1/")
        assert store.query("SELECT count(*) AS n FROM logs")[0]["n"] == 51
        assert not s3.keys(BUCKET, "t1/"), "a read wrote to the bucket"
        store.flush()
        keys = s3.keys(BUCKET, "t1/logs/")
        assert any(k.startswith("t1/logs/requests/date=2026-01-02/use_case=other/seg-") for k in keys), keys
        assert any(k.startswith("t1/logs/feedback/date=") for k in keys), keys
        # (pyarrow keeps an empty "_tmp/" directory marker once the folder empties: not an upload)
        assert not [k for k in keys if "/_tmp/" in k and not k.endswith("/")], "an upload was left half-done"
        assert not [k for k in keys if "/wal/" in k], "write-ahead files belong on local disk"
        store.append_many([_row(i) for i in range(100, 130)])
        store.flush()
        stats = {(r["use_case"], r["model_id"]): r for r in store.stats(since="all")}
        assert stats[("story", "local:a")]["count"] == 80 and stats[("other", "local:a")]["count"] == 1
        assert stats[("story", "local:a")]["mean_feedback"] == pytest.approx(-1.0)
        # only the leader compacts a bucket: flushing never does
        segs = [k for k in s3.keys(BUCKET, "t1/logs/requests/") if "/use_case=story/" in k and not k.endswith("/")]
        assert len(segs) == 2 and all("/seg-" in k for k in segs)
        assert store.compact() >= 2
        # (directory markers -- empty keys ending in "/" -- are pyarrow's, as Hadoop's s3a leaves them)
        after = [k for k in s3.keys(BUCKET, "t1/logs/requests/") if "/use_case=story/" in k and not k.endswith("/")]
        assert len(after) == 1 and "/cmp-" in after[0]
        assert sum(r["count"] for r in store.stats(since="all")) == 81
    # another replica (its own WAL folder) reads the same bucket
    with LogStore(url, wal_dir=tmp_path / "wal-b") as other:
        rows = other.query("SELECT request_id, feedback FROM logs WHERE request_id = 'r3'")
        assert rows == [{"request_id": "r3", "feedback": -1.0}]
        assert other.query("SELECT count(*) AS n FROM logs")[0]["n"] == 81
        # the layout is plain Hive-partitioned Parquet: pyarrow reads it without us
        import pyarrow.dataset as ds

        from modelsteward.storage.objectstore import s3_filesystem

        table = ds.dataset(f"{BUCKET}/t1/logs/requests", filesystem=s3_filesystem(), format="parquet",
                           partitioning="hive").to_table()
        assert table.num_rows == 81 and "use_case" in table.column_names
        with pytest.raises(InvalidInput, match="lifecycle rules"):
            from modelsteward.storage.retention import parse_age, purge

            purge(other, "story", parse_age("1d"))


def test_unknown_schemes_are_config_errors_never_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("gs://bucket/x", "azure://c/p", "http://host/logs", "s3:/bucket/x"):
        with pytest.raises(ConfigError, match="STEWARD_LOG_DIR"):
            parse_log_location(bad)
    assert parse_log_location("file:///srv/logs").path == Path("/srv/logs")
    loc = parse_log_location("s3://my-bucket/a/b/")
    assert (loc.bucket, loc.prefix, loc.remote) == ("my-bucket", "a/b", True)
    # the command line: one line naming the variable, and nothing created
    env = {**os.environ, "STEWARD_HOME": str(tmp_path / "ws"), "STEWARD_LOG_DIR": "gs://bucket/logs"}
    env.pop("STEWARD_DATABASE_URL", None)
    p = subprocess.run([sys.executable, "-c", "from modelsteward.cli import main; main()", "init"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "STEWARD_LOG_DIR" in p.stderr + p.stdout and "gs://" in p.stderr + p.stdout
    assert not (tmp_path / "gs:").exists() and not (tmp_path / "ws").exists()


def test_a_missing_bucket_is_an_error_naming_it(aws_env: dict, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no-such-bucket") as info:
        LogStore("s3://no-such-bucket/logs", wal_dir=tmp_path / "wal")
    assert "does not exist" in info.value.message
    assert not (tmp_path / "wal").exists() or not list((tmp_path / "wal").iterdir())
    # the command line: one line naming the bucket, exit 1
    env = {**os.environ, "STEWARD_HOME": str(tmp_path / "ws"), "STEWARD_LOG_DIR": "s3://no-such-bucket/logs"}
    env.pop("STEWARD_DATABASE_URL", None)
    p = subprocess.run([sys.executable, "-c", "from modelsteward.cli import main; main()", "init"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "'no-such-bucket' does not exist" in p.stderr, p.stderr


# ---------------------------------------------------------------------- replicas
def _registry_url(tmp_path: Path) -> Iterator[str]:
    pg = os.environ.get("STEWARD_TEST_POSTGRES_URL")
    if pg:
        from conftest import _pg_schema_url

        yield from _pg_schema_url(pg)
    else:
        yield f"sqlite:///{tmp_path / 'registry.db'}"


def _query_as_third_process(env: dict[str, str], sql: str) -> list[dict[str, Any]]:
    p = subprocess.run([sys.executable, "-c", "from modelsteward.cli import main; main()", "logs", "query", sql,
                        "--limit", "100000", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.slow
def test_two_replicas_one_bucket_a_third_process_reads_every_row_and_kill9_loses_nothing(
        s3: MotoS3, aws_env: dict, tmp_path: Path) -> None:
    import httpx
    from gateway_helpers import free_port
    from ops_helpers import Replica, wait_for

    from modelsteward.context import open_steward
    from modelsteward.fakes.upstream import InstantUpstream
    from modelsteward.gateway import create_key
    from modelsteward.settings import Settings

    url = f"s3://{BUCKET}/replicas"
    gen = _registry_url(tmp_path)
    db = next(gen)
    up = InstantUpstream().start()
    reps: list[Replica] = []
    try:
        base_env = {**os.environ, **s3.env, "STEWARD_DATABASE_URL": db, "STEWARD_LOG_DIR": url,
                    "STEWARD_AGENT_EVERY": "off", "STEWARD_LEADER_LEASE": "3s", "STEWARD_LOG_COMPACT_EVERY": "2s",
                    "STEWARD_LOG_FLUSH_SECONDS": "0.2"}
        st = open_steward(Settings(home=tmp_path / "ws0", database_url=db, log_dir=url))
        try:
            m = st.registry.register_model("custom", "instant", base_url=up.url, price_in_per_m="1",
                                           price_out_per_m="2")
            st.registry.add_use_case("chat", description="chat", model=m.id)
            key = create_key(st.registry, "app").key
        finally:
            st.close()
        envs = {name: {**base_env, "STEWARD_HOME": str(tmp_path / f"ws-{name}")} for name in ("a", "b")}
        # replica a never seals on its own (its rows stay in its WAL until it is killed and restarts)
        envs["a"].update(STEWARD_LOG_FLUSH_SECONDS="3600", STEWARD_LOG_BATCH_ROWS="1000000")
        reps = [Replica(envs[n], free_port(), tmp_path, n) for n in ("a", "b")]
        for r in reps:
            r.wait_up()
        acked: set[str] = set()
        body = {"model": "chat", "messages": [{"role": "user", "content": "hello"}]}
        for i in range(40):
            r = reps[i % 2]
            resp = httpx.post(f"{r.base}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"},
                              timeout=30)
            assert resp.status_code == 200, resp.text
            acked.add(resp.headers["x-request-id"])
        third = {**base_env, "STEWARD_HOME": str(tmp_path / "ws-c")}
        sql = "SELECT request_id FROM logs"
        # replica b's rows reach the bucket within its flush interval; a's stay in its local WAL
        b_ids = wait_for(lambda: {r["request_id"] for r in _query_as_third_process(third, sql)} or None, 60,
                         "replica b's rows in the bucket")
        assert len(b_ids) == 20 and b_ids < acked
        # kill -9 replica a: its 20 acknowledged rows are only in its write-ahead files
        reps[0].kill9()
        wal_files = list((tmp_path / "ws-a" / "wal").glob("requests-*.jsonl"))
        assert wal_files, "replica a had no write-ahead file"
        reps[0] = Replica(envs["a"], free_port(), tmp_path, "a2")
        reps[0].wait_up()  # opening the store replays the orphaned WAL into the bucket
        seen = wait_for(lambda: (ids := {r["request_id"] for r in _query_as_third_process(third, sql)}) >= acked
                        and ids, 60, "every acknowledged row, read by a third process")
        assert seen == acked
        # the leader merges the small segments in the bucket; no row is lost or counted twice
        wait_for(lambda: any("/cmp-" in k for k in s3.keys(BUCKET, "replicas/requests/")), 60, "a compaction")
        n = _query_as_third_process(third, "SELECT count(*) AS n, count(DISTINCT request_id) AS d FROM logs")[0]
        assert n == {"n": 40, "d": 40}
        assert not [k for k in s3.keys(BUCKET, "replicas/") if "/_tmp/" in k and not k.endswith("/")]
    finally:
        for r in reps:
            r.stop()
        up.stop()
        gen.close()
