"""Background execution of long-running tools (evaluate, fine-tune, agent runs) for the API.

Approvals carried out by the ``approval_decide`` tool put their long work here too (``spawner``:
resuming an agent run, an approved fine-tune).

Decision: a long-running tool's route answers ``202`` at once with a task id, and the tool runs in
a thread of the server process; ``GET /api/tasks/{id}`` tells its state and, when done, its output
or error.  Tasks live in memory (the last ``KEEP`` per process): what they produce lasts in the
registry (evaluations, fine-tuning jobs, agent runs), so a restart loses only the handle.  Pass
``?wait=true`` to run the tool inside the request instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from modelsteward.errors import NotFound, StewardError
from modelsteward.server.api import ERROR_RESPONSES
from modelsteward.server.deps import ViewerDep
from modelsteward.tools.base import ToolContext, call_tool

__all__ = ["TaskOut", "TaskRegistry", "router"]

KEEP = 200

log = logging.getLogger(__name__)


class TaskOut(BaseModel):
    id: str
    tool: str
    actor: str
    status: Literal["running", "succeeded", "failed", "needs_approval"]
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class TaskRegistry:
    """The tasks of one app (thread-safe)."""

    def __init__(self) -> None:
        self._tasks: OrderedDict[str, TaskOut] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, tool: str, args: dict[str, Any], ctx: ToolContext) -> TaskOut:
        """Run one tool call in the background."""
        return self.start_call(tool, ctx.actor, lambda: call_tool(tool, args, ctx))

    def start_call(self, label: str, actor: str, work: Callable[[], BaseModel]) -> TaskOut:
        """Run ``work`` (a tool call, or carrying out an approval) in a background thread."""
        task = TaskOut(id=uuid.uuid4().hex[:16], tool=label, actor=actor, status="running",
                       started_at=dt.datetime.now(dt.timezone.utc))
        with self._lock:
            self._tasks[task.id] = task
            while len(self._tasks) > KEEP:
                self._tasks.popitem(last=False)
        threading.Thread(target=self._run, args=(task.id, work), daemon=True,
                         name=f"task-{label.split()[0]}-{task.id}").start()
        return task.model_copy()

    def spawner(self, actor: str) -> Callable[[str, Callable[[], BaseModel]], str]:
        """A ``ToolContext.spawn`` that puts long work on this registry (returns the task id)."""
        return lambda label, work: self.start_call(label, actor, work).id

    def _run(self, task_id: str, work: Callable[[], BaseModel]) -> None:
        status: str
        result = error = None
        try:
            result = work().model_dump(mode="json")
            status = "succeeded"
        except StewardError as exc:
            status = "needs_approval" if exc.code == "approval_required" else "failed"
            error = {"code": exc.code, "message": exc.message}
        except Exception as exc:  # noqa: BLE001 - a task's crash is its result, not the server's
            log.exception("task %s failed", task_id)
            status, error = "failed", {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
        with self._lock:
            task = self._tasks.get(task_id)
            if task is not None:
                self._tasks[task_id] = task.model_copy(update={
                    "status": status, "result": result, "error": error,
                    "finished_at": dt.datetime.now(dt.timezone.utc),
                })

    def get(self, task_id: str) -> TaskOut:
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            raise NotFound(f"Unknown task {task_id!r} (tasks are kept in memory by the process that ran them).",
                           kind="task", id=task_id)
        return task.model_copy()

    def list(self) -> list[TaskOut]:
        with self._lock:
            return [t.model_copy() for t in reversed(self._tasks.values())]


router = APIRouter(prefix="/api", responses=ERROR_RESPONSES, tags=["tasks"])


def _registry(request: Request) -> TaskRegistry:
    return request.app.state.tasks  # type: ignore[no-any-return]


@router.get("/tasks", response_model=list[TaskOut], summary="Long-running tool calls of this process")
def list_tasks(_: ViewerDep, request: Request) -> list[TaskOut]:
    return _registry(request).list()


@router.get("/tasks/{task_id}", response_model=TaskOut, summary="One long-running tool call")
def get_task(_: ViewerDep, request: Request,
             task_id: Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]) -> TaskOut:
    return _registry(request).get(task_id)
