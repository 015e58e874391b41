"""Logs -> a filtered, de-duplicated, PII-redacted chat dataset, built inside DuckDB.

The whole pipeline is SQL over the log store's ``logs`` view, so 1M rows build in seconds:

1. window: rows of the use case with ``since <= ts < until``;
2. filters, applied in this order, each row counted under the first one it fails:
   ``status_not_ok``, ``not_primary`` (canary and shadow calls are experiments, not the product),
   ``imported`` (rows whose ``origin`` is ``import:<format>``: another system's answers are not
   this gateway's product; ``include_imported`` / ``--include-imported`` keeps them),
   ``eval_holdout`` (request ids in ``eval_holdouts``), ``unrated`` / ``feedback_below``
   (only with ``min_feedback``), ``judge_below`` (``metadata.judge_score``, only with
   ``min_judge_score``; rows without a judge score pass), ``malformed`` (messages not OpenAI chat
   messages -- a known role, text or content parts, an assistant turn with content or
   ``tool_calls``, a tool turn with ``tool_call_id`` -- or an answer with neither text nor tool
   calls), ``non_text_content`` (an image or audio part: the trainer fine-tunes text-only models),
   ``bad_tool_call`` (an answer's tool call without a name or whose arguments are not a JSON
   object: never a target), ``too_short`` / ``too_long`` (characters of the response / of the
   whole conversation, tool calls' arguments and tool results included);
3. the use case's initial data (JSONL in the same format as the output, see
   ``load_initial_data``) joins here: it skips the log filters but nothing after;
4. exact duplicates (same lower-cased user/assistant/tool text, tool calls as ``name(arguments)``,
   and response; the system prompt is ignored, it is shared by most rows) are removed, keeping the
   preferred row: initial data first, then the best feedback, then the newest;
5. PII redaction of every text (``modelsteward.privacy`` through ``pii.py``; an RE2 pre-filter
   skips values that cannot hold anything): message contents, tool results, tool calls'
   arguments, the response and the request's tool definitions (JSON stays valid JSON); nothing
   unredacted is ever written;
6. near duplicates: MinHash over word 3-grams of the redacted non-system text, LSH banding,
   candidate pairs verified on their signatures (``neardup.near_dups``);
7. a content-hash split into train / validation (stable: the same row lands in the same split
   on every rebuild), files ordered by content hash, a card with the counts per filter and a
   sha256 over both files.  Only the logged response (what the gateway produced) is a training
   target: assistant turns in the request history were written by the client and are written with
   ``"weight": 0``.

Output rows are OpenAI's fine-tuning format for chat with function calling:
``{"messages": [...], "tools": [...], "parallel_tool_calls": bool}`` (``tools`` and
``parallel_tool_calls`` only when the logged request had them); the final assistant turn carries
the answer's ``content`` and/or ``tool_calls`` (``content`` null for a tool-call-only answer); tool
turns keep ``tool_call_id``.  Content parts are flattened to their text (parts joined by a space,
as ``exchange.message_text`` reads them); ``developer`` turns are written as ``system``.  The
request's ``response_format`` is not written: OpenAI's format has no field for it (a structured
answer is learned as its JSON text).

Decisions: near-duplicate detection runs in SQL rather than datasketch's Python ``MinHashLSH``
(``neardup.py`` says why).  Redaction collects the distinct values that pass the pre-filter and
redacts each once, across processes when there are many (``pii.redact_all``; issue 28).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from modelsteward.errors import InsufficientData, InvalidInput
from modelsteward.timeutil import window_start
from modelsteward.privacy import redact_obj
from modelsteward.training.neardup import exec_sql as _exec
from modelsteward.training.neardup import lsh_params, near_dups
from modelsteward.training.pii import install, install_json, prefilter_sql, redact_all

__all__ = ["DatasetSpec", "DatasetCard", "build_from_connection", "load_initial_data", "lsh_params", "dataset_hash"]

log = logging.getLogger(__name__)

FILTER_ORDER = (
    "status_not_ok", "not_primary", "imported", "eval_holdout", "unrated", "feedback_below", "judge_below",
    "malformed", "non_text_content", "bad_tool_call", "too_short", "too_long",
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
    include_imported: bool = Field(default=False, description="also learn from imported rows (origin import:*)")

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


# ---------------------------------------------------------------------------------------------- initial data
_TEXT_PARTS = ("text", "input_text", "output_text")


def _internal_message(m: dict[str, Any], at: str) -> dict[str, Any]:
    """A checked chat message as the pipeline's message struct (role, content text, calls, call_id)."""
    from modelsteward.exchange import message_text

    content = m.get("content")
    if isinstance(content, list):
        media = [p.get("type") for p in content if p.get("type") not in _TEXT_PARTS]
        if media:
            raise InvalidInput(f"{at}: has a {media[0]} part; fine-tuning here trains text-only models "
                               "(drop the part or the row).")
        content = message_text({"content": content})
    if m["role"] == "function" or (m["role"] == "assistant" and content is None and not m.get("tool_calls")):
        raise InvalidInput(f"{at}: legacy function messages are not supported; use tool_calls and tool turns.")
    calls = [{"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
             for c in m.get("tool_calls") or ()] or None
    role = "system" if m["role"] == "developer" else m["role"]
    return {"role": role, "content": content, "calls": calls, "call_id": m.get("tool_call_id")}


def _initial_row(obj: Any, where: str) -> dict[str, Any]:
    from modelsteward.exchange import check_messages, check_request

    if isinstance(obj, dict) and isinstance(obj.get("prompt"), str):
        resp = obj.get("response", obj.get("completion"))
        if not isinstance(resp, str):
            raise InvalidInput(f"{where}: a prompt row needs a string 'response' or 'completion'.")
        return {"messages": [{"role": "user", "content": obj["prompt"], "calls": None, "call_id": None}],
                "response": resp, "calls": None, "tools": None, "ptc": None}
    if not isinstance(obj, dict) or "messages" not in obj:
        raise InvalidInput(f"{where}: expected {{\"messages\": [...], \"tools\": [...]}} or {{\"prompt\", \"response\"}}.")
    msgs = check_messages(obj["messages"], where)
    req = check_request({k: obj[k] for k in ("tools", "parallel_tool_calls") if obj.get(k) is not None}, where)
    if len(msgs) < 2 or msgs[-1]["role"] != "assistant":
        raise InvalidInput(f"{where}: messages must be chat messages ending with an assistant turn (the target).")
    ptc = req.get("parallel_tool_calls")
    if ptc is not None and not isinstance(ptc, bool):
        raise InvalidInput(f"{where}: 'parallel_tool_calls' must be true or false.")
    conv = [_internal_message(m, f"{where}, message {n}") for n, m in enumerate(msgs, 1)]
    last = conv.pop()
    return {"messages": conv, "response": last["content"] or "", "calls": last["calls"],
            "tools": json.dumps(req["tools"]) if req.get("tools") else None, "ptc": ptc}


def load_initial_data(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL of training rows in the output's format (``{"messages": [...], "tools": [...],
    "parallel_tool_calls": ...}``; the last message is the assistant target, with content and/or
    ``tool_calls``) or ``{"prompt", "response"|"completion"}`` rows.

    Messages are checked with ``exchange.check_messages`` / ``check_request`` (one-line errors
    naming the line); an image or audio part is refused (text-only training).  Returns the
    pipeline's rows: ``messages`` (role, content, calls, call_id), ``response``, ``calls``,
    ``tools`` (JSON text), ``ptc``.
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
        rows.append(_initial_row(obj, f"{p}:{n}"))
    return rows


# ---------------------------------------------------------------------------------------------- SQL pipeline
def _count(con: Any, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _tag(con: Any, spec: DatasetSpec, holdout_ids: list[str] | None, start: dt.datetime | None,
         until: dt.datetime) -> None:
    """Stage 1 (``ds_tagged``): the window's rows, each tagged with the first filter that drops it."""
    import pyarrow as pa

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
    imported = "FALSE" if spec.include_imported else "coalesce(starts_with(origin, 'import:'), FALSE)"
    judge_below = (
        "FALSE" if judge is None
        else f"TRY_CAST(json_extract_string(metadata, '$.judge_score') AS DOUBLE) < {float(judge)!r}"
    )
    _exec(con, f"""
        CREATE OR REPLACE TEMP TABLE ds_tagged AS
        SELECT request_id, ts, feedback, messages, response, request, answer,
          CASE
            WHEN coalesce(status, 'ok') <> 'ok' THEN 'status_not_ok'
            WHEN coalesce(role, 'primary') <> 'primary' THEN 'not_primary'
            WHEN {imported} THEN 'imported'
            WHEN request_id IN (SELECT request_id FROM ds_holdout) THEN 'eval_holdout'
            WHEN {fb_unrated} THEN 'unrated'
            WHEN {fb_below} THEN 'feedback_below'
            WHEN coalesce({judge_below}, FALSE) THEN 'judge_below'
          END AS dropped
        FROM logs WHERE {' AND '.join(where)}
    """, params)


# The pipeline's row: msgs (MSG_T[]), response (the answer's text), calls (the answer's tool calls,
# CALL_T[] or NULL), tools (the request's tool definitions, JSON text or NULL), ptc (its
# parallel_tool_calls).  Plain-text rows have NULL calls / call_id / tools / ptc.
CALL_T = "STRUCT(id VARCHAR, name VARCHAR, arguments VARCHAR)"
MSG_T = f"STRUCT(role VARCHAR, content VARCHAR, calls {CALL_T}[], call_id VARCHAR)"
_RAW_MSGS = '[{"role": "VARCHAR", "content": "JSON", "tool_calls": "JSON", "tool_call_id": "VARCHAR"}]'
_RAW_CALLS = '[{"id": "VARCHAR", "function": {"name": "VARCHAR", "arguments": "JSON"}}]'
_TEXT_TYPES = "('text', 'input_text', 'output_text')"


def _calls_sql(raw: str) -> str:
    """JSON tool calls -> ``CALL_T[]`` (arguments as text; an empty list is NULL)."""
    return (f"nullif(list_transform(TRY(json_transform({raw}, '{_RAW_CALLS}')), lambda c: struct_pack("
            "id := c.id, name := c.function.name, arguments := CASE WHEN json_type(c.function.arguments) = 'VARCHAR' "
            "THEN c.function.arguments ->> '$' ELSE c.function.arguments::VARCHAR END)), [])")


def _bad_calls_sql(calls: str) -> str:
    """Tool calls that cannot be a target: no name, or arguments that are not a JSON object."""
    return (f"coalesce(len(list_filter({calls}, lambda c: c.name IS NULL OR "
            "coalesce(TRY(json_type(c.arguments)), '') <> 'OBJECT')) > 0, FALSE)")


# one parsed message -> MSG_T (content parts flattened to their text; developer read as system)
_MSG_SQL = (
    "struct_pack(role := CASE WHEN m.role = 'developer' THEN 'system' ELSE m.role END, "
    "content := CASE json_type(m.content) WHEN 'VARCHAR' THEN m.content ->> '$' WHEN 'ARRAY' THEN array_to_string("
    f"list_transform(list_filter(TRY_CAST(m.content AS JSON[]), lambda p: (p ->> '$.type') IN {_TEXT_TYPES}), "
    "lambda p: p ->> '$.text'), ' ') END, "
    f"calls := CASE WHEN m.tool_calls IS NOT NULL THEN {_calls_sql('m.tool_calls')} END, call_id := m.tool_call_id)"
)
# a message that is not OpenAI chat: unknown role, content neither text nor parts, an assistant turn
# without content or tool calls (or with unreadable ones), a tool turn without tool_call_id
_BAD_MSG = (
    "coalesce(m.role NOT IN ('system', 'developer', 'user', 'assistant', 'tool'), TRUE) "
    "OR coalesce(json_type(m.content) NOT IN ('VARCHAR', 'ARRAY'), FALSE) "
    "OR (m.content IS NULL AND (m.role <> 'assistant' OR m.tool_calls IS NULL)) "
    "OR (m.role = 'tool' AND m.tool_call_id IS NULL) "
    f"OR (m.tool_calls IS NOT NULL AND (m.role <> 'assistant' OR {_calls_sql('m.tool_calls')} IS NULL "
    f"OR {_bad_calls_sql(_calls_sql('m.tool_calls'))}))"
)
_MEDIA = (f"json_type(m.content) = 'ARRAY' AND len(list_filter(TRY_CAST(m.content AS JSON[]), "
          f"lambda p: coalesce(p ->> '$.type', '') NOT IN {_TEXT_TYPES})) > 0")
# the readable text of a message / of the answer: content, then tool calls as name(arguments)
_CALLS_TEXT = "array_to_string(list_transform({c}, lambda c: c.name || '(' || c.arguments || ')'), ' ')"
_MSG_TEXT = f"(coalesce(m.content, '') || coalesce(' ' || {_CALLS_TEXT.format(c='m.calls')}, ''))"
_ANSWER_TEXT = f"(coalesce(response, '') || coalesce(' ' || {_CALLS_TEXT.format(c='calls')}, ''))"


def _convert(con: Any, spec: DatasetSpec, counts: dict[str, int]) -> None:
    """Stage 2 (``ds_conv``): parse each kept row's exchange; count every filter's drops."""
    _exec(con, f"""
        CREATE OR REPLACE TEMP TABLE ds_conv AS
        SELECT 1 AS src, rid_src, ts, feedback, msgs, response, calls, tools, ptc,
               CASE WHEN malformed THEN 'malformed'
                    WHEN media THEN 'non_text_content'
                    WHEN {_bad_calls_sql('calls')} THEN 'bad_tool_call'
                    WHEN calls IS NULL AND length(trim(response)) < {spec.min_response_chars} THEN 'too_short'
                    WHEN coalesce(list_sum(list_transform(msgs, lambda m: length({_MSG_TEXT}))), 0)
                         + length({_ANSWER_TEXT}) > {spec.max_chars} THEN 'too_long' END AS dropped
        FROM (
          SELECT request_id AS rid_src, ts, feedback, coalesce(response, '') AS response, calls, ptc,
                 CASE WHEN tools IS NOT NULL AND json_type(tools) = 'ARRAY' AND json_array_length(tools) > 0
                      THEN tools::VARCHAR END AS tools,
                 raw IS NULL OR len(raw) = 0 OR len(list_filter(raw, lambda m: {_BAD_MSG})) > 0
                   OR (calls IS NULL AND length(trim(coalesce(response, ''))) = 0) AS malformed,
                 coalesce(len(list_filter(raw, lambda m: {_MEDIA})) > 0, FALSE) AS media,
                 CAST(list_transform(raw, lambda m: {_MSG_SQL}) AS {MSG_T}[]) AS msgs
          FROM (SELECT *, TRY(json_transform(messages, '{_RAW_MSGS}')) AS raw,
                       CASE WHEN answer IS NOT NULL THEN {_calls_sql("json_extract(answer, '$.tool_calls')")} END AS calls,
                       CASE WHEN request IS NOT NULL THEN json_extract(request, '$.tools') END AS tools,
                       CASE WHEN request IS NOT NULL
                            THEN TRY_CAST(json_extract_string(request, '$.parallel_tool_calls') AS BOOLEAN) END AS ptc
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


def _add_initial(con: Any, init: list[dict[str, Any]], counts: dict[str, int]) -> None:
    """Stage 3: initial data joins the pool (src 0: preferred when duplicates are resolved)."""
    import pyarrow as pa

    counts["initial_rows"] = len(init)
    if init:
        call_t = pa.list_(pa.struct([("id", pa.string()), ("name", pa.string()), ("arguments", pa.string())]))
        msg_t = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string()), ("calls", call_t),
                                    ("call_id", pa.string())]))
        tbl = pa.table({
            "rid_src": pa.array([f"initial:{i}" for i in range(len(init))], pa.string()),
            "msgs": pa.array([r["messages"] for r in init], msg_t),
            "response": pa.array([r["response"] for r in init], pa.string()),
            "calls": pa.array([r.get("calls") for r in init], call_t),
            "tools": pa.array([r.get("tools") for r in init], pa.string()),
            "ptc": pa.array([r.get("ptc") for r in init], pa.bool_()),
        })
        con.register("ds_initial_src", tbl)
        _exec(con, "INSERT INTO ds_conv SELECT 0, rid_src, NULL, NULL, msgs, response, calls, tools, ptc, NULL "
                   "FROM ds_initial_src")


# the lower-cased non-system text + answer of a row (the key of both duplicate stages)
_DEDUP_TEXT = (f"lower(array_to_string(list_transform(list_filter(msgs, lambda m: m.role <> 'system'), "
               f"lambda m: {_MSG_TEXT}), ' ') || ' ' || {_ANSWER_TEXT})")


def _drop_exact_duplicates(con: Any, counts: dict[str, int]) -> None:
    """Stage 4 (``ds_exact``): exact duplicates (same lower-cased non-system text + answer) keep the preferred row.

    The ranking and the choice run on narrow rows (table row id, rank, key); the kept rows' columns
    are joined back afterwards, so the sort never carries the conversations (issue 28: at 10M rows
    that sort was what ran out of memory)."""
    _exec(con, f"""
        CREATE OR REPLACE TEMP TABLE ds_exact AS
        WITH keys AS (
          SELECT rowid AS r, hash({_DEDUP_TEXT}) AS k,
                 row_number() OVER (ORDER BY src, feedback DESC NULLS LAST, ts DESC NULLS LAST, rid_src) AS rid
          FROM ds_conv WHERE dropped IS NULL),
        keep AS (SELECT arg_min(r, rid) AS r, min(rid) AS rid, k FROM keys GROUP BY k)
        SELECT c.src, c.rid_src, c.msgs, c.response, c.calls, c.tools, c.ptc, keep.rid, keep.k
        FROM keep JOIN ds_conv c ON c.rowid = keep.r
    """)
    pool = counts["logs_kept"] + counts["initial_rows"]
    counts["exact_duplicates"] = pool - _count(con, "ds_exact")


def _redact(con: Any, counts: dict[str, int]) -> None:
    """Stage 5 (``ds_red``): redaction of every text (modelsteward.privacy, registered as DuckDB
    functions; the SQL pre-filter skips values that cannot hold anything, so most rows never reach
    Python).  Tool arguments and tool definitions are JSON: ``redact_json`` keeps them JSON.

    The distinct values that pass the pre-filter are collected first and redacted once each, in
    parallel processes when there are many (``pii.redact_all``); the SQL pass then looks them up."""
    pre = prefilter_sql()
    args_of = "list_transform({c}, lambda c: c.arguments)"
    texts = con.execute(f"""
        SELECT DISTINCT v FROM (SELECT response AS v FROM ds_exact
          UNION ALL SELECT unnest(list_transform(msgs, lambda m: m.content)) FROM ds_exact)
        WHERE v IS NOT NULL AND regexp_matches(v, {pre})
    """).fetchall()
    jsons = con.execute(f"""
        SELECT DISTINCT v FROM (SELECT tools AS v FROM ds_exact
          UNION ALL SELECT unnest({args_of.format(c='calls')}) FROM ds_exact WHERE calls IS NOT NULL
          UNION ALL SELECT unnest(flatten(list_transform(msgs, lambda m: coalesce({args_of.format(c='m.calls')}, []))))
                    FROM ds_exact)
        WHERE v IS NOT NULL AND regexp_matches(v, {pre})
    """).fetchall()
    red = install(con, known=redact_all(v for (v,) in texts))
    red_json = install_json(con, known=redact_all((v for (v,) in jsons), as_json=True))
    args = red_json("c.arguments")

    def calls(c: str) -> str:
        return f"list_transform({c}, lambda c: struct_pack(id := c.id, name := c.name, arguments := {args}))"

    _exec(con, f"""
        CREATE OR REPLACE TEMP TABLE ds_red AS
        SELECT rid, red_msgs AS msgs, red_response AS response, red_calls AS calls, red_tools AS tools, ptc,
               red_response IS DISTINCT FROM response OR red_msgs IS DISTINCT FROM msgs
                 OR red_calls IS DISTINCT FROM calls OR red_tools IS DISTINCT FROM tools AS had_pii
        FROM (SELECT rid, msgs, response, calls, tools, ptc, {red("response")} AS red_response,
                     CASE WHEN calls IS NOT NULL THEN {calls("calls")} END AS red_calls,
                     CASE WHEN tools IS NOT NULL THEN {red_json("tools")} END AS red_tools,
                     list_transform(msgs, lambda m: struct_pack(role := m.role, content := {red("m.content")},
                       calls := CASE WHEN m.calls IS NOT NULL THEN {calls("m.calls")} END,
                       call_id := m.call_id)) AS red_msgs
              FROM ds_exact)
    """)
    counts["redacted_rows"] = _count(con, "ds_red WHERE had_pii")


def _split(con: Any, spec: DatasetSpec, final: str, counts: dict[str, int]) -> None:
    """Stage 7 (``ds_final``): stable content-hash split; refuse too few training rows."""
    vf = int(round(spec.validation_fraction * 10_000))
    _exec(con, f"""
        CREATE OR REPLACE TEMP TABLE ds_final AS
        SELECT md5(line) AS content_key, line,
               CASE WHEN md5_number(md5(line)) % 10000 < {vf} THEN 'validation' ELSE 'train' END AS split
        FROM (SELECT ({_ROW_JSON})::VARCHAR AS line FROM {final})
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


class _StageClock:
    """Records the wall seconds since the previous call under a stage name (when asked to)."""

    def __init__(self, into: dict[str, float] | None) -> None:
        import time

        self.into, self._wall, self._cpu = into, time.perf_counter, time.process_time
        self.last = (self._wall(), self._cpu())

    def __call__(self, stage: str) -> None:
        now = (self._wall(), self._cpu())
        if self.into is not None:
            self.into[stage] = round(now[0] - self.last[0], 3)
            self.into[f"{stage}_cpu"] = round(now[1] - self.last[1], 3)
        self.last = now


def build_from_connection(
    con: Any,
    spec: DatasetSpec,
    out_dir: Path,
    *,
    holdout_ids: list[str] | None = None,
    initial_rows: list[dict[str, Any]] | None = None,
    now: dt.datetime | None = None,
    stages: dict[str, float] | None = None,
) -> DatasetCard:
    """Run the pipeline on a DuckDB connection that has a ``logs`` view; write files to ``out_dir``.

    ``stages``, when given, receives the wall seconds of each stage (``tag``, ``convert``, ``exact``,
    ``redact``, ``near``, ``split``, ``write``) and its CPU seconds (``<stage>_cpu``, this process's
    threads: DuckDB's included, redaction workers not): ``bench/dataset.py`` prints them."""
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    start = window_start(spec.since, now, iso_dates=True)
    until = spec.until or now
    counts: dict[str, int] = {}
    clock = _StageClock(stages)

    _tag(con, spec, holdout_ids, start, until)
    clock("tag")
    _convert(con, spec, counts)
    _add_initial(con, initial_rows or [], counts)
    clock("convert")
    _drop_exact_duplicates(con, counts)
    clock("exact")
    _redact(con, counts)
    clock("redact")
    final = "ds_red"
    counts["near_duplicates"] = 0
    if spec.near_dup_threshold is not None and spec.near_dup_threshold < 1.0:  # stage 6 (``ds_near``)
        counts["near_duplicates"] = near_dups(con, _DEDUP_TEXT, spec.near_dup_threshold, spec.num_perm)
        final = "ds_near"
    clock("near")
    _split(con, spec, final, counts)
    clock("split")

    out_dir.mkdir(parents=True, exist_ok=True)
    train_p, val_p = out_dir / "train.jsonl", out_dir / "validation.jsonl"
    for split, path in (("train", train_p), ("validation", val_p)):
        _write_jsonl(con, split, path)
    digest = dataset_hash(train_p, val_p)
    clock("write")
    card = DatasetCard(
        use_case=spec.use_case, path=str(out_dir), train_path=str(train_p), validation_path=str(val_p),
        train_rows=counts["train_rows"], validation_rows=counts["validation_rows"], sha256=digest, counts=counts,
        window={"since": start.isoformat() if start else None, "until": until.isoformat()},
        spec=spec.model_dump(mode="json"), created_at=now.isoformat(timespec="seconds"),
    )
    (out_dir / "card.json").write_text(card.model_dump_json(indent=2))
    return card


# The written row: the request history, then the gateway's answer.  Assistant turns of the history
# were written by the client (anyone holding a key can put words in the model's mouth), so they
# stay context with ``"weight": 0`` (OpenAI's fine-tuning convention); only the answer the gateway
# produced is a training target (``training/data.py`` honours the weights).  Keys that do not apply
# are left out (no ``tool_calls: null`` on a user turn: chat templates test for the key).
_CALLS_JSON = ("list_transform({c}, lambda c, i: json_object('id', coalesce(c.id, 'call_' || (i - 1)), "
               "'type', 'function', 'function', json_object('name', c.name, 'arguments', c.arguments)))")
_MSG_JSON = (
    "CASE WHEN m.role = 'assistant' AND m.calls IS NOT NULL THEN json_object('role', m.role, 'content', m.content, "
    f"'tool_calls', {_CALLS_JSON.format(c='m.calls')}, 'weight', 0) "
    "WHEN m.role = 'assistant' THEN json_object('role', m.role, 'content', m.content, 'weight', 0) "
    "WHEN m.role = 'tool' THEN json_object('role', m.role, 'content', m.content, 'tool_call_id', m.call_id) "
    "ELSE json_object('role', m.role, 'content', m.content) END"
)
_ANSWER_JSON = (
    "CASE WHEN calls IS NULL THEN json_object('role', 'assistant', 'content', response) "
    "ELSE json_object('role', 'assistant', 'content', nullif(response, ''), "
    f"'tool_calls', {_CALLS_JSON.format(c='calls')}) END"
)
_MESSAGES_JSON = f"list_append(list_transform(msgs, lambda m: {_MSG_JSON}), {_ANSWER_JSON})::JSON"
_ROW_JSON = (
    f"CASE WHEN tools IS NULL AND ptc IS NULL THEN json_object('messages', {_MESSAGES_JSON}) "
    f"ELSE json_merge_patch(json_object('messages', {_MESSAGES_JSON}), "
    "json_object('tools', tools::JSON, 'parallel_tool_calls', ptc)) END"
)


def _write_jsonl(con: Any, split: str, path: Path) -> None:
    """One row per line, ordered by content hash (deterministic bytes)."""
    tmp = path.with_suffix(".jsonl.tmp")
    res = con.execute(f"SELECT line FROM ds_final WHERE split = '{split}' ORDER BY content_key")
    with open(tmp, "w", encoding="utf-8") as fh:
        while batch := res.fetchmany(50_000):
            fh.write("".join(line + "\n" for (line,) in batch))
    tmp.replace(path)


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
    return [redact_obj(r) for r in rows]
