"""CLI read latency: each read command against ``steward --help``, measured in the same run.

    .venv/bin/python bench/cli_latency.py [--repeat 7]

Runs the installed ``steward`` console script (the one next to this interpreter, this checkout
first on PYTHONPATH) in a fresh workspace holding one use case, two models and a few logged rows,
as a user would: a new process per call.  Prints the median wall time of each command and its
ratio to the median of ``--help`` (runs interleaved, so machine load hits both alike), and the
same for CPU time (user + system of the child process), the steadier figure on a loaded machine.
Bytecode is written and used as in an installed copy (``PYTHONDONTWRITEBYTECODE`` is dropped).
Target (issue 19): every read command within 2x of ``--help``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from _table import row  # noqa: E402
SCRIPT = Path(sys.executable).with_name("steward")

COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "usecase list": ["usecase", "list"],
    "models list": ["models", "list"],
    "rollout status": ["rollout", "status", "--use-case", "story"],
    "logs stats": ["logs", "stats", "--since", "all"],
}


def _run(env: dict[str, str], args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([str(SCRIPT), *args], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _seed(env: dict[str, str], ws: Path) -> None:
    for args in (["init"], ["models", "register", "local", "smollm2-135m-instruct"],
                 ["models", "register", "openai", "gpt-4o-mini", "--price-in", "0.15", "--price-out", "0.6"],
                 ["usecase", "add", "story", "--description", "tells stories", "--model", "local:smollm2-135m-instruct"]):
        subprocess.run([str(SCRIPT), *args], env=env, check=True, stdout=subprocess.DEVNULL)
    rows = ws / "rows.jsonl"
    rows.write_text("".join(json.dumps({
        "ts": time.time() - i, "request_id": f"b{i}", "use_case": "story", "model_id": "local:smollm2-135m-instruct",
        "role": "primary", "messages": [{"role": "user", "content": "hi"}], "response": "hello", "latency_ms": 50 + i,
        "input_tokens": 3, "output_tokens": 5, "cost_usd": 0, "status": "ok"}) + "\n" for i in range(50)))
    subprocess.run([str(SCRIPT), "logs", "import", str(rows)], env=env, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    if not SCRIPT.exists():
        print(f"{SCRIPT} is missing: install the project first (make install)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        env = {**os.environ, "STEWARD_HOME": str(ws), "PYTHONPATH": str(REPO)}
        for k in ("STEWARD_DATABASE_URL", "STEWARD_LOG_DIR", "PYTHONDONTWRITEBYTECODE"):
            env.pop(k, None)
        _seed(env, ws)
        times: dict[str, list[float]] = {name: [] for name in COMMANDS}
        cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for name, argv in COMMANDS.items():  # warm the file cache once
            _run(env, argv)
        for _ in range(args.repeat):
            for name, argv in COMMANDS.items():
                wall, used = _run(env, argv)
                times[name].append(wall)
                cpu[name].append(used)
    base = statistics.median(times["--help"])
    base_cpu = statistics.median(cpu["--help"])
    print(f"{'command':<16} {'median s':>9} {'min s':>7} {'x --help':>9} {'cpu s':>7} {'cpu x':>6}")
    worst = worst_cpu = 0.0
    for name, ts in times.items():
        med, med_cpu = statistics.median(ts), statistics.median(cpu[name])
        ratio, ratio_cpu = med / base, med_cpu / base_cpu
        worst, worst_cpu = max(worst, ratio), max(worst_cpu, ratio_cpu)
        print(f"{name:<16} {med:9.3f} {min(ts):7.3f} {ratio:9.2f} {med_cpu:7.3f} {ratio_cpu:6.2f}")
        if name != "--help":
            row("cli_latency", f"`steward {name}` CPU time (median of {args.repeat})", round(med_cpu, 3), "s",
                baseline=round(base_cpu, 3), baseline_what="`steward --help`", target="<= 2x --help",
                met=ratio_cpu <= 2.0)
    print(f"worst read command: {worst:.2f}x --help wall, {worst_cpu:.2f}x CPU "
          f"(target <= 2x; {args.repeat} runs each, medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
