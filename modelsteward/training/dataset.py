"""Logs -> a filtered, de-duplicated, PII-redacted chat dataset, built inside DuckDB.

The whole pipeline is SQL over the log store's ``logs`` view, so 1M rows build in seconds:

1. window: rows of the use case with ``since <= ts < until``;
2. filters, applied in this order, each row counted under the first one it fails:
   ``status_not_ok``, ``not_primary`` (canary and shadow calls are experiments, not the product),
   ``eval_holdout`` (request ids in ``eval_holdouts``), ``unrated`` / ``feedback_below``
   (only with ``min_feedback``), ``judge_below`` (``metadata.judge_score``, only with
   ``min_judge_score``; rows without a judge score pass), ``malformed`` (messages not a list of
   system/user/assistant messages with text content, or an empty response), ``too_short`` /
   ``too_long`` (characters of the response / of the whole conversation);
3. the use case's initial data (JSONL of ``{"messages": [...]}``, last message from the
   assistant) joins here: it skips the log filters but nothing after;
4. exact duplicates (same lower-cased user/assistant text and response; the system prompt is
   ignored, it is shared by most rows) are removed, keeping the preferred row: initial data
   first, then the best feedback, then the newest;
5. PII redaction of every message and response (``modelsteward.privacy`` through ``pii.py``; an
   RE2 pre-filter skips values that cannot hold anything); nothing unredacted is ever written;
6. near duplicates: MinHash over word 3-grams of the redacted non-system text, LSH banding,
   candidate pairs verified on their signatures (``_near_dups``);
7. a content-hash split into train / validation (stable: the same row lands in the same split
   on every rebuild), files ordered by content hash, a card with the counts per filter and a
   sha256 over both files.  Only the logged response (what the gateway produced) is a training
   target: assistant turns in the request history were written by the client and are written with
   ``"weight": 0``.

Decisions: near-duplicate detection runs in SQL rather than datasketch's Python ``MinHashLSH``
(about 100 us per row in Python, far over the 20 s budget for 1M rows); the band/row split for a
threshold comes from datasketch's own optimiser.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from modelsteward.errors import InsufficientData, InvalidInput
from modelsteward.timeutil import window_start
from modelsteward.training.pii import install, redact

__all__ = ["DatasetSpec", "DatasetCard", "build_from_connection", "load_initial_data", "lsh_params", "dataset_hash"]

log = logging.getLogger(__name__)

FILTER_ORDER = (
    "status_not_ok", "not_primary", "eval_holdout", "unrated", "feedback_below", "judge_below",
    "malformed", "too_short", "too_long",
)
_P31 = 2147483647  # Mersenne prime 2^31-1 for the universal hashes


class DatasetSpec(BaseModel):
    """What to build; validated before any query runs."""

    use_case: str
    since: str | None = Field(default="30d", description="window start: 30d, 12h, 2w, an ISO date, or None for all")
    until: dt.datetime | None = None
    min_feedback: float | None = Field(default=None, ge=-1.0, le=1.0)
    keep_unrated: bool = Field(default=False, description="with min_feedback, keep rows nobody rated")
    min_judge_score: float | None = None
    min_response_chars: int = Field(default=1, ge=0)
    max_chars: int = Field(default=16_000, ge=1, description="upper bound on the characters of the whole conversation")
    initial_path: str | None = None
    validation_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    near_dup_threshold: float | None = Field(default=0.8, gt=0.0, le=1.0, description="None disables near-dup removal")
    num_perm: int = Field(default=32, ge=8, le=128)
    min_rows: int = Field(default=16, ge=1, description="refuse when fewer training rows remain")

    @field_validator("since")
    @classmethod
    def _since(cls, v: str | None) -> str | None:
        if v in (None, "", "all"):
            return None
        window_start(v, iso_dates=True)
        return v


class DatasetCard(BaseModel):
    """What was built, from what, and how many rows each stage removed."""

    use_case: str
    path: str
    train_path: str
    validation_path: str
    train_rows: int
    validation_rows: int
    sha256: str
    counts: dict[str, int]
    window: dict[str, str | None]
    spec: dict[str, Any]
    created_at: str
    mlflow_run_id: str | None = None

    def short_hash(self) -> str:
        return self.sha256[:12]


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) minimising false positives + negatives at ``threshold`` (datasketch's optimiser)."""
    from datasketch.lsh import _optimal_param

    # Candidates are verified on their signatures afterwards, so weigh recall over precision.
    b, r = _optimal_param(threshold, num_perm, 0.2, 0.8)
    return int(b), int(r)


# ---------------------------------------------------------------------------------------------- initial data
def load_initial_data(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL of ``{"messages": [...]}`` (or ``{"prompt", "response"|"completion"}``) rows.

    Returns ``{"messages": [...], "response": str}`` with the final assistant turn split off.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidInput(f"Initial data file {str(p)!r} does not exist.")
    rows: list[dict[str, Any]] = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{p}:{n}: not JSON ({exc.msg}).") from None
        if isinstance(obj, dict) and isinstance(obj.get("messages"), list):
            msgs = obj["messages"]
            ok = bool(msgs) and all(
                isinstance(m, dict) and m.get("role") in ("system", "user", "assistant") and isinstance(m.get("content"), str)
                for m in msgs
            )
            if not ok or msgs[-1]["role"] != "assistant" or len(msgs) < 2:
                raise InvalidInput(f"{p}:{n}: messages must be role/content pairs ending with an assistant turn.")
            rows.append({"messages": [{"role": m["role"], "content": m["content"]} for m in msgs[:-1]],
                         "response": msgs[-1]["content"]})
        elif isinstance(obj, dict) and isinstance(obj.get("prompt"), str):
            resp = obj.get("response", obj.get("completion"))
            if not isinstance(resp, str):
                raise InvalidInput(f"{p}:{n}: a prompt row needs a string 'response' or 'completion'.")
            rows.append({"messages": [{"role": "user", "content": obj["prompt"]}], "response": resp})
        else:
            raise InvalidInput(f"{p}:{n}: expected {{\"messages\": [...]}} or {{\"prompt\", \"response\"}}.")
    return rows


# ---------------------------------------------------------------------------------------------- SQL pipeline
def _exec(con: Any, sql: str, params: list[Any] | None = None) -> None:
    import time

    t0 = time.perf_counter()
    con.execute(sql, params or []).fetchall()  # drain: DuckDB refuses new work while a result is open
    log.debug("%.2fs %s", time.perf_counter() - t0, " ".join(sql.split())[:90])


def _count(con: Any, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def build_from_connection(
    con: Any,
    spec: DatasetSpec,
    out_dir: Path,
    *,
    holdout_ids: list[str] | None = None,
    initial_rows: list[dict[str, Any]] | None = None,
    now: dt.datetime | None = None,
) -> DatasetCard:
    """Run the pipeline on a DuckDB connection that has a ``logs`` view; write files to ``out_dir``."""
    import pyarrow as pa

    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    start = window_start(spec.since, now, iso_dates=True)
    until = spec.until or now
    counts: dict[str, int] = {}

    con.register("ds_holdout_src", pa.table({"request_id": pa.array(list(holdout_ids or []), pa.string())}))
    _exec(con, "CREATE OR REPLACE TEMP TABLE ds_holdout AS SELECT DISTINCT request_id FROM ds_holdout_src")

    where = ["use_case = ?", "ts < ?"]
    params: list[Any] = [spec.use_case, until]
    if start is not None:
        where.append("ts >= ?")
        params.append(start)
    fb, judge = spec.min_feedback, spec.min_judge_score
    fb_unrated = "FALSE" if fb is None or spec.keep_unrated else "feedback IS NULL"
    fb_below = "FALSE" if fb is None else f"feedback < {float(fb)!r}"
    judge_below = (
        "FALSE" if judge is None
        else f"TRY_CAST(json_extract_string(metadata, '$.judge_score') AS DOUBLE) < {float(judge)!r}"
    )
    _exec(con, f"""
        CREATE OR REPLACE TEMP TABLE ds_tagged AS
        SELECT request_id, ts, feedback, messages, response,
          CASE
            WHEN coalesce(status, 'ok') <> 'ok' THEN 'status_not_ok'
            WHEN coalesce(role, 'primary') <> 'primary' THEN 'not_primary'
            WHEN request_id IN (SELECT request_id FROM ds_holdout) THEN 'eval_holdout'
            WHEN {fb_unrated} THEN 'unrated'
            WHEN {fb_below} THEN 'feedback_below'
            WHEN coalesce({judge_below}, FALSE) THEN 'judge_below'
          END AS dropped
        FROM logs WHERE {' AND '.join(where)}
    """, params)

    # One JSON parse per row: messages must be a non-empty list of {role: system|user|assistant,
    # content: string} and the response non-empty, else the row is 'malformed'; length bounds next.
    msg_t = "STRUCT(role VARCHAR, content VARCHAR)[]"
    bad_msg = ("coalesce(m.role NOT IN ('system', 'user', 'assistant'), TRUE) "
               "OR coalesce(json_type(m.content) <> 'VARCHAR', TRUE)")
    _exec(con, f"""
        CREATE OR REPLACE TEMP TABLE ds_conv AS
        SELECT 1 AS src, rid_src, ts, feedback, msgs, response,
               CASE WHEN malformed THEN 'malformed'
                    WHEN length(trim(response)) < {spec.min_response_chars} THEN 'too_short'
                    WHEN coalesce(list_sum(list_transform(msgs, lambda m: length(m.content))), 0) + length(response)
                         > {spec.max_chars} THEN 'too_long' END AS dropped
        FROM (
          SELECT request_id AS rid_src, ts, feedback, response,
                 raw IS NULL OR len(raw) = 0 OR len(list_filter(raw, lambda m: {bad_msg})) > 0
                   OR response IS NULL OR length(trim(response)) = 0 AS malformed,
                 CAST(list_transform(raw, lambda m: struct_pack(role := m.role, content := m.content ->> '$'))
                      AS {msg_t}) AS msgs
          FROM (SELECT *, TRY(json_transform(messages, '[{{"role": "VARCHAR", "content": "JSON"}}]')) AS raw
                FROM ds_tagged WHERE dropped IS NULL))
    """)
    rows = con.execute(
        "SELECT dropped, count(*) FROM ds_tagged GROUP BY 1 UNION ALL "
        "SELECT 'kept:' || coalesce(dropped, ''), count(*) FROM ds_conv GROUP BY 1"
    ).fetchall()
    tally = {k: int(v) for k, v in rows}
    counts["logs_in_window"] = sum(v for k, v in tally.items() if not str(k).startswith("kept:"))
    for reason in FILTER_ORDER:
        counts[reason] = tally.get(reason, 0) + tally.get(f"kept:{reason}", 0)
    counts["logs_kept"] = tally.get("kept:", 0)

    # Initial data joins the pool (src 0: preferred when duplicates are resolved).
    init = initial_rows or []
    counts["initial_rows"] = len(init)
    if init:
        tbl = pa.table({
            "rid_src": pa.array([f"initial:{i}" for i in range(len(init))], pa.string()),
            "msgs": pa.array([r["messages"] for r in init],
                             pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            "response": pa.array([r["response"] for r in init], pa.string()),
        })
        con.register("ds_initial_src", tbl)
        _exec(con, "INSERT INTO ds_conv SELECT 0, rid_src, NULL, NULL, msgs, response, NULL FROM ds_initial_src")

    # Exact duplicates: same lower-cased non-system text + response; keep the preferred row.
    text = ("lower(array_to_string(list_transform(list_filter(msgs, lambda m: m.role <> 'system'), "
            "lambda m: m.content), ' ') || ' ' || response)")
    _exec(con, f"""
        CREATE OR REPLACE TEMP TABLE ds_exact AS
        SELECT * FROM (
          SELECT src, rid_src, msgs, response,
                 row_number() OVER (ORDER BY src, feedback DESC NULLS LAST, ts DESC NULLS LAST, rid_src) AS rid,
                 hash({text}) AS k
          FROM ds_conv WHERE dropped IS NULL)
        QUALIFY rid = min(rid) OVER (PARTITION BY k)
    """)
    pool = counts["logs_kept"] + counts["initial_rows"]
    counts["exact_duplicates"] = pool - _count(con, "ds_exact")

    # Redaction (modelsteward.privacy, registered as a DuckDB function; the SQL pre-filter skips
    # values that cannot hold anything, so most rows never reach Python).
    red_sql = install(con)
    red, red_resp = red_sql("m.content"), red_sql("response")
    _exec(con, f"""
        CREATE OR REPLACE TEMP TABLE ds_red AS
        SELECT rid, red_msgs AS msgs, red_response AS response,
               red_response IS DISTINCT FROM response OR red_msgs IS DISTINCT FROM msgs AS had_pii
        FROM (SELECT rid, msgs, response, {red_resp} AS red_response,
                     list_transform(msgs, lambda m: struct_pack(role := m.role, content := {red})) AS red_msgs
              FROM ds_exact)
    """)
    counts["redacted_rows"] = _count(con, "ds_red WHERE had_pii")

    final = "ds_red"
    counts["near_duplicates"] = 0
    if spec.near_dup_threshold is not None and spec.near_dup_threshold < 1.0:
        counts["near_duplicates"] = _near_dups(con, text, spec.near_dup_threshold, spec.num_perm)
        final = "ds_near"

    # Stable content-hash split.
    vf = int(round(spec.validation_fraction * 10_000))
    _exec(con, f"""
        CREATE OR REPLACE TEMP TABLE ds_final AS
        SELECT content_key, messages,
               CASE WHEN md5_number(content_key) % 10000 < {vf} THEN 'validation' ELSE 'train' END AS split
        FROM (SELECT md5(to_json(msgs)::VARCHAR || chr(31) || response) AS content_key,
                     {_MESSAGES_JSON} AS messages
              FROM {final})
    """)
    n_val = _count(con, "ds_final WHERE split = 'validation'")
    n_all = _count(con, "ds_final")
    if vf > 0 and n_val == 0 and n_all >= 2:  # tiny sets: keep one validation row
        _exec(con, "UPDATE ds_final SET split = 'validation' WHERE content_key = (SELECT min(content_key) FROM ds_final)")
        n_val = 1
    counts["validation_rows"] = n_val
    counts["train_rows"] = n_all - n_val
    if counts["train_rows"] < spec.min_rows:
        shown = ", ".join(f"{k}={v}" for k, v in counts.items())
        raise InsufficientData(
            f"Only {counts['train_rows']} training rows remain for use case {spec.use_case!r} "
            f"(need {spec.min_rows}); counts per filter: {shown}. Widen --since, lower --min-feedback "
            "or add initial data (--initial FILE).",
            counts=counts,
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    train_p, val_p = out_dir / "train.jsonl", out_dir / "validation.jsonl"
    for split, path in (("train", train_p), ("validation", val_p)):
        _write_jsonl(con, split, path)
    digest = dataset_hash(train_p, val_p)
    card = DatasetCard(
        use_case=spec.use_case, path=str(out_dir), train_path=str(train_p), validation_path=str(val_p),
        train_rows=counts["train_rows"], validation_rows=n_val, sha256=digest, counts=counts,
        window={"since": start.isoformat() if start else None, "until": until.isoformat()},
        spec=spec.model_dump(mode="json"), created_at=now.isoformat(timespec="seconds"),
    )
    (out_dir / "card.json").write_text(card.model_dump_json(indent=2))
    return card


# The written conversation: the request history, then the gateway's response.  Assistant turns of
# the history were written by the client (anyone holding a key can put words in the model's mouth),
# so they stay context with ``"weight": 0`` (OpenAI's fine-tuning convention); only the response the
# gateway produced is a training target (``training/data.py`` honours the weights).
_MESSAGES_JSON = (
    "list_append(list_transform(msgs, lambda m: CASE WHEN m.role = 'assistant' "
    "THEN json_object('role', m.role, 'content', m.content, 'weight', 0) "
    "ELSE json_object('role', m.role, 'content', m.content) END), "
    "json_object('role', 'assistant', 'content', response))::JSON"
)


def _write_jsonl(con: Any, split: str, path: Path) -> None:
    """One ``{"messages": [...]}`` per line, ordered by content hash (deterministic bytes)."""
    tmp = path.with_suffix(".jsonl.tmp")
    con.execute(
        f"COPY (SELECT messages FROM ds_final WHERE split = '{split}' ORDER BY content_key) "
        f"TO '{str(tmp).replace(chr(39), chr(39) * 2)}' (FORMAT JSON)"
    ).fetchall()
    tmp.replace(path)


def _near_dups(con: Any, text: str, threshold: float, num_perm: int) -> int:
    """MinHash + LSH over word 3-grams of ``text`` (on ``ds_red``); creates ``ds_near``; returns rows removed.

    One 64-bit hash per shingle; the ``num_perm`` min-hashes are ``min(h XOR c_j)`` with constants
    whose top bits differ (each is a min-wise hash of the random shingle hashes; together they act
    like one-permutation hashing with densification), so the cost is one pass over the shingles.
    Candidate pairs from the LSH bands (tuned for recall) are kept only when their signatures
    agree on at least ``threshold`` of the positions.
    """
    bands, rows = lsh_params(threshold, num_perm)
    rng = random.Random(1)  # fixed constants: the same input always yields the same output
    top = max(1, (num_perm - 1).bit_length())
    consts = [(j << (64 - top)) | rng.getrandbits(64 - top) for j in range(num_perm)]
    mins = ", ".join(f"min(xor(h, {c}::UBIGINT)) AS m{j}" for j, c in enumerate(consts))
    _exec(con, f"""
        CREATE OR REPLACE TEMP TABLE ds_sig AS
        SELECT rid, {mins} FROM (
          SELECT rid, CASE WHEN len(ws) < 3 THEN [hash(array_to_string(ws, ' '))]
                      ELSE list_transform(range(1, len(ws) - 1), lambda i: hash(ws[i], ws[i + 1], ws[i + 2])) END AS hs
          FROM (SELECT rid, string_split({text}, ' ')[1:256] AS ws FROM ds_red)
        ), unnest(hs) AS t(h) GROUP BY rid
    """)
    band_sql = " UNION ALL ".join(
        f"SELECT rid, {j} AS band, hash({', '.join(f'm{j * rows + k}' for k in range(rows))}) AS bk FROM ds_sig"
        for j in range(bands)
    )
    eq = " + ".join(f"(a.m{i} = b.m{i})::INT" for i in range(num_perm))
    _exec(con, f"""
        CREATE OR REPLACE TEMP TABLE ds_dup AS
        WITH bk AS ({band_sql}),
             cand AS (SELECT DISTINCT rid, first FROM (
                        SELECT rid, min(rid) OVER (PARTITION BY band, bk) AS first FROM bk) WHERE first < rid)
        SELECT DISTINCT c.rid FROM cand c JOIN ds_sig a ON a.rid = c.rid JOIN ds_sig b ON b.rid = c.first
        WHERE ({eq}) >= {threshold * num_perm!r}
    """)
    _exec(con, "CREATE OR REPLACE TEMP TABLE ds_near AS SELECT * FROM ds_red WHERE rid NOT IN (SELECT rid FROM ds_dup)")
    return _count(con, "ds_dup")


def dataset_hash(train: Path, validation: Path) -> str:
    """sha256 over both split files (names included, so swapping rows between splits changes it)."""
    h = hashlib.sha256()
    for name, path in (("train", train), ("validation", validation)):
        h.update(name.encode() + b"\0")
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def redact_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Python-side redaction of chat rows (used for rows that never pass through DuckDB)."""
    return [{"messages": [{**m, "content": redact(m["content"])} for m in r["messages"]]} for r in rows]
