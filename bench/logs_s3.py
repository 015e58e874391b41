"""``logs stats`` over 10M rows in an S3 bucket (moto's server) against the same rows on local disk.

    .venv/bin/python bench/logs_s3.py [--rows 10000000] [--repeat 3]

The same segments (the store's layout: date x use-case partitions of compacted zstd files with
footer rollups, as ``bench/logstore.py`` writes them) are put in a local folder and in a bucket
served by ``moto_server`` in a subprocess (a real S3 wire protocol over HTTP on localhost: what
this figure adds over the local one is the object store's request cost, not a network's).  Both
stores are warmed once (the footer cache of a long-running server), then ``stats`` is timed
(best of ``--repeat``).  Prints both times and the ratio bucket / local.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

BUCKET = "bench-logs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _moto(port: int) -> subprocess.Popen:  # type: ignore[type-arg]
    exe = Path(sys.executable).parent / "moto_server"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto_server did not start")


def _timed(store, repeat: int) -> tuple[float, list]:  # type: ignore[no-untyped-def]
    stats = store.stats(since="30d")  # warm the footer cache
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        stats = store.stats(since="30d")
        best = min(best, time.perf_counter() - t)
    return best, stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)

    import numpy as np
    import pyarrow.fs as pfs
    from logstore import make_rows

    from modelsteward.storage.logstore import LogStore
    from modelsteward.storage.objectstore import ObjectStore, parse_log_location
    from modelsteward.storage.segments import with_rollup

    table = make_rows(a.rows)
    days = table.column("ts").cast("date32").to_numpy()
    parts = []
    for i, day in enumerate(np.unique(days)):
        parts.append((f"requests/date={day}/use_case=story_teller/cmp-{i}.parquet",
                      with_rollup(table.filter(np.asarray(days == day)))))
    del table
    tmp = Path(tempfile.mkdtemp(prefix="bench-logs-s3-"))
    port = _free_port()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
    os.environ.update(env)
    moto = _moto(port)
    try:
        from modelsteward.storage.objectstore import s3_filesystem

        s3fs = s3_filesystem()
        pfs.S3FileSystem(access_key="bench", secret_key="bench", endpoint_override=f"127.0.0.1:{port}", scheme="http",
                         region="us-east-1", allow_bucket_creation=True).create_dir(BUCKET)
        local = ObjectStore(parse_log_location(str(tmp / "local")))
        remote = ObjectStore(parse_log_location(f"s3://{BUCKET}/logs"), fs=s3fs)
        t = time.perf_counter()
        for rel, part in parts:
            local.write_parquet(rel, part, row_group_size=1_000_000)
            remote.write_parquet(rel, part, row_group_size=1_000_000)
        print(f"wrote {a.rows:,} rows in {len(parts)} partitions to a folder and a bucket "
              f"({time.perf_counter() - t:.1f} s)", flush=True)
        del parts
        with LogStore(tmp / "local") as store:
            t_local, s_local = _timed(store, a.repeat)
        with LogStore(f"s3://{BUCKET}/logs", wal_dir=tmp / "wal") as store:
            t_s3, s_s3 = _timed(store, a.repeat)
        assert sum(r["count"] for r in s_local) == sum(r["count"] for r in s_s3) == a.rows, (s_local, s_s3)
        key = ("use_case", "model_id", "role", "count", "errors", "input_tokens", "output_tokens")
        assert [[r[k] for k in key] for r in s_local] == [[r[k] for k in key] for r in s_s3]
        for x, y in zip(s_local, s_s3, strict=True):
            assert abs(x["p95_ms"] - y["p95_ms"]) < 1e-6 and abs(x["cost_usd"] - y["cost_usd"]) < 1e-9
        print(f"logs stats over {a.rows:,} rows: local disk {t_local:.3f} s | bucket (moto, S3 over HTTP) "
              f"{t_s3:.3f} s | ratio bucket/local {t_s3 / t_local:.2f}x")
        from _table import row

        row("logs_s3", f"log stats over {a.rows:,} rows in a bucket (moto S3 server)", round(t_s3, 3), "s",
            baseline=round(t_local, 3), baseline_what="same segments on local disk")
    finally:
        moto.terminate()
        try:
            moto.wait(10)
        except subprocess.TimeoutExpired:
            moto.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
