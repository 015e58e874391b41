"""The control loop inside ``steward serve``: guard checks, rollout steps, scheduled agent cycles
and notifications, run by one replica at a time.

Every replica runs an APScheduler ``BackgroundScheduler`` with one job, the lease: every fifth of
``STEWARD_LEADER_LEASE`` it renews (or tries to take) the ``control_loop`` lease in the registry
(storage/lease.py).  The replica holding it adds the control jobs; one that loses it removes them
(a job already running finishes; every job also checks, before it acts, that the lease is still
valid by the local clock).  A killed leader's lease expires after one lease period and another
replica takes over on its next try.

Control jobs (each ``max_instances=1`` and ``coalesce=True``: never two at once, a late tick runs
once), all acting through tools/ as the actor ``system:control-loop``:
- ``guard``: ``guard_check`` per use case, every ``STEWARD_GUARD_EVERY``;
- ``rollout``: ``rollout_advance`` on each waiting rollout whose step can be judged (the candidate
  has the window's ``min_requests``, or the step is past its inconclusive timeout), every
  ``STEWARD_ROLLOUT_EVERY``; guard and rollout work on one use case never overlap (a lock each);
- ``agent``: ``agent_run`` with ``trigger=schedule`` every ``STEWARD_AGENT_EVERY`` or on
  ``STEWARD_AGENT_CRON``.  The first tick after a start or a leader change is computed from the last
  scheduled run in ``agent_runs`` (or the schedule's anchor in ``control_state``): a tick missed
  while no leader ran runs once, at once, never once per missed period.  ``agent_run`` itself holds
  the workspace's agent lock, so a run never overlaps another (a manual one included);
- ``notify``: collect the outbox's events and deliver the due ones (server/notify.py);
- ``compact``: when the log store is a bucket (``STEWARD_LOG_DIR=s3://...``), merge each partition's
  small segments every ``STEWARD_LOG_COMPACT_EVERY`` (a bucket has no file locks, so only the
  leader compacts; a folder store compacts as it flushes).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from modelsteward.context import Steward
from modelsteward.errors import ApprovalRequired, PolicyDenied, StewardError
from modelsteward.server.loopconfig import LoopConfig
from modelsteward.server.notify import Notifier
from modelsteward.storage import lease, outbox
from modelsteward.timeutil import utc_now_naive
from modelsteward.tools import agent as agent_tools
from modelsteward.tools import approvals as approvals_tools
from modelsteward.tools import logs as logs_tools
from modelsteward.tools import registry as registry_tools
from modelsteward.tools import rollout as rollout_tools
from modelsteward.tools.base import ToolContext, call_tool
from modelsteward.tools.rollout import RolloutView

__all__ = ["ControlLoop", "LEASE_NAME", "ACTOR"]

log = logging.getLogger("modelsteward.controlloop")

LEASE_NAME = "control_loop"
ACTOR = "system:control-loop"
_CONTROL_JOBS = ("guard", "rollout", "agent", "notify", "compact")
_DENIAL_BACKOFF_S = 300.0


def _naive_utc(value: Any) -> dt.datetime:
    """A time as naive UTC, from a datetime (aware or naive UTC) or its ISO text."""
    t = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return t.astimezone(dt.timezone.utc).replace(tzinfo=None) if t.tzinfo else t


class ControlLoop:
    def __init__(self, steward: Steward, config: LoopConfig, *, holder: str | None = None) -> None:
        self.steward = steward
        self.config = config
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.notifier = Notifier(config.notify_urls, config.public_url)
        self.term = 0
        self._valid_until = 0.0  # monotonic: the lease is ours until then
        self._uc_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._denied: dict[tuple[str, int, int], float] = {}
        self._scheduler: Any = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        from modelsteward.wiring import wire

        wire()  # the scheduled runs go through agent_run: the tools need the agent's entry points

        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self._scheduler = BackgroundScheduler(
            timezone="UTC", executors={"default": ThreadPoolExecutor(8)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._scheduler.add_job(self._lease_tick, "interval", seconds=max(0.4, self.config.lease_s / 5),
                                id="lease", next_run_time=dt.datetime.now(dt.timezone.utc))
        self._scheduler.start()
        log.info("%s; replica %s", self.config.describe(), self.holder)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self.leading():
            self._valid_until = 0.0
            try:
                lease.release(self.steward.sessions, LEASE_NAME, self.holder)
            except Exception:  # noqa: BLE001 - shutting down: the lease expires by itself
                log.warning("could not release the control loop lease", exc_info=True)

    def leading(self) -> bool:
        return time.monotonic() < self._valid_until

    # ------------------------------------------------------------------ leadership
    def _lease_tick(self) -> None:
        started = time.monotonic()
        try:
            res = lease.acquire(self.steward.sessions, LEASE_NAME, self.holder, self.config.lease_s)
        except Exception:  # noqa: BLE001 - the registry is unreachable: step down, try again later
            log.warning("control loop lease: registry unreachable", exc_info=True)
            res = None
        if res is not None and res.leader:
            was = self.leading()
            # a margin of a tenth of the lease for clock skew and the time this call took
            self._valid_until = started + self.config.lease_s * 0.9
            if res.gained or not was or res.term != self.term:
                self.term = res.term
                self._became_leader(res)
            return
        if not self._valid_until:
            return
        if res is None and self.leading():
            return  # the registry did not answer, but our lease still runs: keep going until it ends
        self._lost_leadership(res.holder if res is not None else None)

    def _became_leader(self, res: lease.LeaseResult) -> None:
        log.warning("control loop: this replica (%s) leads (term %d)", self.holder, res.term)
        try:
            outbox.init_cursors(self.steward.sessions)
            outbox.set_state(self.steward.sessions, "agent_schedule_anchor", {"at": utc_now_naive().isoformat()},
                             only_if_absent=True)
            if res.gained:
                outbox.enqueue(self.steward.sessions, f"leader_changed:{res.term}", "leader_changed", None,
                               {"holder": self.holder, "term": res.term, "previous": res.previous})
        except Exception:  # noqa: BLE001 - jobs still start; the next notify pass catches up
            log.exception("control loop: preparing leadership failed")
        self._schedule_jobs()

    def _lost_leadership(self, holder: str | None) -> None:
        self._valid_until = 0.0
        self.term = 0
        removed = self._unschedule_jobs()
        if removed:
            log.warning("control loop: this replica (%s) no longer leads (now %s)", self.holder, holder or "nobody")

    def _schedule_jobs(self) -> None:
        sch, cfg = self._scheduler, self.config
        if sch is None:
            return
        now = dt.datetime.now(dt.timezone.utc)
        self._unschedule_jobs()
        sch.add_job(self._fenced(self._guard_tick), "interval", seconds=cfg.guard_every_s, id="guard", next_run_time=now)
        sch.add_job(self._fenced(self._rollout_tick), "interval", seconds=cfg.rollout_every_s, id="rollout", next_run_time=now)
        sch.add_job(self._fenced(self._notify_tick), "interval", seconds=cfg.notify_every_s, id="notify", next_run_time=now)
        if self._logs_remote():
            sch.add_job(self._fenced(self._compact_tick), "interval", seconds=cfg.log_compact_every_s, id="compact",
                        next_run_time=now + dt.timedelta(seconds=cfg.log_compact_every_s))
        if cfg.agent_enabled:
            trigger, first = self._agent_trigger(now)
            sch.add_job(self._fenced(self._agent_tick), trigger, id="agent", next_run_time=first)
            log.info("control loop: next scheduled agent run at %s", first.isoformat(timespec="seconds"))

    def _fenced(self, job: Any) -> Any:
        """``job`` with its registry writes fenced by this replica's lease term: a leader paused past
        its lease (and replaced) writes nothing when it resumes (storage/lease.py)."""
        def run() -> None:
            try:
                with lease.fenced(LEASE_NAME, self.holder, self.term):
                    job()
            except lease.LeaseLost as exc:
                log.warning("control loop: %s stopped: %s", job.__name__, exc.message)

        run.__name__ = job.__name__
        return run

    def _unschedule_jobs(self) -> int:
        n = 0
        for job_id in _CONTROL_JOBS:
            if self._scheduler is not None and self._scheduler.get_job(job_id) is not None:
                self._scheduler.remove_job(job_id)
                n += 1
        return n

    def _agent_trigger(self, now: dt.datetime) -> tuple[Any, dt.datetime]:
        """The agent job's trigger and its first run: the tick after the last scheduled run (or the
        schedule's anchor), or now when that tick has passed (run once for every missed one)."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        last = self._last_scheduled_run() or self._anchor() or now
        if self.config.agent_cron:
            trigger: Any = CronTrigger.from_crontab(self.config.agent_cron, timezone="UTC")
            due = trigger.get_next_fire_time(None, last)
        else:
            assert self.config.agent_every_s is not None
            trigger = IntervalTrigger(seconds=self.config.agent_every_s, timezone="UTC")
            due = last + dt.timedelta(seconds=self.config.agent_every_s)
        return trigger, max(due, now)

    def _last_scheduled_run(self) -> dt.datetime | None:
        out = call_tool(agent_tools.agent_runs, {"limit": 50}, self._ctx())
        starts = [r.started_at for r in out.runs if r.trigger == "schedule"]
        return dt.datetime.fromisoformat(max(starts)).replace(tzinfo=dt.timezone.utc) if starts else None

    def _anchor(self) -> dt.datetime | None:
        st = outbox.get_state(self.steward.sessions, "agent_schedule_anchor")
        return dt.datetime.fromisoformat(st["at"]).replace(tzinfo=dt.timezone.utc) if st else None

    # ------------------------------------------------------------------ jobs
    def _ctx(self) -> ToolContext:
        return ToolContext(steward=self.steward, actor=ACTOR)

    def _uc_lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._uc_locks.setdefault(name, threading.Lock())

    def _use_cases(self) -> list[str]:
        return [u.name for u in call_tool(registry_tools.list_use_cases, {}, self._ctx()).use_cases]

    def _guard_tick(self) -> None:
        if not self.leading():
            return
        for name in self._use_cases():
            if not self.leading():
                return
            with self._uc_lock(name):
                try:
                    res = call_tool(rollout_tools.guard_check, {"use_case": name}, self._ctx())
                except StewardError as exc:
                    log.warning("guard check of %s: %s", name, exc.message)
                    continue
            for act in res.actions:
                if act.get("action") not in (None, "warn", "none"):
                    log.warning("guard check of %s: %s (%s)", name, act["action"], act.get("reason"))

    def _judgeable(self, use_case: str, ro: RolloutView) -> bool:
        """Whether the step's window can be judged now (enough candidate requests, or past the
        inconclusive timeout); read through the logs_stats tool."""
        from modelsteward.bounds import section_of

        cfg = section_of(self.steward.registry.get_use_case(use_case).config, "rollout")
        started = dt.datetime.fromisoformat(str(ro.step_started_at or ro.created_at))
        elapsed = max(1.0, (utc_now_naive() - started).total_seconds())
        if elapsed > float(cfg["inconclusive_timeout_s"]):
            return True
        rows = call_tool(logs_tools.logs_stats, {"use_case": use_case, "since": f"{elapsed:.0f}s"}, self._ctx()).rows
        roles = ("shadow",) if ro.strategy == "shadow" else ("canary", "primary")
        n = sum(int(r.get("count") or 0) for r in rows if r.get("model_id") == ro.candidate and r.get("role") in roles)
        return n >= int(cfg["min_requests"])

    def _rollout_tick(self) -> None:
        if not self.leading():
            return
        active = call_tool(agent_tools.show_rollouts, {"active_only": True, "limit": 500}, self._ctx()).rollouts
        for ro in active:
            if ro.state != "waiting" or ro.use_case is None or not self.leading():
                continue
            uc = ro.use_case
            key = (uc, ro.id, ro.step_index)
            if self._denied.get(key, 0.0) > time.monotonic():
                continue
            with self._uc_lock(uc):
                try:
                    full = call_tool(rollout_tools.rollout_status, {"use_case": uc}, self._ctx()).rollout
                    if full is None or full.state != "waiting":
                        continue
                    state, approval_id = self._approval_state(uc, full)
                    if state in ("pending", "rejected") or not self._judgeable(uc, full):
                        continue
                    ctx = self._ctx()
                    ctx.approval_id = approval_id if state == "approved" else None
                    out = call_tool(rollout_tools.rollout_advance, {"use_case": uc}, ctx)
                    if out.action not in ("waiting",):
                        log.warning("rollout %s on %s: %s", ro.id, uc, out.message)
                except ApprovalRequired as exc:
                    log.warning("rollout %s on %s waits for a person: %s", ro.id, uc, exc.message)
                except PolicyDenied as exc:
                    log.warning("rollout %s on %s: %s", ro.id, uc, exc.message)
                    self._denied[key] = time.monotonic() + _DENIAL_BACKOFF_S
                except StewardError as exc:
                    log.warning("rollout %s on %s: %s", ro.id, uc, exc.message)

    def _approval_state(self, use_case: str, ro: RolloutView) -> tuple[str, int | None]:
        """This step's promotion approval asked by the loop: ``none``, ``pending`` (do not ask
        again), ``rejected`` (not again for this step) or ``approved`` (carry it out, with its id)."""
        out = call_tool(approvals_tools.approvals_list, {"status": "all", "limit": 200}, self._ctx()).approvals
        since = _naive_utc(ro.step_started_at) if ro.step_started_at else None
        mine = [a for a in out if a.action == "rollout_advance" and a.requester == ACTOR
                and a.arguments.get("use_case") == use_case
                and (since is None or _naive_utc(a.created_at) >= since)]
        for status in ("approved", "pending", "rejected"):
            hit = next((a for a in mine if a.status == status), None)
            if hit is not None:
                return status, hit.id
        return "none", None

    def _agent_tick(self) -> None:
        if not self.leading():
            return
        try:
            out = call_tool(agent_tools.agent_run, {"trigger": "schedule", "goal": "scheduled cycle"}, self._ctx())
            log.info("scheduled agent run %s: %s", out.run_id, out.status)
        except StewardError as exc:  # agent_busy: another run executes; this tick is skipped
            log.warning("scheduled agent run skipped: %s", exc.message)

    def _logs_remote(self) -> bool:
        try:
            return bool(self.steward.settings.logs_location.remote)
        except Exception:  # noqa: BLE001 - a bad STEWARD_LOG_DIR stopped the server earlier
            return False

    def _compact_tick(self) -> None:
        if not self.leading():
            return
        try:
            merged = self.steward.logs.compact()
        except Exception:  # noqa: BLE001 - the next tick retries; segments stay readable meanwhile
            log.exception("control loop: compacting the log bucket failed")
            return
        if merged:
            log.info("control loop: merged %d log segments in the bucket", merged)

    def _notify_tick(self) -> None:
        if not self.leading():
            return
        outbox.collect(self.steward.sessions)
        self.notifier.deliver_due(self.steward.sessions)

    def status(self) -> dict[str, Any]:
        return {"holder": self.holder, "leading": self.leading(), "term": self.term,
                "jobs": sorted(j.id for j in self._scheduler.get_jobs()) if self._scheduler else []}
