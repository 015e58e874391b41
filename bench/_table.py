"""One row per measured figure, the same for every benchmark (issue 28 item 5: one table of truth).

A benchmark calls :func:`row` for each figure it wants in ``make bench``'s table: the figure, the
baseline measured in the same run, their ratio, and the target (if the issues set one).  The row is
printed as one line ``BENCH-ROW {json}`` on stdout, beside whatever the benchmark prints for people;
``bench/run_all.py`` collects these lines from every benchmark it runs and prints one table (and can
write the README's "Measured" section from it).

Fields (a stable shape; ``run_all.py --json`` prints a list of them):

- ``bench``: the script's stem (``dataset``), ``what``: what was measured, in a few words;
- ``figure`` / ``unit``: the measured value and its unit (``s``, ``ms``, ``rows/s``, ...);
- ``baseline`` / ``baseline_what``: the same-run baseline and what it is (``None`` when there is none);
- ``ratio``: ``figure / baseline`` unless the benchmark states it (``None`` without a baseline);
- ``target``: the target as text (``"<= 20 s"``), ``met``: whether the figure meets it (``None`` when
  there is no target or it cannot be judged from the figure alone).
"""

from __future__ import annotations

import json
import sys
from typing import Any

PREFIX = "BENCH-ROW "


def row(
    bench: str,
    what: str,
    figure: float,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_what: str | None = None,
    ratio: float | None = None,
    target: str | None = None,
    met: bool | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Print one table row (``BENCH-ROW {json}``) and return it."""
    if ratio is None and baseline not in (None, 0):
        ratio = figure / baseline  # type: ignore[operator]
    out = {
        "bench": bench, "what": what, "figure": figure, "unit": unit,
        "baseline": baseline, "baseline_what": baseline_what,
        "ratio": None if ratio is None else round(float(ratio), 3),
        "target": target, "met": met, "note": note,
    }
    print(PREFIX + json.dumps(out), flush=True)
    return out


def parse(lines: str) -> list[dict[str, Any]]:
    """The rows in a benchmark's output (other lines are ignored)."""
    rows = []
    for line in lines.splitlines():
        if line.startswith(PREFIX):
            try:
                rows.append(json.loads(line[len(PREFIX):]))
            except json.JSONDecodeError:
                print(f"unreadable bench row: {line[:120]}", file=sys.stderr)
    return rows
