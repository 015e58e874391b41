"""Mean time to recovery (issue 16): a canary whose upstream starts failing under steady gateway
traffic, and the time until the control loop inside ``steward serve`` rolls it back.

    .venv/bin/python bench/mttr.py [--guard-every 10] [--rps 20] [--runs 3]

Per run: a fresh workspace; two wire-level OpenAI-compatible upstreams (``modelsteward.fakes.upstream``:
stable, candidate); a use case on the stable model with the candidate deployed as a 25 % canary
(its evaluation recorded as passed); ``steward serve`` with ``STEWARD_GUARD_EVERY`` = the guard
interval and no agent cycles; a client sending ``--rps`` chat completions per second through the
gateway.  After a healthy warm-up (plus a random fraction of the guard interval, so that the
failure falls at a random phase of the checks) the candidate's upstream answers 500 to everything.  Measured:
- ``t_fail``: the first failed candidate call in the request log;
- ``t_min``: when the candidate's window first shows the failure to a check: the guardrails'
  ``min_requests`` in it and an error rate above ``error_rate_abs`` (the gateway's circuit breaker
  stops calling a failing model for 30 s after 3 failures in a row, so this can take a while);
- ``t_rb``: the rollback in ``deployment_history`` (who did it: guard check or rollout analysis).
Prints time to rollback from t_fail and from t_min against the guard interval; the goal is a
rollback within two guard intervals of t_min (Argo Rollouts and Flagger analyse once a minute by
default: their detection time alone is up to 60 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os

# the bench's wire-level upstreams run on this machine: their host is approved for egress (as
# `steward hosts allow` would), inherited by the `steward serve` it starts
os.environ.setdefault("STEWARD_ALLOWED_HOSTS", "127.0.0.1,localhost")
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

UC = "chat"


def _setup(home: Path, stable_url: str, cand_url: str) -> None:
    from modelsteward.context import open_steward
    from modelsteward.settings import Settings
    from modelsteward.storage.db import session_scope
    from modelsteward.storage.models import TestResult, UseCase
    from modelsteward.tools.base import ToolContext, call_tool

    st = open_steward(Settings(home=home))
    try:
        reg = st.registry
        for name, url in (("stable", stable_url), ("cand", cand_url)):
            reg.register_model("custom", name, base_url=url, price_in_per_m="1", price_out_per_m="2")
        reg.add_use_case(UC, description="mttr benchmark", model="custom:stable")
        # the rollout's own analysis waits for a long window; the guard check must catch the failure
        reg.update_use_case(UC, config={"rollout": {"min_requests": 50, "min_duration_s": 3600}})
        with session_scope(st.sessions) as s:
            uc = s.query(UseCase).filter_by(name=UC).one()
            s.add(TestResult(use_case_id=uc.id, candidate_model_id="custom:cand", baseline_model_id="custom:stable",
                             verdict="pass", passed=True, sample_count=50, metrics={}, reasons=[]))
        call_tool("deploy", {"use_case": UC, "model_id": "custom:cand", "strategy": "canary",
                             "steps": [25, 50, 75, 100]}, ToolContext(steward=st, actor="cli:bench"))
    finally:
        st.close()


def _traffic(base: str, rps: float, stop: threading.Event, counts: dict[str, int]) -> None:
    import httpx

    body = {"model": UC, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
    with httpx.Client(timeout=10) as c:
        nxt = time.monotonic()
        while not stop.is_set():
            try:
                r = c.post(base + "/v1/chat/completions", json=body)
                counts["ok" if r.status_code == 200 else "error"] += 1
            except httpx.HTTPError:
                counts["error"] += 1
            nxt += 1.0 / rps
            time.sleep(max(0.0, nxt - time.monotonic()))


def _rollback(home: Path) -> Any:
    from modelsteward.context import open_steward
    from modelsteward.settings import Settings
    from modelsteward.storage.db import session_scope
    from modelsteward.storage.models import DeploymentHistory

    st = open_steward(Settings(home=home), migrate=False)
    try:
        with session_scope(st.sessions) as s:
            return s.query(DeploymentHistory).filter(
                DeploymentHistory.action.in_(("rollback", "rollout_abort"))).order_by(DeploymentHistory.id).first()
    finally:
        st.close()


def _log_times(home: Path, since: dt.datetime, min_requests: int,
               spike: float) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(first failed candidate call, first moment the candidate's window shows the failure: at
    least ``min_requests`` requests and an error rate above ``spike``, what a guard check flags)."""
    from modelsteward.context import open_steward
    from modelsteward.settings import Settings

    st = open_steward(Settings(home=home), migrate=False)
    try:
        rows = st.logs.query(
            "SELECT ts, status FROM logs WHERE use_case = ? AND model_id = 'custom:cand' AND ts >= ? ORDER BY ts",
            [UC, since - dt.timedelta(minutes=15)])
    finally:
        st.close()
    first_fail = next((r["ts"] for r in rows if r["status"] == "error" and r["ts"] >= since), None)
    n = errors = 0
    for r in rows:
        n += 1
        errors += r["status"] == "error"
        if first_fail is not None and r["ts"] >= first_fail and n >= min_requests and errors / n > spike:
            return first_fail, r["ts"]
    return first_fail, None


def one_run(guard_every: float, rps: float, warmup: float, timeout: float) -> dict[str, Any]:
    from modelsteward.fakes.upstream import InstantUpstream
    from modelsteward.bounds import section_of
    from modelsteward.storage.models import utcnow

    sys.path.insert(0, str(REPO / "tests"))
    from gateway_helpers import free_port, wait_http

    stable, cand = InstantUpstream().start(), InstantUpstream().start()
    with tempfile.TemporaryDirectory(prefix="steward-mttr-") as tmp:
        home = Path(tmp) / "ws"
        _setup(home, stable.url, cand.url)
        port = free_port()
        env = {**os.environ, "STEWARD_HOME": str(home), "STEWARD_GUARD_EVERY": f"{guard_every:g}s",
               "STEWARD_AGENT_EVERY": "off", "STEWARD_LEADER_LEASE": "5s", "PYTHONPATH": str(REPO)}
        env.pop("STEWARD_DATABASE_URL", None)
        log = open(Path(tmp) / "serve.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-c", "from modelsteward.cli import main; main()", "serve",
                                 "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        stop = threading.Event()
        counts = {"ok": 0, "error": 0}
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/healthz", timeout=120)
            t = threading.Thread(target=_traffic, args=(base, rps, stop, counts), daemon=True)
            t.start()
            # a random phase against the guard ticks (the loop's first check runs at its start)
            time.sleep(warmup + random.uniform(0, guard_every))
            fail_at = utcnow()
            cand.error_rate = 1.0
            deadline = time.monotonic() + timeout
            rb = None
            while rb is None and time.monotonic() < deadline:
                time.sleep(0.25)
                rb = _rollback(home)
            stop.set()
            t.join(15)
        finally:
            proc.terminate()
            proc.wait(60)
            log.close()
            stable.stop()
            cand.stop()
        guard = section_of({}, "guardrails")
        first_fail, judgeable = _log_times(home, fail_at, int(guard["min_requests"]), float(guard["error_rate_abs"]))
    if rb is None or first_fail is None:
        return {"rolled_back": False, "requests": counts}
    return {
        "rolled_back": True, "by": rb.actor, "reason": rb.reason[:120], "requests": counts,
        "from_fail_s": (rb.created_at - first_fail).total_seconds(),
        "from_min_s": (rb.created_at - (judgeable or first_fail)).total_seconds(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--guard-every", type=float, default=10.0, help="STEWARD_GUARD_EVERY in seconds (>= 5)")
    ap.add_argument("--rps", type=float, default=20.0, help="gateway requests per second")
    ap.add_argument("--warmup", type=float, default=8.0, help="healthy seconds before the candidate fails")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    g = args.guard_every
    results = []
    for i in range(args.runs):
        r = one_run(g, args.rps, args.warmup, timeout=max(120.0, 10 * g))
        results.append(r)
        if r["rolled_back"]:
            print(f"run {i + 1}: rollback {r['from_fail_s']:.1f} s after the first failed call, "
                  f"{r['from_min_s']:.1f} s after the window showed it ({r['from_min_s'] / g:.2f} guard intervals); "
                  f"by {r['by']}: {r['reason']}; client saw {r['requests']}", flush=True)
        else:
            print(f"run {i + 1}: NO rollback within the timeout; client saw {r['requests']}", flush=True)
    done = [r for r in results if r["rolled_back"]]
    if not done:
        return 1
    med_fail = statistics.median(r["from_fail_s"] for r in done)
    med_min = statistics.median(r["from_min_s"] for r in done)
    worst = max(r["from_min_s"] for r in done)
    print(f"MTTR (guard interval {g:g} s, {args.rps:g} req/s): median {med_fail:.1f} s from the first failure, "
          f"{med_min:.1f} s from the window showing it ({med_min / g:.2f} intervals; worst {worst / g:.2f}); "
          f"goal <= 2 intervals: {'met' if worst <= 2 * g else 'NOT met'}; "
          f"a once-a-minute analysis (Argo Rollouts / Flagger default) detects after up to 60 s")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _table import row

    row("mttr", f"canary rollback after its window shows the failure (median of {len(done)}, guard every {g:g} s)",
        round(med_min, 1), "s", baseline=60.0, baseline_what="once-a-minute analysis, worst case",
        target=f"<= 2 guard intervals ({2 * g:g} s)", met=worst <= 2 * g,
        note=f"{med_fail:.1f} s from the first failed call; worst {worst:.1f} s")
    return 0 if len(done) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
