"""The web console in a real browser: Playwright driving Debian's headless Chromium.

Log in with an approver's token, see the pending promotion of a canary rollout, approve it with
a reason, and see the rollout complete.  Screenshots go to tests/artifacts/ (ignored by git).
Needs ``apt-get install chromium`` (``/usr/bin/chromium``); skipped when it is missing.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import make_tokens, promotion_scenario

from modelsteward.server import create_app

CHROMIUM = os.environ.get("STEWARD_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"

pytestmark = [
    pytest.mark.slow,
    # CI (.ci/run sets STEWARD_REQUIRE_BROWSER=1) never skips: a missing browser fails there
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("STEWARD_REQUIRE_BROWSER"),
                       reason=f"{CHROMIUM} missing: apt-get install chromium (set STEWARD_REQUIRE_BROWSER=1 to fail)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(steward: Any) -> Iterator[tuple[str, dict[str, str], dict[str, Any]]]:
    import uvicorn

    tokens = make_tokens(steward)
    ids = promotion_scenario(steward, requester="api:operator")
    port = _free_port()
    config = uvicorn.Config(create_app(steward), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", tokens, ids
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def page(live_server: Any) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(20_000)
        errors: list[str] = []
        # failed loads (the 401 of a wrong token) are checked by the assertions; anything else is a bug
        pg.on("console", lambda m: errors.append(m.text)
              if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.console_errors = errors  # type: ignore[attr-defined]
        try:
            yield pg
        finally:
            context.close()
            browser.close()


def test_login_approve_and_the_rollout_moves_on(live_server: Any, page: Any) -> None:
    base, tokens, ids = live_server
    page.goto(base + "/approvals")
    assert page.url.startswith(base + "/login")  # the console needs a session
    page.fill("input[name=token]", "stw_wrong")
    page.click("button[type=submit]")
    assert "not valid" in page.inner_text("main")

    page.fill("input[name=token]", tokens["approver"])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/approvals")
    card = page.locator(f"#approval-{ids['approval']}")
    assert card.get_attribute("data-status") == "pending"
    assert "rollout_advance" in card.inner_text()
    assert "api:operator" in card.inner_text()
    page.screenshot(path=str(ARTIFACTS / "console-approvals-pending.png"), full_page=True)

    page.goto(f"{base}/rollouts/{ids['rollout']}")
    assert "waiting" in page.inner_text("h1")
    assert "Step 1 of 2" in page.inner_text("#step-now")

    page.goto(base + "/approvals")
    card.locator("input[name=reason]").fill("canary looked healthy")
    card.locator("button[value=approve]").click()
    page.wait_for_selector(".flash.ok")
    assert f"#{ids['approval']} (rollout_advance): approved; executed rollout_advance" in page.inner_text(".flash.ok")
    assert page.locator(f"#approval-{ids['approval']}").count() == 0  # no longer pending

    page.goto(f"{base}/rollouts/{ids['rollout']}")
    assert "completed" in page.inner_text("h1")
    page.screenshot(path=str(ARTIFACTS / "console-rollout-completed.png"), full_page=True)

    page.goto(base + "/use-cases/story?window=24h")
    page.wait_for_selector(".chart svg")
    assert page.locator(".split .seg").first.inner_text().startswith(ids["b"])  # 100% on the candidate now
    assert page.locator(".chart svg").count() >= 3  # requests, cost, p95 (feedback/evals may be empty)
    page.screenshot(path=str(ARTIFACTS / "console-dashboard.png"), full_page=True)

    page.goto(base + "/chat")  # the chat panel talks to the agent (an approver is also an operator)
    page.fill("#chat-form input[name=message]", "rollouts story")
    page.click("#chat-form button")
    page.wait_for_selector(".msg.agent", timeout=90_000)
    assert "completed" in page.inner_text(".msg.agent")
    assert page.input_value("#chat-form input[name=session_id]")  # the next line continues the conversation
    page.screenshot(path=str(ARTIFACTS / "console-chat.png"), full_page=True)
    assert page.console_errors == []  # no CSP violation or script error


def test_dashboard_and_pages_render_for_a_viewer(steward: Any, live_server: Any, page: Any) -> None:
    base, tokens, _ids = live_server
    page.goto(base + "/login")
    page.fill("input[name=token]", tokens["viewer"])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    assert "story" in page.inner_text("main")
    for path in ("/models", "/rollouts", "/agent-runs", "/chat", "/approvals"):
        page.goto(base + path)
        assert page.locator("h1").count() == 1, path
    assert "deciding needs role approver" in page.inner_text("main")
    assert page.locator("button[value=approve]").count() == 0
    page.goto(base + "/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)  # Swagger UI from the package
    assert page.console_errors == []


