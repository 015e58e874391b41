"""Console sessions are signed with a server secret, not with the token hash stored in the database:
someone who can read the database cannot forge a session cookie."""

from __future__ import annotations

import hashlib
import hmac
import stat
import time

from modelsteward.server import auth
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import ApiToken


def _forge_from_database(steward, token_id: int) -> str:
    """What a database reader can compute: the cookie MAC keyed with the stored token hash."""
    with session_scope(steward.sessions) as s:
        stored = s.get(ApiToken, token_id).token_hash
    body = f"{token_id}.{int(time.time()) + 3600}"
    return f"{body}.{hmac.new(stored.encode(), body.encode(), hashlib.sha256).hexdigest()}"


def test_a_database_reader_cannot_forge_a_session(steward, monkeypatch) -> None:
    monkeypatch.delenv("STEWARD_SESSION_SECRET", raising=False)
    row, plain = auth.create_token(steward, "ops", "admin")
    assert auth.read_session(steward, _forge_from_database(steward, row.id)) is None
    ident, cookie = auth.make_session(steward, plain)
    assert auth.read_session(steward, cookie) == ident
    # the secret is kept in the workspace, readable by its owner only
    path = steward.settings.workspace / auth.SESSION_SECRET_FILE
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert row.token_hash not in path.read_text()
    # a revoked token ends its sessions; a tampered cookie is refused
    tid, exp, mac = cookie.split(".")
    assert auth.read_session(steward, f"{tid}.{int(exp) + 10}.{mac}") is None
    auth.revoke_token(steward, row.id)
    assert auth.read_session(steward, cookie) is None


def test_session_secret_from_the_environment(steward, monkeypatch) -> None:
    row, plain = auth.create_token(steward, "ops", "viewer")
    monkeypatch.setenv("STEWARD_SESSION_SECRET", "first-secret-" + "x" * 32)
    _, cookie = auth.make_session(steward, plain)
    assert auth.read_session(steward, cookie) is not None
    csrf = auth.csrf_token(steward, cookie)
    monkeypatch.setenv("STEWARD_SESSION_SECRET", "second-secret-" + "y" * 32)
    assert auth.read_session(steward, cookie) is None  # another secret: the session is gone
    assert auth.csrf_token(steward, cookie) != csrf
