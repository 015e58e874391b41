"""Gateway benchmark (issue 3): wrk load at 32 connections and at 1 connection on three paths.

    .venv/bin/python bench/gateway.py [--duration 10] [--litellm /tmp/litellm-venv/bin/litellm]

Paths, all in one run against the same instant OpenAI-compatible upstream
(``modelsteward.fakes.upstream``, one process):
  direct    wrk -> upstream
  bare      wrk -> a bare pass-through (Starlette + aiohttp client + uvloop/httptools, nothing else):
            the issue's reference for what plain Python costs
  gateway   wrk -> ``python -m modelsteward.gateway`` (routing from the registry, a gateway key
            checked on every request, every request logged to the log store's write-ahead file)
  gateway2  the same with ``--workers 2`` (two processes sharing the port, like two replicas)
  gw-aiohttp the gateway with ``STEWARD_HTTP_TRANSPORT=aiohttp`` (the library client instead of
            ``providers/fasthttp.py`` for upstream calls): the hand-written client is kept only
            while it is at least 1.3x this path (issue 18)
  litellm   wrk -> LiteLLM proxy (one worker, no database, master-key auth), when installed: pass --litellm
            or have it at /tmp/litellm-venv/bin/litellm (install it in its own venv; never into .venv)

Prints req/s, p50 and p99 per path and connection count, and the ratios measured in this run.
The headline added latency at 1 connection is the median of ``--rounds`` paired runs (direct, then
gateway, taking turns: a loaded machine's drift hits both sides of a pair).  The in-process probe
(``--cpu-probe``, skipped with ``--no-cpu``) times the gateway's own Python work per request with a
stub upstream: far less noisy than wrk's p50 on a shared machine.  The headline figures are
``bench/_table.row`` lines (``BENCH-ROW``).  The upstream's host is approved first (``steward
hosts allow``): an unapproved host makes every gateway answer a 502 (egress), and a run in which any
gateway path answered non-2xx is reported as failed instead of measured.
Needs ``wrk`` (Debian package).  Exits non-zero when the direct or gateway path fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
BODY = '{"model":"%s","messages":[{"role":"user","content":"Hello, how are you today?"}],"max_tokens":16}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, timeout: float = 120.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except Exception:  # noqa: BLE001
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up within {timeout:.0f}s")


def lua(path: Path, model: str, auth: str | None) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = '{BODY % model}'", 'wrk.headers["Content-Type"] = "application/json"']
    if auth:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {auth}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def run_wrk(url: str, script: Path, conns: int, duration: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=duration + 60,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    total = re.search(r"(\d+) requests in", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": _ms(p50.group(1)) if p50 else float("nan"),
        "p99_ms": _ms(p99.group(1)) if p99 else float("nan"),
        "requests": int(total.group(1)) if total else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def setup_workspace(home: Path, upstream_url: str) -> str:
    env = {**os.environ, "STEWARD_HOME": str(home)}
    code = (
        "from modelsteward.context import open_steward\n"
        "from modelsteward.gateway.keys import create_key\n"
        "from modelsteward.tools.base import ToolContext, call_tool\n"
        "st = open_steward()\n"
        # the upstream's host approved as `steward hosts allow` does (egress): otherwise every gateway
        # request is refused with a 502 and the benchmark measures the refusal, not the gateway
        f"call_tool('hosts_allow', {{'url': {upstream_url!r}, 'reason': 'benchmark upstream'}}, "
        "ToolContext(steward=st, actor='cli:bench'))\n"
        f"st.registry.register_model('custom', 'instant', base_url={upstream_url!r}, price_in_per_m='0.15', "
        "price_out_per_m='0.6')\n"
        "st.registry.add_use_case('chat', model='custom:instant')\n"
        "print(create_key(st.registry, 'bench', ['chat']).key)\n"
        "st.close()\n"
    )
    return subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=REPO).stdout.strip()


def count_rows(home: Path) -> int:
    env = {**os.environ, "STEWARD_HOME": str(home)}
    code = ("from modelsteward.context import open_steward\nst = open_steward()\n"
            "print(st.logs.query('SELECT count(*) AS n FROM logs')[0]['n'])\nst.close()\n")
    return int(subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=REPO).stdout)


def find_litellm(arg: str | None) -> str | None:
    for cand in (arg, "/tmp/litellm-venv/bin/litellm", shutil.which("litellm")):
        if cand and Path(cand).exists():
            return cand
    return None


LITELLM_KEY = "sk-bench-" + os.urandom(16).hex()


def start_litellm(exe: str, upstream_url: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cfg = tmp / "litellm.yaml"
    cfg.write_text(
        "model_list:\n  - model_name: chat\n    litellm_params:\n      model: openai/instant\n"
        f"      api_base: {upstream_url}\n      api_key: sk-fake\n"
        "litellm_settings:\n  telemetry: false\n  drop_params: true\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
           "LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "true", "LITELLM_MASTER_KEY": LITELLM_KEY}
    env.pop("DATABASE_URL", None)
    log = open(tmp / "litellm.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([exe, "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
                             "--num_workers", "1"], stdout=log, stderr=subprocess.STDOUT, env=env)
    wait_up(f"http://127.0.0.1:{port}/health/liveliness", timeout=180)
    return proc, f"http://127.0.0.1:{port}/v1/chat/completions"


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def serve_bare(port: int, upstream: str) -> None:
    """The reference pass-through: Starlette route -> aiohttp POST -> same bytes back."""
    import aiohttp
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    state: dict[str, aiohttp.ClientSession] = {}

    async def chat(request):  # type: ignore[no-untyped-def]
        sess = state.get("s")
        if sess is None:
            sess = state["s"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        async with sess.post(f"{upstream}/chat/completions", data=await request.body(),
                             headers={"Content-Type": "application/json"}) as r:
            return Response(await r.read(), status_code=r.status, media_type="application/json")

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="warning",
                access_log=False)


CPU_BODY = BODY % "chat"
CPU_ANSWER = (b'{"id":"chatcmpl-x","object":"chat.completion","created":1765000000,"model":"instant","choices":'
              b'[{"index":0,"message":{"role":"assistant","content":"I am fine, thank you for asking today!"},'
              b'"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}')


def cpu_probe(batches: int, per_batch: int) -> None:
    """In-process CPU per request (``--cpu-probe``, in its own workspace): the gateway's ASGI app called
    directly, its upstream transport replaced by a stub answering at once (no sockets, no wrk, no other
    process), so what is timed is the gateway's own Python work per request -- key check, body checks,
    routing, the provider call, the log row and its WAL append, the answer.  The baseline, the same
    loop through a minimal ASGI app that reads the body, calls the same stub and answers its bytes, is
    the floor any Python pass-through pays here.  Prints one JSON line: the median (and min) over the
    batches of process CPU microseconds per request (the writer thread included)."""
    import asyncio
    import statistics

    from modelsteward.providers import transport

    async def stub_post(self, url, body, headers, *, timeout=60.0, connect_timeout=5.0):  # type: ignore[no-untyped-def]
        return 200, CPU_ANSWER

    transport.FastHTTPTransport.post = stub_post  # type: ignore[method-assign]
    from modelsteward.context import open_steward
    from modelsteward.gateway.app import create_gateway_app
    from modelsteward.gateway.keys import create_key

    st = open_steward()
    st.registry.register_model("custom", "instant", base_url="http://127.0.0.1:9/v1", price_in_per_m="0.15",
                               price_out_per_m="0.6")
    st.registry.add_use_case("chat", model="custom:instant")
    key = create_key(st.registry, "bench", ["chat"]).key
    app = create_gateway_app(st)
    state = app.state.gateway
    raw = CPU_BODY.encode()
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
             "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1", "asgi": {"version": "3.0"},
             "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 50000),
             "headers": [(b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json"),
                         (b"authorization", f"Bearer {key}".encode()), (b"content-length", str(len(raw)).encode())]}
    stub = transport.FastHTTPTransport()

    async def floor(scope, receive, send):  # type: ignore[no-untyped-def]
        msg = await receive()
        status, out = await stub.post("http://127.0.0.1:9/v1/chat/completions", msg["body"], {})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})

    async def run() -> dict[str, Any]:
        await state.start()
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                statuses.append(msg["status"])

        out: dict[str, Any] = {}
        for name, target in (("gateway", app), ("floor", floor)):
            for _ in range(per_batch * 2):  # warm-up
                await target(dict(scope), receive, send)
            per = []
            for _ in range(batches):
                c0 = time.process_time()
                for _ in range(per_batch):
                    await target(dict(scope), receive, send)
                per.append(1e6 * (time.process_time() - c0) / per_batch)
            out[name] = {"median_us": statistics.median(per), "min_us": min(per)}
        out["non_200"] = sum(1 for x in statuses if x != 200)
        await state.stop()
        return out

    try:
        print(json.dumps(asyncio.run(run())))
    finally:
        st.close()


def run_cpu_probe(tmp: Path) -> dict[str, Any] | None:
    home = tmp / "cpu-ws"
    env = {**os.environ, "STEWARD_HOME": str(home), "STEWARD_ALLOWED_HOSTS": "127.0.0.1"}
    done = subprocess.run([PY, __file__, "--cpu-probe"], env=env, capture_output=True, text=True, cwd=REPO,
                          timeout=600)
    if done.returncode != 0:
        print(f"in-process CPU probe failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def paired_p50(paths: dict[str, tuple[str, Path]], rounds: int, seconds: int) -> dict[str, list[float]]:
    """wrk at 1 connection, direct and gateway taking turns ``rounds`` times: p50 of each run."""
    out: dict[str, list[float]] = {"direct": [], "gateway": [], "non_2xx": []}
    for _ in range(rounds):
        for name in ("direct", "gateway"):
            r = run_wrk(*paths[name], 1, seconds)
            out[name].append(r["p50_ms"])
            out["non_2xx"].append(float(r["non_2xx"]))
    return out


def start_paths(tmp: Path, procs: list[subprocess.Popen[bytes]]) -> tuple[dict[str, tuple[str, Path]], Path]:
    """The upstream, the bare pass-through and the gateways started; their wrk targets."""
    up_port = free_port()
    procs.append(subprocess.Popen([PY, "-m", "modelsteward.fakes.upstream", "--port", str(up_port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO))
    upstream = f"http://127.0.0.1:{up_port}/v1"
    wait_up(f"{upstream}/models")
    home = tmp / "ws"
    key = setup_workspace(home, upstream)
    env = {**os.environ, "STEWARD_HOME": str(home)}
    bare_port, gw_port, gw2_port, gwa_port = free_port(), free_port(), free_port(), free_port()
    procs.append(subprocess.Popen([PY, __file__, "--serve-bare", str(bare_port), upstream],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO))
    for port, workers, transport in ((gw_port, 1, "fasthttp"), (gw2_port, 2, "fasthttp"), (gwa_port, 1, "aiohttp")):
        procs.append(subprocess.Popen([PY, "-m", "modelsteward.gateway", "--port", str(port), "--workers",
                                       str(workers)], env={**env, "STEWARD_HTTP_TRANSPORT": transport},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO))
    for port in (gw_port, gw2_port, gwa_port):
        wait_up(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {key}"})
    wait_up(f"http://127.0.0.1:{bare_port}/v1/chat/completions")
    paths = {
        "direct": (f"{upstream}/chat/completions", lua(tmp / "direct.lua", "instant", None)),
        "bare": (f"http://127.0.0.1:{bare_port}/v1/chat/completions", lua(tmp / "bare.lua", "instant", None)),
        "gateway": (f"http://127.0.0.1:{gw_port}/v1/chat/completions", lua(tmp / "gw.lua", "chat", key)),
        "gateway2": (f"http://127.0.0.1:{gw2_port}/v1/chat/completions", lua(tmp / "gw.lua", "chat", key)),
        "gw-aiohttp": (f"http://127.0.0.1:{gwa_port}/v1/chat/completions", lua(tmp / "gw.lua", "chat", key)),
    }
    return paths, home


def add_litellm(args: argparse.Namespace, paths: dict[str, tuple[str, Path]], tmp: Path,
                procs: list[subprocess.Popen[bytes]]) -> str:
    exe = find_litellm(args.litellm)
    if not exe:
        return ("LiteLLM is not installed: no peer measured (python -m venv /tmp/litellm-venv && "
                "/tmp/litellm-venv/bin/pip install 'litellm[proxy]')")
    upstream = paths["direct"][0].rsplit("/chat/completions", 1)[0]
    try:
        lp, lurl = start_litellm(exe, upstream, tmp)
        procs.append(lp)
        paths["litellm"] = (lurl, lua(tmp / "litellm.lua", "chat", LITELLM_KEY))
        return ""
    except Exception as exc:  # noqa: BLE001 - the peer is optional
        log = (tmp / "litellm.log").read_text(errors="replace").strip().splitlines()[-3:]
        return f"LiteLLM did not start ({exc}): " + " | ".join(log)


def print_table(args: argparse.Namespace, results: dict[str, dict[int, dict[str, float]]], note: str) -> None:
    print(f"\nGateway benchmark, {args.duration}s per run, wrk 1 thread; machine: {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print(f"{'path':<10} {'conns':>5} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'non-2xx':>8}")
    for name, by_conn in results.items():
        for conns, r in by_conn.items():
            print(f"{name:<10} {conns:>5} {r['rps']:>10.0f} {r['p50_ms']:>9.3f} {r['p99_ms']:>9.3f} {r['non_2xx']:>8}")
    d, g, g2, b = results["direct"], results["gateway"], results["gateway2"], results["bare"]
    print("\nratios (same run):")
    print(f"  gateway / direct at 32 conns: {100 * g[32]['rps'] / d[32]['rps']:.1f}% of direct req/s "
          f"(2 workers: {100 * g2[32]['rps'] / d[32]['rps']:.1f}%)")
    print(f"  bare pass-through / direct at 32 conns: {100 * b[32]['rps'] / d[32]['rps']:.1f}%; "
          f"gateway / bare: {g[32]['rps'] / b[32]['rps']:.2f}x")
    ga = results["gw-aiohttp"]
    print(f"  gateway fasthttp / gateway aiohttp (STEWARD_HTTP_TRANSPORT): {g[32]['rps'] / max(ga[32]['rps'], 1e-9):.2f}x "
          f"req/s at 32 conns, {g[1]['rps'] / max(ga[1]['rps'], 1e-9):.2f}x at 1 conn (keep the hand-written client "
          "only at >= 1.3x)")
    if "litellm" in results:
        lt = results["litellm"]
        print(f"  gateway / LiteLLM at 32 conns: {g[32]['rps'] / max(lt[32]['rps'], 1e-9):.1f}x req/s "
              f"(2 workers: {g2[32]['rps'] / max(lt[32]['rps'], 1e-9):.1f}x)")
        print(f"  LiteLLM / direct at 32 conns: {100 * lt[32]['rps'] / d[32]['rps']:.2f}%")
        print(f"  LiteLLM p50 at 1 conn: {lt[1]['p50_ms']:.3f} ms")
    if note:
        print(f"  {note}")


def report(results: dict[str, dict[int, dict[str, float]]], pairs: dict[str, list[float]],
           cpu: dict[str, Any] | None) -> list[str]:
    """The headline rows (``bench/_table.row``); returns what failed (non-2xx answers)."""
    import statistics

    from _table import row

    d, g, b = results["direct"], results["gateway"], results["bare"]
    problems = [f"{name} answered {int(r['non_2xx'])} non-2xx responses at {conns} connection(s)"
                for name, by_conn in results.items() if name != "litellm" for conns, r in by_conn.items()
                if r["non_2xx"]]
    if any(pairs["non_2xx"]):
        problems.append(f"gateway answered {int(sum(pairs['non_2xx']))} non-2xx responses in the paired runs")
    added = [gw - dr for gw, dr in zip(pairs["gateway"], pairs["direct"])]
    p50_added, p50_direct = statistics.median(added), statistics.median(pairs["direct"])
    print(f"  gateway p50 added at 1 conn: {p50_added:.3f} ms, median of {len(added)} paired runs "
          f"({', '.join(f'{x:.3f}' for x in added)}); direct p50 {p50_direct:.3f} ms; "
          f"single run above: {g[1]['p50_ms'] - d[1]['p50_ms']:.3f} ms")
    ok = not problems
    row("gateway", "added p50 at 1 connection (gateway - direct, median of paired wrk runs)", round(p50_added, 3),
        "ms", baseline=round(p50_direct, 3), baseline_what="direct p50, same runs", target="<= 0.25 ms",
        met=ok and p50_added <= 0.25, note=None if ok else "; ".join(problems))
    row("gateway", "req/s at 32 connections", round(g[32]["rps"]), "req/s", baseline=round(d[32]["rps"]),
        baseline_what="direct (wrk -> upstream), same run", target=">= 15 % of direct",
        met=ok and g[32]["rps"] >= 0.15 * d[32]["rps"])
    row("gateway", "req/s at 32 connections vs the bare pass-through", round(g[32]["rps"]), "req/s",
        baseline=round(b[32]["rps"]), baseline_what="bare Starlette+aiohttp pass-through, same run")
    if cpu is not None:
        row("gateway", "in-process CPU per request (stub upstream, median of batches)",
            round(cpu["gateway"]["median_us"], 1), "us", baseline=round(cpu["floor"]["median_us"], 1),
            baseline_what="minimal ASGI pass-through, same loop and stub",
            note=f"min {cpu['gateway']['min_us']:.1f} us vs {cpu['floor']['min_us']:.1f} us")
        if cpu["non_200"]:
            problems.append(f"in-process probe: {cpu['non_200']} answers were not 200")
    for p in problems:
        print(f"FAILED: {p}; the figures above do not measure the gateway's answers", file=sys.stderr)
    return problems


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]), sys.argv[3])
        return 0
    if len(sys.argv) == 2 and sys.argv[1] == "--cpu-probe":
        cpu_probe(40, 250)
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=5, help="paired direct/gateway wrk runs at 1 connection")
    ap.add_argument("--round-seconds", type=int, default=3, help="seconds per paired run")
    ap.add_argument("--no-cpu", action="store_true", help="skip the in-process CPU probe")
    ap.add_argument("--litellm", default=None, help="path to the litellm executable (own venv)")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="steward-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, dict[int, dict[str, float]]] = {}
    try:
        paths, home = start_paths(tmp, procs)
        litellm_note = add_litellm(args, paths, tmp, procs)
        for name, (url, script) in paths.items():  # warm up connections and caches
            run_wrk(url, script, 4, 2)
        for conns in (32, 1):
            for name, (url, script) in paths.items():
                results.setdefault(name, {})[conns] = run_wrk(url, script, conns, args.duration)
        pairs = paired_p50(paths, args.rounds, args.round_seconds)
        rows_logged = count_rows(home)
    finally:
        for p in reversed(procs):
            stop(p)
    cpu = None if args.no_cpu else run_cpu_probe(tmp)
    print_table(args, results, litellm_note)
    problems = report(results, pairs, cpu)
    g, g2, ga = results["gateway"], results["gateway2"], results["gw-aiohttp"]
    expected = sum(r["requests"] for r in (*g.values(), *g2.values(), *ga.values()))
    print(f"\ngateway log rows written: {rows_logged} (wrk counted {expected} completed requests in the measured runs "
          "plus the warm-up and paired runs)")
    if args.json:
        print(json.dumps({"results": results, "pairs": pairs, "cpu": cpu, "rows_logged": rows_logged,
                          "litellm_note": litellm_note}, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    ok = results["direct"][32]["rps"] > 0 and g[32]["rps"] > 0 and not problems
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
