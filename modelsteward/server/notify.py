"""Notifications: the outbox's events (storage/outbox.py) turned into messages and sent with
Apprise to every URL of ``STEWARD_NOTIFY`` (Slack, Teams, Discord, e-mail, ``json://`` webhooks...).

Delivery runs in the control loop's own job, never inside a guard check or a rollout step: a slow
or failing target delays only further notifications.  Each target is tried once per attempt; a
failure is logged and the event retried with exponential back-off (2 s, 4 s, 8 s ... capped at
5 min) only for the targets not yet reached (they are recorded by hash: URLs carry tokens), until
``MAX_ATTEMPTS``, after which the row is ``failed``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from modelsteward.privacy import redact
from modelsteward.storage import outbox

__all__ = ["Notifier", "format_event", "backoff_s", "MAX_ATTEMPTS"]

log = logging.getLogger("modelsteward.notify")

MAX_ATTEMPTS = 12


def backoff_s(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones."""
    return float(min(300, 2 ** max(1, attempts)))


def _target_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _short(value: Any, limit: int = 600) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _approval(p: dict[str, Any], uc: str, link: str) -> tuple[str, list[str]]:
    ev = p.get("evidence") or {}
    lines = [f"What: {p.get('action')} {_short(p.get('arguments') or {})}",
             f"Why: {p.get('reason') or '(no reason given)'}", f"Asked by: {p.get('requester')}"]
    if an := ev.get("analysis"):
        lines.append(f"Evidence: last analysis {an.get('outcome')} at {an.get('weight')}%: "
                     + "; ".join(str(r) for r in (an.get("reasons") or [])[:4]))
    if ro := ev.get("rollout"):
        lines.append(f"Rollout {ro['id']}: {ro['candidate']} vs {ro['stable']}, step {ro['step_index']} of {ro['steps']}, {ro['state']}")
    if te := ev.get("evaluation"):
        lines.append(f"Evaluation {te['test_result_id']} of {te['model']}: {te['verdict']} on {te['sample_count']} samples")
    lines.append(f"Decide: {link}/approvals (or `steward approvals approve {p.get('approval_id')}`)")
    return f"[{uc}] approval {p.get('approval_id')} requested: {p.get('action')}", lines


def format_event(event: str, use_case: str | None, p: dict[str, Any], console_url: str) -> tuple[str, str]:
    """(title, body) of one event; the use case is named in both."""
    uc = use_case or "-"
    if event == "approval_requested":
        title, lines = _approval(p, uc, console_url)
    elif event == "approval_decided":
        title = f"[{uc}] approval {p.get('approval_id')} {p.get('decision')} by {p.get('decided_by')}"
        lines = [f"Action: {p.get('action')}", f"Reason: {p.get('decision_reason') or '-'}"]
    elif event == "guardrail_violation":
        title = f"[{uc}] guardrail {p.get('policy')} violated ({p.get('severity')})"
        lines = [f"Model: {p.get('model_id') or '(use case)'}", f"Measured {p.get('measured')} vs threshold {p.get('threshold')}",
                 f"Action taken: {p.get('action')}"]
    elif event == "rollback":
        title = f"[{uc}] rolled back ({p.get('action')})"
        lines = [f"By: {p.get('actor')}", f"Why: {p.get('reason')}", f"Rollout: {p.get('rollout_id')}"]
    elif event == "promotion":
        title = f"[{uc}] candidate promoted to 100%"
        lines = [f"By: {p.get('actor')}", f"Why: {p.get('reason')}", f"Rollout: {p.get('rollout_id')}"]
    elif event == "agent_run_failed":
        title = f"[{uc}] agent run {p.get('run_id')} failed"
        lines = [f"Trigger: {p.get('trigger')}", f"Error: {_short(p.get('error') or '', 1000)}"]
    elif event == "leader_changed":
        title = f"control loop leader is now {p.get('holder')} (term {p.get('term')})"
        lines = [f"Previous leader: {p.get('previous') or 'none'}"]
    else:
        title, lines = f"[{uc}] {event}", [_short(p)]
    # arguments, reasons and errors may quote logged text: every line is redacted (issue 25), the
    # console links added last are the steward's own
    lines = [redact(line) for line in lines]
    if event != "approval_requested":
        lines.append(f"Console: {console_url}/")
    else:
        lines[-1] = f"Decide: {console_url}/approvals (or `steward approvals approve {p.get('approval_id')}`)"
    return redact(title), "\n".join(lines)


class Notifier:
    """Sends outbox rows to ``urls`` (already validated by LoopConfig)."""

    def __init__(self, urls: Sequence[str], console_url: str) -> None:
        self.urls = list(urls)
        self.console_url = console_url

    def _send(self, url: str, title: str, body: str) -> bool:
        import apprise

        a = apprise.Apprise()
        a.add(url)
        try:
            return bool(a.notify(title=title, body=body))
        except Exception:  # noqa: BLE001 - a plugin's failure is a failed delivery, never the loop's
            log.exception("notification plugin raised")
            return False

    def deliver_due(self, sessions: Any) -> dict[str, int]:
        """One pass over the due outbox rows; returns counts of sent / retrying / failed rows."""
        counts = {"sent": 0, "retrying": 0, "failed": 0}
        for n in outbox.due(sessions):
            done = list(n.delivered or [])
            title, body = format_event(n.event, n.use_case, dict(n.payload or {}), self.console_url)
            errors = []
            for url in self.urls:
                tid = _target_id(url)
                if tid in done:
                    continue
                if self._send(url, title, body):
                    done.append(tid)
                else:
                    errors.append(url.split("://", 1)[0] + "://...")
            err = f"delivery failed to {', '.join(errors)}" if errors else None
            retry = None
            if err and n.attempts + 1 < MAX_ATTEMPTS:
                retry = backoff_s(n.attempts + 1)
                log.warning("notification %s (%s, %s): %s; retrying in %.0f s", n.id, n.event, n.use_case, err, retry)
            elif err:
                log.error("notification %s (%s, %s): %s; giving up after %d attempts", n.id, n.event, n.use_case, err,
                          n.attempts + 1)
            outbox.record_attempt(sessions, n.id, delivered=done, error=err, retry_in_s=retry)
            counts["retrying" if retry is not None else "failed" if err else "sent"] += 1
        return counts
