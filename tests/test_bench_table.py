"""``make bench``'s one table (issue 28 item 5): rows parsed from benchmark output, the README rewritten
between its markers, a README without markers refused, an unknown benchmark name refused."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        return mod
    finally:
        sys.path.remove(str(BENCH))


def test_rows_round_trip_and_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    table = _load("_table")
    r = table.row("x", "thing", 10.0, "s", baseline=20.0, baseline_what="old", target="<= 15 s", met=True)
    assert r["ratio"] == 0.5
    out = capsys.readouterr().out
    assert table.parse("noise\n" + out + "more noise\n") == [r]
    assert table.parse("BENCH-ROW {not json\n") == []


def test_readme_table_replaced_between_markers(tmp_path: Path) -> None:
    run_all = _load("run_all")
    readme = tmp_path / "README.md"
    readme.write_text(f"# T\nbefore\n{run_all.BEGIN}\nold figure 99\n{run_all.END}\nafter\n")
    rows = [{"bench": "rank", "what": "rank models", "figure": 67.4, "unit": "ms", "baseline": 374.2,
             "baseline_what": "pure Python", "ratio": 0.18, "target": "<= 1000 ms", "met": True, "note": None},
            {"bench": "dataset", "what": "build 1M rows", "figure": 25.0, "unit": "s", "baseline": None,
             "baseline_what": None, "ratio": None, "target": "<= 20 s", "met": False, "note": None}]
    run_all.write_readme(readme, {"date": "2026-12-07 10:00 UTC", "cpus": 2, "load_before": "0.1",
                                  "load_after": "0.2", "quick": False, "rows": rows, "failed": []})
    text = readme.read_text()
    assert "old figure 99" not in text and text.startswith("# T\nbefore\n") and text.endswith("after\n")
    assert "| rank | rank models | 67.4 ms | 374 ms (pure Python) | 0.18x | <= 1000 ms | yes |" in text
    assert "| dataset | build 1M rows | 25 s | — | — | <= 20 s | **no** |" in text
    assert "load average 0.1 before and 0.2 after" in text
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        run_all.write_readme(bare, {"date": "d", "cpus": 1, "load_before": "0", "load_after": "0", "quick": True,
                                    "rows": [], "failed": []})


def test_unknown_benchmark_refused() -> None:
    out = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "no_such_bench"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown benchmark(s): no_such_bench" in out.stderr and "rank" in out.stderr
