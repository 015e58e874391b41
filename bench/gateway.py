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
Needs ``wrk`` (Debian package).  Exits non-zero only when the direct or gateway path fails.
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
        "st = open_steward()\n"
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


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]), sys.argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--litellm", default=None, help="path to the litellm executable (own venv)")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="steward-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, dict[int, dict[str, float]]] = {}
    litellm_note = ""
    try:
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
        exe = find_litellm(args.litellm)
        if exe:
            try:
                lp, lurl = start_litellm(exe, upstream, tmp)
                procs.append(lp)
                paths["litellm"] = (lurl, lua(tmp / "litellm.lua", "chat", LITELLM_KEY))
            except Exception as exc:  # noqa: BLE001 - the peer is optional
                log = (tmp / "litellm.log").read_text(errors="replace").strip().splitlines()[-3:]
                litellm_note = f"LiteLLM did not start ({exc}): " + " | ".join(log)
        else:
            litellm_note = ("LiteLLM is not installed: no peer measured (python -m venv /tmp/litellm-venv && "
                            "/tmp/litellm-venv/bin/pip install 'litellm[proxy]')")
        for name, (url, script) in paths.items():  # warm up connections and caches
            run_wrk(url, script, 4, 2)
        for conns in (32, 1):
            for name, (url, script) in paths.items():
                results.setdefault(name, {})[conns] = run_wrk(url, script, conns, args.duration)
        rows_logged = count_rows(home) if "gateway" in results else 0
    finally:
        for p in reversed(procs):
            stop(p)

    print(f"\nGateway benchmark, {args.duration}s per run, wrk 1 thread; machine: {os.cpu_count()} CPUs\n")
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
    print(f"  gateway p50 added at 1 conn: {g[1]['p50_ms'] - d[1]['p50_ms']:.3f} ms "
          f"(direct {d[1]['p50_ms']:.3f} ms, gateway {g[1]['p50_ms']:.3f} ms)")
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
    if litellm_note:
        print(f"  {litellm_note}")
    expected = sum(r["requests"] for r in (*g.values(), *g2.values(), *ga.values()))
    print(f"\ngateway log rows written: {rows_logged} (wrk counted {expected} completed requests in the measured runs "
          "plus the warm-up)")
    if args.json:
        print(json.dumps({"results": results, "rows_logged": rows_logged, "litellm_note": litellm_note}, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    ok = d[32]["rps"] > 0 and g[32]["rps"] > 0 and g[32]["non_2xx"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
