"""The web console: server-rendered pages (Jinja2) with a little plain JavaScript, all served locally.

Login takes an API token and sets an HTTP-only, SameSite=Strict session cookie (see ``auth``).
Every form that changes something carries a CSRF token bound to the session, and a cross-origin
``Origin`` header is refused.  Pages read storage directly; actions go through the same tools
and rules as the API (``actions.decide`` for approvals, ``call_tool`` for chat).  Scripts come
only from ``/static`` (Content-Security-Policy ``script-src 'self'``); chart data travels in
``<script type="application/json">`` blocks.
"""

from __future__ import annotations

import hmac
import os
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from modelsteward.errors import NotFound, StewardError
from modelsteward.server import auth
from modelsteward.server.deps import ApiError, StewardDep
from modelsteward.server.views import BUCKETS, eval_series, jsonable, traffic_series
from modelsteward.storage import read

__all__ = ["mount_console", "render_error", "templates"]

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["tojson_safe"] = lambda v: jsonable(v)
templates.env.filters["price"] = lambda v: "–" if v is None else f"{float(v):g}"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


class LoginRequired(Exception):
    pass


class ConsoleUser:
    def __init__(self, ident: auth.Identity, cookie: str, csrf: str) -> None:
        self.ident, self.cookie, self.csrf = ident, cookie, csrf

    @property
    def name(self) -> str:
        return self.ident.name

    @property
    def role(self) -> str:
        return self.ident.role

    def can(self, role: str) -> bool:
        return self.ident.at_least(role)


def current_user(request: Request, steward: StewardDep) -> ConsoleUser:
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    ident = auth.read_session(steward, cookie)
    if ident is None or cookie is None:
        raise LoginRequired()
    return ConsoleUser(ident, cookie, auth.csrf_token(steward, cookie))


UserDep = Annotated[ConsoleUser, Depends(current_user)]


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urllib.parse.urlparse(origin).netloc == request.headers.get("host", request.url.netloc)


def check_csrf(request: Request, user: ConsoleUser, token: str | None) -> None:
    token = token or request.headers.get("x-csrf-token")
    if not _same_origin(request) or not token or not hmac.compare_digest(token, user.csrf):
        raise ApiError(403, "csrf_failed", "The form's CSRF token is missing or stale; reload the page and try again.")


def render(request: Request, name: str, user: ConsoleUser | None, http_status: int = 200, **ctx: Any) -> HTMLResponse:
    resp = templates.TemplateResponse(
        request, name, {"user": user, "msg": request.query_params.get("msg"), "err": request.query_params.get("err"), **ctx},
        status_code=http_status,
    )
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    return resp


def render_error(request: Request, status: int, code: str, message: str) -> HTMLResponse:
    return render(request, "error.html", None, http_status=status, code=code, message=message)


def _back(path: str, **q: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urllib.parse.urlencode(q)}" if q else path, status_code=303)


router = APIRouter(include_in_schema=False)


# ---------------------------------------------------------------- login
@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, next=_safe_next(next))


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.post("/login")
def login(request: Request, steward: StewardDep, token: Annotated[str, Form(max_length=300)] = "",
          next: Annotated[str, Form(max_length=500)] = "/") -> Response:
    if not _same_origin(request):
        return render(request, "login.html", None, http_status=403, next="/", error="Cross-origin login refused.")
    made = auth.make_session(steward, token.strip())
    if made is None:
        return render(request, "login.html", None, http_status=401, next=_safe_next(next),
                      error="That token is not valid (or was revoked).")
    _ident, cookie = made
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(auth.SESSION_COOKIE, cookie, max_age=auth.SESSION_SECONDS, httponly=True, samesite="strict",
                    secure=_behind_https(request), path="/")
    return resp


def _behind_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS: directly, through a TLS-terminating proxy that says so
    (``X-Forwarded-Proto``; trusting it can only add the ``Secure`` flag), or per ``STEWARD_PUBLIC_URL``."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    public = os.environ.get("STEWARD_PUBLIC_URL", "")
    return request.url.scheme == "https" or forwarded == "https" or public.lower().startswith("https://")


@router.post("/logout")
def logout(request: Request, user: UserDep, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, user, csrf)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(auth.SESSION_COOKIE, path="/")
    return resp


# ---------------------------------------------------------------- pages
@router.get("/", response_class=HTMLResponse)
def index(request: Request, steward: StewardDep, user: UserDep) -> HTMLResponse:
    reg = steward.registry
    cases = []
    stats = {(r["use_case"], r["model_id"], r["role"]): r for r in steward.logs.stats(since="24h")}
    for uc in reg.list_use_cases():
        dep = reg.deployment(uc.name)
        rows = [r for k, r in stats.items() if k[0] == uc.name and k[2] != "shadow"]
        n = sum(r["count"] for r in rows)
        cases.append({
            "name": uc.name, "description": uc.description, "allocations": reg.routing_table(dep),
            "requests": n, "cost": sum(float(r["cost_usd"] or 0) for r in rows),
            "p95": max((r["p95_ms"] or 0 for r in rows), default=None),
        })
    pending = read.pending_approval_count(steward)
    runs = read.agent_runs(steward, limit=5)
    active = read.rollouts(steward, active_only=True, limit=None)
    return render(request, "index.html", user, cases=cases, pending=pending, runs=runs, active=active)


@router.get("/use-cases/{name}", response_class=HTMLResponse)
def use_case_page(request: Request, steward: StewardDep, user: UserDep, name: str, window: str = "7d") -> HTMLResponse:
    reg = steward.registry
    uc = reg.get_use_case(name)
    window = window if window in BUCKETS else "7d"
    dep = reg.deployment(name)
    ranking = _ranking(steward, user, name)
    ranked = {r["model_id"]: r for r in (ranking or {}).get("ranked", [])}
    models = reg.list_models(use_case=name)
    known = {m.id for m in models}
    models += [m for m in reg.list_models() if m.id in ranked and m.id not in known]
    models.sort(key=lambda m: (m.id not in ranked, ranked.get(m.id, {}).get("rank", 0), m.id))
    rollouts = read.rollouts(steward, use_case=name, limit=10)
    evals = read.evaluations(steward, use_case=name, limit=10)
    violations = read.violations(steward, use_case=name, limit=10)
    by_model = [r for r in steward.logs.stats(use_case=name, since=window)]
    charts = {"traffic": traffic_series(steward, name, window), "evals": eval_series(steward, name),
              "split": reg.routing_table(dep)}
    return render(request, "use_case.html", user, uc=uc, dep=dep, models=models, rollouts=rollouts, evals=evals,
                  violations=violations, stats=by_model, charts=charts, window=window, windows=list(BUCKETS),
                  ranked=ranked, ranking=ranking, gains=_gains(steward, user, name))


def _gains(steward: Any, user: ConsoleUser, use_case: str) -> dict[str, Any]:
    """The realised-gain ledger (the read-only ``gain_report`` tool) and the bars of its chart:
    cost per request before and after each promotion, scaled to the largest."""
    from modelsteward.server.deps import tool_context
    from modelsteward.tools.base import call_tool, load_all_tools

    if "gain_report" not in load_all_tools():
        return {"entries": [], "bars": [], "note": "ledger unavailable"}
    try:
        out = call_tool("gain_report", {"use_case": use_case}, tool_context(steward, user.ident)).model_dump(mode="json")
    except StewardError as exc:
        return {"entries": [], "bars": [], "note": f"ledger unavailable: {exc.message}"}
    out["bars"], out["chart_note"] = _gain_bars(out["entries"])
    return out


def _gain_bars(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The chart draws what the table holds: one pair of bars per entry whose cost per request was
    measured on both sides, scaled to the largest; with nothing above $0 to draw, no chart and a
    note saying why (never an empty box)."""
    costs = [(e, e["metrics"].get("cost_per_request") or {}) for e in entries]
    drawn = [(e, c) for e, c in costs if c.get("before") is not None and c.get("after") is not None]
    top = max([float(c[k]) for _, c in drawn for k in ("before", "after")], default=0.0)
    if not entries:
        return [], ""
    if top <= 0:
        return [], ("no cost chart: cost per request was $0 or not measured before and after every promotion "
                    "(see the table)")
    bars = [{"label": f"#{e['rollout_id']} {e['model_id']}", "before": float(c["before"]), "after": float(c["after"]),
             "h_before": round(100 * float(c["before"]) / top, 1), "h_after": round(100 * float(c["after"]) / top, 1),
             "verdict": e["verdict"], "contradicts": e["contradicts"]} for e, c in drawn]
    skipped = len(entries) - len(drawn)
    return bars, (f"{skipped} promotion(s) without a measured cost on both sides are in the table only" if skipped
                  else "")


def _ranking(steward: Any, user: ConsoleUser, use_case: str) -> dict[str, Any] | None:
    """The live ranking of a use case's candidates (the read-only ``rank`` tool), or None."""
    from modelsteward.server.deps import tool_context
    from modelsteward.tools.base import call_tool, load_all_tools

    if "rank" not in load_all_tools():
        return None
    try:
        return call_tool("rank", {"use_case": use_case}, tool_context(steward, user.ident)).model_dump(mode="json")
    except StewardError as exc:
        return {"ranked": [], "notes": [f"ranking unavailable: {exc.message}"]}


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, steward: StewardDep, user: UserDep, status: str | None = None) -> HTMLResponse:
    from modelsteward.storage.states import MODEL_STATUSES

    models = steward.registry.list_models(status=status if status in MODEL_STATUSES else None)
    return render(request, "models.html", user, models=models, statuses=MODEL_STATUSES, status=status)


@router.get("/rollouts", response_class=HTMLResponse)
def rollouts_page(request: Request, steward: StewardDep, user: UserDep) -> HTMLResponse:
    names = read.use_case_names(steward)
    rows = read.rollouts(steward, limit=100)
    return render(request, "rollouts.html", user, rollouts=rows, names=names)


@router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
def rollout_page(request: Request, steward: StewardDep, user: UserDep, rollout_id: int) -> HTMLResponse:
    try:
        r = read.rollout(steward, rollout_id)
    except NotFound:
        return render_error(request, 404, "not_found", f"Unknown rollout id {rollout_id}.")
    return render(request, "rollout.html", user, r=r, use_case=r.use_case)


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, steward: StewardDep, user: UserDep, show: str = "pending") -> HTMLResponse:
    rows = read.approvals(steward, status="pending" if show == "pending" else None, limit=200)
    return render(request, "approvals.html", user, approvals=rows, show=show)


@router.post("/approvals/{approval_id}/decide")
def decide_form(
    request: Request, steward: StewardDep, user: UserDep, approval_id: int,
    decision: Annotated[str, Form()], reason: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    from modelsteward.server.actions import decide

    check_csrf(request, user, csrf)
    if not user.can("approver"):
        return _back("/approvals", err=f"Deciding approvals needs role 'approver'; you have {user.role!r}.")
    if decision not in ("approve", "reject"):
        return _back("/approvals", err="Decision must be approve or reject.")
    try:
        out = decide(steward, user.ident, approval_id, decision, reason, request.app.state.tasks)  # type: ignore[arg-type]
    except StewardError as exc:
        return _back("/approvals", err=exc.message)
    if out.outcome == "failed":
        return _back("/approvals", err=f"#{approval_id} ({out.approval.action}): {out.summary}")
    return _back("/approvals", msg=f"#{approval_id} ({out.approval.action}): {out.summary}")


@router.get("/agent-runs", response_class=HTMLResponse)
def agent_runs_page(request: Request, steward: StewardDep, user: UserDep) -> HTMLResponse:
    runs = read.agent_runs(steward, limit=100)
    return render(request, "agent_runs.html", user, runs=runs)


@router.get("/agent-runs/{run_id}", response_class=HTMLResponse)
def agent_run_page(request: Request, steward: StewardDep, user: UserDep, run_id: int) -> HTMLResponse:
    try:
        run = read.agent_run(steward, run_id)
    except NotFound:
        return render_error(request, 404, "not_found", f"Unknown agent run id {run_id}.")
    from modelsteward.agent.decisions import collect

    return render(request, "agent_run.html", user, run=run, decisions=collect(list(run.steps or [])))


@router.get("/chat", response_class=HTMLResponse)
def chat_page(request: Request, user: UserDep) -> HTMLResponse:
    return render(request, "chat.html", user)


@router.post("/chat")
def chat_send(
    request: Request, steward: StewardDep, user: UserDep, message: Annotated[str, Form(max_length=4000)] = "",
    session_id: Annotated[str, Form(max_length=64)] = "", csrf: Annotated[str, Form()] = "",
) -> JSONResponse:
    from pydantic import ValidationError

    from modelsteward.server.chat import ChatIn, hub

    check_csrf(request, user, csrf)
    if not user.can("operator"):
        return JSONResponse({"code": "forbidden", "message": "Chatting with the agent needs role 'operator'."}, 403)
    try:
        inp = ChatIn(message=message, session_id=session_id or None)
        out = hub(request, steward).ask(user.ident, inp)
    except ValidationError as exc:
        return JSONResponse({"code": "invalid_input", "message": exc.errors()[0]["msg"]}, 422)
    except StewardError as exc:
        return JSONResponse({"code": exc.code, "message": exc.message}, 200)
    return JSONResponse(out.model_dump(mode="json"))


DOCS_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Model Steward API</title>
<link rel="icon" href="data:image/svg+xml,%3Csvg%20xmlns%3D%22http%3A//www.w3.org/2000/svg%22%20viewBox%3D%220%200%2016%2016%22%3E%3Crect%20width%3D%2216%22%20height%3D%2216%22%20rx%3D%223%22%20fill%3D%22%231d2430%22/%3E%3Cpath%20d%3D%22M4%2011V5l4%203%204-3v6%22%20stroke%3D%22%237fb0ff%22%20stroke-width%3D%221.6%22%20fill%3D%22none%22/%3E%3C/svg%3E" type="image/svg+xml"><link rel="stylesheet" href="/static/swagger/swagger-ui.css"></head><body><div id="swagger-ui"></div>
<script src="/static/swagger/swagger-ui-bundle.js"></script><script src="/static/swagger-init.js"></script></body></html>"""


@router.get("/docs", response_class=HTMLResponse)
def api_docs() -> HTMLResponse:
    """Swagger UI on /openapi.json, served from the package (vendored swagger-ui-dist, Apache-2.0)."""
    return HTMLResponse(DOCS_PAGE, headers={"Content-Security-Policy": CSP})


def mount_console(app: FastAPI) -> None:
    """Add the console routes, the static files and the login redirect."""
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            nxt = "/"
        return RedirectResponse("/login?" + urllib.parse.urlencode({"next": nxt}), status_code=303)
