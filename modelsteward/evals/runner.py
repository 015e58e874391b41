"""The runner: one model over a list of prompts with bounded concurrency, retries and a disk cache.

Calls go through ``modelsteward.providers``: the whole request as the application sent it
(``exchange.request_body(messages, request, params)``: tools, tool choice, response format and the
logged sampling parameters, the evaluation's own ``params`` on top) via the provider's
``openai_completion(body)``; the whole answer is kept (``Generation.answer``: text, tool calls,
finish reason) and ``Generation.text`` is its readable text (``exchange.answer_text``: the content,
or the tool calls as ``name(arguments)``), which the text scorers read.  Retryable
upstream errors (``UpstreamError.retryable``: 429, 5xx, timeouts) are retried with exponential
backoff; what still fails is recorded on the generation (it counts toward the error rate) rather
than aborting the evaluation.  Successful outputs can be cached on disk under
``<workspace>/evals/cache`` keyed by model id + messages + sampling parameters (the evaluator caches
the baseline's, which every candidate on the same sample re-uses); the key includes the item's request
part when it has one.  Outputs in which
``modelsteward.privacy`` finds PII are never cached, and error messages are redacted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelsteward import exchange
from modelsteward.catalog.fingerprint import VERSION_KEYS
from modelsteward.errors import StewardError, UpstreamError
from modelsteward.privacy import find as find_pii
from modelsteward.privacy import redact

if TYPE_CHECKING:
    from modelsteward.context import GenerationCache
    from modelsteward.evals.replay import EvalItem
    from modelsteward.settings import Settings
    from modelsteward.storage.models import Model

__all__ = ["Generation", "OutputCache", "CycleCache", "model_revision", "run_model", "run_models_sync",
           "gather_or_cancel", "EvalInterrupted", "EvalDeadline"]


class EvalInterrupted(StewardError):
    """The evaluation was stopped before it finished (nothing was recorded)."""

    code = "eval_interrupted"


class EvalDeadline(EvalInterrupted):
    """The evaluation ran past its wall-clock deadline and was stopped (an incomplete evaluation)."""

    code = "eval_deadline"


@dataclass
class Generation:
    """One model's answer to one item (``error`` set when it failed after retries)."""

    item_id: str
    text: str = ""
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str = ""
    error: str | None = None
    attempts: int = 1
    cached: bool = False
    answer: dict[str, Any] | None = None  # the whole answer (exchange.Answer): content, tool_calls, finish_reason

    @property
    def ok(self) -> bool:
        return self.error is None


class OutputCache:
    """Generations on disk, one JSON file per (model, messages, params) key, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @staticmethod
    def key(model_id: str, messages: Sequence[dict[str, Any]], params: dict[str, Any],
            request: dict[str, Any] | None = None, *, revision: str | None = None) -> str:
        """The key of one generation: model id, messages, sampling params, the request part (tools,
        response format ...) when there is one, and the model's ``revision`` when given
        (:func:`model_revision`: a re-registered endpoint or a retrained adapter is another model)."""
        parts: dict[str, Any] = {"m": model_id, "p": list(messages), "s": params}
        if request:  # plain items keep the keys they had before requests were replayed whole
            parts["r"] = request
        if revision:
            parts["v"] = revision
        blob = json.dumps(parts, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(value), encoding="utf-8")
        os.replace(tmp, path)


class CycleCache:
    """Baseline generations kept in memory for the evaluations of one agent cycle.

    Owned by the cycle (``agent.runtime.AgentRuntime`` makes one per run and hands it to every tool
    call through ``ToolContext.eval_cache``); it ends with the run, so a sampled baseline answer is
    re-used by the cycle's other evaluations of the same sample and drawn afresh by the next cycle,
    and nothing crosses workspaces.  Keys are :meth:`OutputCache.key` with the model's revision;
    at most ``max_entries`` generations are kept (the oldest go first).  Thread-safe."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max(1, max_entries)
        self._items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                self.misses += 1
                return None
            self.hits += 1
            return dict(hit)

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._items[key] = dict(value)
            while len(self._items) > self.max_entries:
                self._items.pop(next(iter(self._items)))


def model_revision(model: Model) -> str:
    """What answers for ``model`` besides its id: provider, endpoint, parent, adapter (its files'
    sizes and modification times, so a retrained adapter in the same folder is another model),
    weights folder and version metadata."""
    meta = model.meta or {}
    adapter = getattr(model, "adapter_path", None)
    files: list[tuple[str, int, int]] = []
    if adapter:
        folder = Path(str(adapter)).expanduser()
        try:
            for f in sorted(folder.iterdir()):
                if f.is_file():
                    st = f.stat()
                    files.append((f.name, st.st_size, st.st_mtime_ns))
        except OSError:
            files = []
    parts = {"provider": model.provider, "base_url": getattr(model, "base_url", None),
             "parent": getattr(model, "parent_model_id", None), "adapter": adapter, "files": files,
             "path": meta.get("path"), "version": {k: meta[k] for k in VERSION_KEYS if meta.get(k) not in (None, "")}}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


ProgressFn = Callable[[str, int, int], None]  # (label, done, total)


async def run_model(
    model: Model,
    settings: Settings,
    items: Sequence[EvalItem],
    params: dict[str, Any],
    *,
    label: str,
    concurrency: int = 4,
    retries: int = 2,
    backoff_s: float = 0.25,
    cache: GenerationCache | None = None,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> list[Generation]:
    """Answer every item with ``model``; results in item order.

    A provider that batches (the local one: ``max_batch`` > 1) gets up to two batches of requests in
    flight, so it runs one batch while the next one queues; other providers get ``concurrency``."""
    from modelsteward.providers import get_provider

    provider = get_provider(model, settings)
    batch = int(getattr(provider, "max_batch", 1) or 1)
    sem = asyncio.Semaphore(max(1, concurrency, 2 * batch if batch > 1 else 1))
    done = 0
    lock = asyncio.Lock()
    revision = model_revision(model) if cache is not None else None  # (an empty CycleCache is falsy)

    async def one(item: EvalItem) -> Generation:
        nonlocal done
        key = "" if cache is None else OutputCache.key(model.id, item.messages, params, item.request, revision=revision)
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            gen = Generation(**{**hit, "item_id": item.id, "cached": True})
        else:
            async with sem:
                gen = await _call(provider, item, params, retries, backoff_s, stop)
            # The cache lives outside the log store: an answer holding PII (often the prompt's own,
            # echoed back) is not cached rather than stored redacted (which would skew the scores).
            if cache is not None and gen.ok and not find_pii(gen.text):
                cache.put(key, {k: v for k, v in asdict(gen).items() if k not in ("item_id", "cached")})
        async with lock:
            done += 1
            if progress:
                progress(label, done, len(items))
        return gen

    return await gather_or_cancel([one(it) for it in items])


async def gather_or_cancel(coros: Sequence[Any]) -> list[Any]:
    """Like ``asyncio.gather``, but the first error cancels every sibling before it propagates."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return []
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        for t in tasks:
            t.cancel()
        raise
    errors = [t for t in done if not t.cancelled() and t.exception() is not None]  # retrieves every error
    failed = errors[0] if errors else None
    if failed is not None:
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        raise failed.exception()  # type: ignore[misc]
    return [t.result() for t in tasks]


async def _call(provider: Any, item: EvalItem, params: dict[str, Any], retries: int, backoff_s: float,
                stop: threading.Event | None) -> Generation:
    attempt = 0
    while True:
        attempt += 1
        if stop is not None and stop.is_set():
            raise EvalInterrupted("Evaluation stopped.")
        t0 = time.perf_counter()
        try:
            resp = await provider.openai_completion(_body(item, params))
        except UpstreamError as exc:
            if exc.retryable and attempt <= retries:
                await asyncio.sleep(backoff_s * 2 ** (attempt - 1))
                continue
            return Generation(item.id, error=redact(f"{exc.code}: {exc.message}"), attempts=attempt,
                              latency_ms=(time.perf_counter() - t0) * 1000)
        except StewardError as exc:  # upstream errors may quote the prompt: redacted like every output
            return Generation(item.id, error=redact(f"{exc.code}: {exc.message}"), attempts=attempt,
                              latency_ms=(time.perf_counter() - t0) * 1000)
        answer = exchange.answer_from_completion(resp)
        usage = resp.get("usage") or {}
        return Generation(
            item.id, text=exchange.answer_text(answer), latency_ms=(time.perf_counter() - t0) * 1000,
            input_tokens=int(usage.get("prompt_tokens") or 0), output_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=answer.get("finish_reason") or "", attempts=attempt, answer=dict(answer),
        )


def _body(item: EvalItem, params: dict[str, Any]) -> dict[str, Any]:
    """The request body that asks what the application asked (one answer, not streamed)."""
    body = exchange.request_body(item.messages, item.request, {k: v for k, v in params.items() if v is not None})
    for k in ("n", "stream", "stream_options"):
        body.pop(k, None)
    if params.get("max_tokens") is not None:  # the evaluation's limit wins over a logged max_completion_tokens
        body.pop("max_completion_tokens", None)
    return body


def run_models_sync(jobs: dict[str, Any], *, show_progress: bool = False,
                    on_progress: ProgressFn | None = None, deadline: float | None = None) -> dict[str, list[Generation]]:
    """Run several ``run_model`` jobs (name -> kwargs) at once on the providers' loop.

    Shows a rich progress bar when ``show_progress``; a ``KeyboardInterrupt`` (or any error) while
    waiting stops the outstanding calls and propagates.  Past ``deadline`` (a ``time.monotonic()``
    instant) the outstanding calls are stopped and :class:`EvalDeadline` is raised.
    """
    from modelsteward.providers import run_sync

    stop = threading.Event()
    bar: Any = None
    tasks: dict[str, Any] = {}
    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       transient=True)
        for name, kw in jobs.items():
            tasks[name] = bar.add_task(kw.get("label", name), total=len(kw["items"]))

    def report(label: str, done: int, total: int) -> None:
        if bar is not None:
            for name, kw in jobs.items():
                if kw.get("label", name) == label:
                    bar.update(tasks[name], completed=done)
        if on_progress is not None:
            on_progress(label, done, total)

    async def main() -> dict[str, list[Generation]]:
        names = list(jobs)
        work = asyncio.ensure_future(
            gather_or_cancel([run_model(**{"label": n, **jobs[n]}, progress=report, stop=stop) for n in names]))
        while not work.done():  # the caller's thread sets ``stop`` on Ctrl-C: cancel what is in flight
            await asyncio.wait([work], timeout=0.2)
            if deadline is not None and time.monotonic() >= deadline and not work.done():
                stop.set()
                work.cancel()
                raise EvalDeadline("Evaluation ran past its wall-clock deadline and was stopped.")
            if stop.is_set() and not work.done():
                work.cancel()
                raise EvalInterrupted("Evaluation stopped before it finished; nothing was recorded.")
        return dict(zip(names, work.result()))

    try:
        if bar is not None:
            with bar:
                return run_sync(main())
        return run_sync(main())
    except BaseException:
        stop.set()
        raise
