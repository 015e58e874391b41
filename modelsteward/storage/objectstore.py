"""Where the log store's Parquet segments live: a local folder or an S3-compatible bucket.

``STEWARD_LOG_DIR`` takes a folder, ``file:///path`` or ``s3://BUCKET/PREFIX`` (AWS, MinIO, R2, GCS
through its S3 API); any other scheme is a ``ConfigError`` naming the variable, never a local folder
named ``s3:``.  A bucket is reached with pyarrow's S3 filesystem configured from the standard AWS
variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``), and is checked when the store opens:
a missing bucket or refused credentials is an error naming the bucket.

Layout under the root is the same in both places (Hive-partitioned plain Parquet)::

    requests/date=YYYY-MM-DD/use_case=NAME/{seg,cmp}-*.parquet
    feedback/date=YYYY-MM-DD/{seg,cmp}-*.parquet
    _tmp/                    (a bucket only: uploads in flight)

Every object is written atomically: to ``_tmp/`` first, then moved into place with a server-side
copy, so a reader never sees a partial object.  DuckDB reads the bucket through pyarrow datasets
registered on its connection (its httpfs extension is not needed).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelsteward.errors import ConfigError

__all__ = ["LogLocation", "parse_log_location", "ObjectStore", "open_objects", "s3_filesystem"]

from modelsteward.loglocation import VAR, LogLocation, parse_log_location  # noqa: E402,F401 - re-exported


def s3_filesystem(env: Mapping[str, str] | None = None):  # type: ignore[no-untyped-def]
    """pyarrow's S3 filesystem from the standard AWS variables."""
    import pyarrow.fs as pfs

    env = os.environ if env is None else env
    kw: dict[str, Any] = {
        "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        "connect_timeout": 5, "request_timeout": 30,
        "retry_strategy": pfs.AwsStandardS3RetryStrategy(max_attempts=3),
    }
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        m = _SCHEME.match(endpoint.strip())
        if m:
            kw["scheme"] = m.group(1).lower()
            kw["endpoint_override"] = m.group(2).rstrip("/")
        else:
            kw["endpoint_override"] = endpoint.strip().rstrip("/")
        kw["force_virtual_addressing"] = False
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        kw["access_key"] = env["AWS_ACCESS_KEY_ID"]
        kw["secret_key"] = env["AWS_SECRET_ACCESS_KEY"]
        if env.get("AWS_SESSION_TOKEN"):
            kw["session_token"] = env["AWS_SESSION_TOKEN"]
    return pfs.S3FileSystem(**kw)


class ObjectStore:
    """The segments' home: relative keys (``requests/date=.../x.parquet``) under a local folder or a bucket prefix.

    Paths handed out (``path``, ``list``) are the filesystem's own: an absolute local path, or
    ``bucket/prefix/key`` for pyarrow's S3 filesystem.
    """

    def __init__(self, location: LogLocation, fs: Any = None) -> None:
        import pyarrow.fs as pfs

        self.location = location
        self.remote = location.remote
        if self.remote:
            self.fs = fs if fs is not None else s3_filesystem()
            self.base = posixpath.join(location.bucket, location.prefix) if location.prefix else location.bucket
        else:
            assert location.path is not None
            self.fs = fs if fs is not None else pfs.LocalFileSystem()
            self.base = str(location.path)

    @property
    def url(self) -> str:
        return self.location.url

    def path(self, rel: str) -> str:
        return posixpath.join(self.base, rel) if rel else self.base

    def rel(self, path: str) -> str:
        return path[len(self.base) + 1:] if path.startswith(self.base + "/") else path

    # ------------------------------------------------------------------ checks
    def check(self) -> None:
        """The bucket exists and answers with these credentials (local: nothing to check)."""
        if not self.remote:
            return
        import pyarrow.fs as pfs

        bucket = self.location.bucket
        try:
            self.fs.get_file_info(pfs.FileSelector(self.path(""), recursive=False, allow_not_found=True))
            info = self.fs.get_file_info(bucket)
        except OSError as exc:
            msg = str(exc)
            if "NO_SUCH_BUCKET" in msg or "does not exist" in msg:
                raise ConfigError(f"{VAR}: bucket {bucket!r} does not exist (create it, or check the name and "
                                  "AWS_ENDPOINT_URL).", variable=VAR, bucket=bucket) from None
            if any(k in msg for k in ("ACCESS_DENIED", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                                      "403", "INVALID_ACCESS_KEY", "credentials")):
                raise ConfigError(f"{VAR}: bucket {bucket!r} refused the credentials (AWS_ACCESS_KEY_ID / "
                                  "AWS_SECRET_ACCESS_KEY): " + _first_line(msg), variable=VAR, bucket=bucket) from None
            raise ConfigError(f"{VAR}: bucket {bucket!r} could not be reached: {_first_line(msg)}", variable=VAR,
                              bucket=bucket) from None
        if info.type == pfs.FileType.NotFound:
            raise ConfigError(f"{VAR}: bucket {bucket!r} does not exist (create it, or check the name and "
                              "AWS_ENDPOINT_URL).", variable=VAR, bucket=bucket)

    # ------------------------------------------------------------------ reading
    def list_files(self, rel: str, suffix: str = ".parquet") -> list[tuple[str, int, int]]:
        """``(path, size, mtime_ns)`` of every file under ``rel`` ending in ``suffix``, sorted."""
        import pyarrow.fs as pfs

        try:
            infos = self.fs.get_file_info(pfs.FileSelector(self.path(rel), recursive=True, allow_not_found=True))
        except FileNotFoundError:
            return []
        out = []
        for i in infos:
            if i.type != pfs.FileType.File or not i.path.endswith(suffix) or posixpath.basename(i.path).startswith("."):
                continue
            out.append((i.path, int(i.size or 0), int(i.mtime_ns or 0)))
        out.sort()
        return out

    def read_metadata(self, path: str):  # type: ignore[no-untyped-def]
        import pyarrow.parquet as pq

        return pq.read_metadata(path, filesystem=self.fs)

    def read_table(self, path: str):  # type: ignore[no-untyped-def]
        import pyarrow.parquet as pq

        return pq.read_table(path, filesystem=self.fs)

    def dataset(self, paths: list[str], sub: str, partitions: list[str], schema: Any = None):  # type: ignore[no-untyped-def]
        """A pyarrow dataset over ``paths`` with the Hive partition columns (strings) under ``sub``."""
        import pyarrow as pa
        import pyarrow.dataset as ds

        part = ds.partitioning(pa.schema([(p, pa.string()) for p in partitions]), flavor="hive")
        return ds.dataset(paths, filesystem=self.fs, format="parquet", partitioning=part,
                          partition_base_dir=self.path(sub), schema=schema)

    # ------------------------------------------------------------------ writing
    def write_parquet(self, rel: str, table: Any, **kw: Any) -> str:
        """Write ``table`` to ``rel`` atomically (a reader sees all of it or nothing); returns its path."""
        import pyarrow.parquet as pq

        kw.setdefault("compression", "zstd")
        target = self.path(rel)
        if not self.remote:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            tmp = posixpath.join(posixpath.dirname(target), f".{posixpath.basename(target)}.{uuid.uuid4().hex[:6]}.tmp")
            pq.write_table(table, tmp, **kw)
            os.replace(tmp, target)
            return target
        tmp = self.path(f"_tmp/{uuid.uuid4().hex}.parquet")
        pq.write_table(table, tmp, filesystem=self.fs, **kw)
        try:
            self.fs.move(tmp, target)  # S3: CopyObject (server side), then DeleteObject of the temp
        except Exception:
            self.delete(tmp)
            raise
        return target

    def delete(self, path: str) -> None:
        try:
            self.fs.delete_file(path)
        except FileNotFoundError:
            pass


def open_objects(location: LogLocation, *, check: bool = True) -> ObjectStore:
    store = ObjectStore(location)
    if check:
        store.check()
    return store


def content_name(prefix: str, names: list[str]) -> str:
    """A file name derived from the names it merges: two compactions of the same segments write one file."""
    digest = hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:16]
    return f"{prefix}-{digest}.parquet"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "no detail"
