"""Near-duplicate removal of the dataset build: MinHash + LSH banding, all in DuckDB SQL.

Decisions: the signatures are DuckDB's own functions (``hash`` over word 3-grams, ``min(xor(...))``
per permutation) rather than datasketch's Python ``MinHash`` (about 100 us per row in Python, far
over the 20 s budget for 1M rows); a per-row ``list_min(list_transform(...))`` form and a numpy
``minimum.reduceat`` over the fetched shingle hashes gave the same signatures but no clear gain
(issue 28, measured on 200k rows); the band/row split for a threshold comes from datasketch's own
optimiser.
"""

from __future__ import annotations

import logging
import random
from typing import Any

__all__ = ["lsh_params", "near_dups", "exec_sql"]

log = logging.getLogger(__name__)


def exec_sql(con: Any, sql: str, params: list[Any] | None = None) -> None:
    """Run one statement to the end, logging its time (debug)."""
    import time

    t0 = time.perf_counter()
    con.execute(sql, params or []).fetchall()  # drain: DuckDB refuses new work while a result is open
    log.debug("%.2fs %s", time.perf_counter() - t0, " ".join(sql.split())[:90])


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) minimising false positives + negatives at ``threshold`` (datasketch's optimiser)."""
    from datasketch.lsh import _optimal_param

    # Candidates are verified on their signatures afterwards, so weigh recall over precision.
    b, r = _optimal_param(threshold, num_perm, 0.2, 0.8)
    return int(b), int(r)


def near_dups(con: Any, text: str, threshold: float, num_perm: int) -> int:
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
    exec_sql(con, f"""
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
    exec_sql(con, f"""
        CREATE OR REPLACE TEMP TABLE ds_dup AS
        WITH bk AS ({band_sql}),
             cand AS (SELECT DISTINCT rid, first FROM (
                        SELECT rid, min(rid) OVER (PARTITION BY band, bk) AS first FROM bk) WHERE first < rid)
        SELECT DISTINCT c.rid FROM cand c JOIN ds_sig a ON a.rid = c.rid JOIN ds_sig b ON b.rid = c.first
        WHERE ({eq}) >= {threshold * num_perm!r}
    """)
    exec_sql(con, "CREATE OR REPLACE TEMP TABLE ds_near AS SELECT * FROM ds_red WHERE rid NOT IN (SELECT rid FROM ds_dup)")
    return int(con.execute("SELECT count(*) FROM ds_dup").fetchall()[0][0])
