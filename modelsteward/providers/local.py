"""The local provider: a Hugging Face causal LM (plus an optional peft adapter) run in-process.

Loads from any transformers folder (the converted SmolLM2 base, a tiny test model, a full
fine-tune) lazily on first use.  Generation runs in a dedicated thread pool whose size is the
concurrency limit (``STEWARD_LOCAL_CONCURRENCY``, default 1: on a small CPU two generations at
once are slower than one after the other), never on the event loop.  The tokenizer's chat template
is applied when it has one; otherwise a plain ``role: content`` transcript is used.  Greedy when
temperature is 0 or None, sampling otherwise.  Requests arriving while a generation runs are batched
into the next one (``STEWARD_LOCAL_MAX_BATCH``), each row with its own temperature, ``top_p``,
``top_k``, seed, tools and stop strings (``providers/local_sampling.py``); greedy rows answer exactly
as a plain greedy ``generate``; a seeded request draws from its own generator.
``openai_completion`` takes a request's ``tools``: rendered by a chat template that supports them,
tool calls parsed out of the output (``providers/local_tools.py``; a template without tool support
answers in text).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Unpack

from modelsteward.errors import ConfigError, InvalidInput, UpstreamError
from modelsteward.providers.base import (
    SAMPLING_KEYS,
    ChatResult,
    Message,
    SamplingArgs,
    StreamChunk,
    openai_chunk,
    openai_response,
    openai_sampling,
    sampling_params,
)
from modelsteward.providers.chatformat import chat_inputs
from modelsteward.providers.local_tools import offered_tools, parse_tool_calls

__all__ = ["LocalProvider", "DEFAULT_MAX_NEW_TOKENS"]

# One lock for every instance: transformers' lazy imports and meta-device loading are not
# thread-safe, so two models loading at the same moment (evaluation of candidate and baseline)
# could fail with "Cannot copy out of meta tensor".
_LOAD_LOCK = threading.Lock()

DEFAULT_MAX_NEW_TOKENS = 256


class LocalProvider:
    """A transformers model (optionally with a LoRA adapter) behind the ChatProvider interface."""

    def __init__(
        self,
        model_id: str,
        path: str | Path,
        *,
        adapter_path: str | Path | None = None,
        concurrency: int | None = None,
        device: str | None = None,
    ) -> None:
        self.model_id = model_id
        self.path = Path(path)
        self.adapter_path = Path(adapter_path) if adapter_path else None
        n = concurrency or int(os.environ.get("STEWARD_LOCAL_CONCURRENCY", "1"))
        self.concurrency = max(1, n)
        self.device = device or os.environ.get("STEWARD_LOCAL_DEVICE", "cpu")
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"local-{model_id}")
        self._load_lock = _LOAD_LOCK
        self._model: Any = None
        self._tok: Any = None
        self._count_lock = threading.Lock()
        # Requests arriving while a generation runs are batched into the next one
        # (STEWARD_LOCAL_MAX_BATCH, default 8; 1 turns batching off).
        self.max_batch = max(1, int(os.environ.get("STEWARD_LOCAL_MAX_BATCH", "8")))
        # STEWARD_LOCAL_MERGE_ADAPTER=0 keeps a LoRA adapter unmerged (slower, but the peft model stays inspectable).
        self.merge_adapter = os.environ.get("STEWARD_LOCAL_MERGE_ADAPTER", "1").strip().lower() not in ("0", "false", "no")
        self._pending: list[tuple[list[Message], dict[str, Any], Future[tuple[str, int, int, str]]]] = []
        self._drain_scheduled = False
        self.batches = 0  # batched generate calls so far
        self.active = 0  # generations running now
        self.peak_active = 0  # the most that ever ran at once (never above ``concurrency``)

    def __repr__(self) -> str:
        extra = f", adapter={str(self.adapter_path)!r}" if self.adapter_path else ""
        return f"LocalProvider({self.model_id!r}, {str(self.path)!r}{extra})"

    # ---------------------------------------------------------------- loading
    def load(self) -> None:
        """Load tokenizer, weights and adapter (idempotent, thread-safe)."""
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is not None:
                return
            if not (self.path / "config.json").exists():
                raise ConfigError(f"Local model folder {self.path} has no config.json; is it a transformers model?")
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            tok = AutoTokenizer.from_pretrained(self.path)
            model = AutoModelForCausalLM.from_pretrained(self.path, dtype=torch.float32)
            if self.adapter_path is not None:
                if not (self.adapter_path / "adapter_config.json").exists():
                    raise ConfigError(f"Adapter folder {self.adapter_path} has no adapter_config.json.")
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(self.adapter_path))  # type: ignore[arg-type,assignment]
                if self.merge_adapter:
                    # Serving only: fold the LoRA deltas into the weights, so a fine-tuned variant
                    # answers as fast as its base (an unmerged adapter adds two matmuls per layer).
                    model = model.merge_and_unload()  # type: ignore[operator,assignment]
            model.to(self.device)  # type: ignore[arg-type]
            model.eval()
            if tok.pad_token_id is None and tok.eos_token_id is not None:
                tok.pad_token = tok.eos_token
            self._tok, self._model = tok, model

    # ---------------------------------------------------------------- generation (worker thread)
    def _prompt_ids(self, messages: Sequence[Message], tools: list[dict[str, Any]] | None = None) -> Any:
        import torch

        tok = self._tok
        if not messages:
            raise InvalidInput("messages is empty; give at least one message.")
        # the same rendering the trainer uses (providers/chatformat.py): the template's own tool support, else the
        # documented fallback (tools in the system turn, <tool_call> blocks), so a fine-tune is prompted as it learned
        msgs, tmpl_tools, _ = chat_inputs(tok, messages, tools or None)
        if getattr(tok, "chat_template", None):
            extra = {"tools": tmpl_tools} if tmpl_tools else {}
            enc = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True,
                                          return_tensors="pt", **extra)
            ids = enc["input_ids"]
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant:"
            ids = tok(text, return_tensors="pt")["input_ids"]
        return torch.as_tensor(ids).to(self.device)

    def _gen_kwargs(self, params: dict[str, Any], *, stop: Sequence[str] | None = None) -> dict[str, Any]:
        """``generate`` keywords for one request: greedy, or sampled by a ``RowSampler`` (its own
        generator, seeded when given; the global torch seed is never touched)."""
        from transformers import LogitsProcessorList

        kw: dict[str, Any] = {
            "max_new_tokens": int(params.get("max_tokens") or DEFAULT_MAX_NEW_TOKENS),
            "pad_token_id": self._tok.pad_token_id,
            "do_sample": False, "temperature": None, "top_p": None, "top_k": None,
        }
        sampler = self._sampler([params])
        if sampler is not None:
            kw["logits_processor"] = LogitsProcessorList([sampler])
        if stop:
            kw.update(stop_strings=list(stop), tokenizer=self._tok)
        return kw

    def _sampler(self, rows: Sequence[dict[str, Any]]) -> Any:
        """A ``RowSampler`` for the rows' settings, or None when every row is greedy (a plain greedy
        ``generate``, answers as before)."""
        from modelsteward.providers.local_sampling import RowSampler, row_sampling

        top_k = getattr(getattr(self._model, "generation_config", None), "top_k", None)
        sampler = RowSampler([row_sampling(p, top_k) for p in rows], device=self.device)
        return sampler if sampler.sampled else None

    def _generate(self, messages: Sequence[Message], params: dict[str, Any], streamer: Any = None) -> tuple[str, int, int, str]:
        with self._count_lock:
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
        try:
            return self._generate_now(messages, params, streamer)
        finally:
            with self._count_lock:
                self.active -= 1

    def _generate_now(self, messages: Sequence[Message], params: dict[str, Any], streamer: Any) -> tuple[str, int, int, str]:
        import torch

        self.load()
        ids = self._prompt_ids(messages, params.get("tools"))
        stop = params.get("stop")
        kw = self._gen_kwargs(params, stop=stop)
        with torch.inference_mode():
            out = self._model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), streamer=streamer, **kw)
        new = out[0, ids.shape[1]:]
        text = self._tok.decode(new, skip_special_tokens=True)
        finish = "stop"
        eos_ids = self._eos_ids()
        if len(new) >= kw["max_new_tokens"] and (len(new) == 0 or int(new[-1]) not in eos_ids):
            finish = "length"
        for s in stop or []:
            cut = text.find(s)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        return text, int(ids.shape[1]), int(len(new)), finish

    def _eos_ids(self) -> set[int]:
        eos = self._tok.eos_token_id
        return set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()

    # ---------------------------------------------------------------- dynamic batching
    def _submit(self, messages: list[Message], params: dict[str, Any]) -> Future[tuple[str, int, int, str]]:
        fut: Future[tuple[str, int, int, str]] = Future()
        with self._count_lock:
            self._pending.append((messages, params, fut))
            if not self._drain_scheduled:
                self._drain_scheduled = True
                self._executor.submit(self._drain)
        return fut

    def _drain(self) -> None:
        """Worker: run pending requests in batches of equal max_tokens until none are left."""
        while True:
            with self._count_lock:
                if not self._pending:
                    self._drain_scheduled = False
                    return
                want = self._pending[0][1].get("max_tokens")
                batch = [p for p in self._pending if p[1].get("max_tokens") == want][: self.max_batch]
                for item in batch:
                    self._pending.remove(item)
                self.active += 1
                self.peak_active = max(self.peak_active, self.active)
            try:
                results = self._generate_batch([(m, p) for m, p, _ in batch])
                for (_, _, fut), res in zip(batch, results):
                    fut.set_result(res)
            except BaseException as exc:  # noqa: BLE001 - every waiting request gets the failure
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
            finally:
                with self._count_lock:
                    self.active -= 1

    def _generate_batch(self, batch: list[tuple[list[Message], dict[str, Any]]]) -> list[tuple[str, int, int, str]]:
        """One left-padded ``generate`` for several requests, each with its own sampling settings
        (``providers/local_sampling.py``), tools and stop strings; per-row text, token counts, finish."""
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        self.load()
        if len(batch) == 1:
            return [self._generate_now(batch[0][0], batch[0][1], None)]
        self.batches += 1
        rows = [self._prompt_ids(m, p.get("tools"))[0] for m, p in batch]
        width = max(int(r.shape[0]) for r in rows)
        pad = self._tok.pad_token_id if self._tok.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=rows[0].dtype, device=self.device)
        mask = torch.zeros((len(rows), width), dtype=torch.long, device=self.device)
        for i, r in enumerate(rows):
            ids[i, width - r.shape[0]:] = r
            mask[i, width - r.shape[0]:] = 1
        kw = self._gen_kwargs({"max_tokens": batch[0][1].get("max_tokens")})
        sampler = self._sampler([p for _, p in batch])
        if sampler is not None:
            kw["logits_processor"] = LogitsProcessorList([sampler])
        stops = [p.get("stop") for _, p in batch]
        if any(stops):
            from modelsteward.providers.local_sampling import RowStops

            kw["stopping_criteria"] = StoppingCriteriaList([RowStops(self._tok, stops, width)])
        with torch.inference_mode():
            out = self._model.generate(input_ids=ids, attention_mask=mask, **kw)
        return [self._row_result(out[i, width:].tolist(), int(r.shape[0]), stops[i]) for i, r in enumerate(rows)]

    def _row_result(self, new: list[int], n_in: int, stop: Sequence[str] | None) -> tuple[str, int, int, str]:
        """One batch row's answer: cut at its first end-of-sequence token, then at its first stop string."""
        eos_ids = self._eos_ids()
        cut = next((k + 1 for k, t in enumerate(new) if t in eos_ids), None)
        finish = "stop" if cut is not None else "length"
        new = new[:cut] if cut is not None else new
        text = self._tok.decode(new, skip_special_tokens=True)
        if stop:
            hits = [text.find(s) for s in stop if s in text]
            if hits:
                # the tokens up to the one that completed the stop string count, as in a one-request generate
                n = next((k for k in range(1, len(new) + 1)
                          if any(s in self._tok.decode(new[:k], skip_special_tokens=True) for s in stop)), len(new))
                text, finish, new = text[:min(hits)], "stop", new[:n]
        return text, n_in, len(new), finish

    @staticmethod
    def _params(params: SamplingArgs) -> dict[str, Any]:
        """The ``SamplingArgs`` this provider reads (others ignored), each key present, ``stop`` a list."""
        max_tokens = params.get("max_tokens")
        if max_tokens is not None and int(max_tokens) < 1:
            raise InvalidInput(f"max_tokens must be >= 1, got {max_tokens}.")
        given = sampling_params(**{k: params.get(k) for k in SAMPLING_KEYS})
        return {k: given.get(k) for k in SAMPLING_KEYS}

    # ---------------------------------------------------------------- plain interface
    async def chat(self, messages: Sequence[Message], **sampling: Unpack[SamplingArgs]) -> ChatResult:
        return await self._chat(messages, self._params(sampling))

    async def _chat(self, messages: Sequence[Message], params: dict[str, Any]) -> ChatResult:
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            if self.max_batch > 1:  # every request may join a batch (per-row sampling, tools, stop strings)
                text, n_in, n_out, finish = await asyncio.wrap_future(self._submit(list(messages), params))
            else:
                text, n_in, n_out, finish = await loop.run_in_executor(self._executor, self._generate, list(messages),
                                                                       params)
        except (InvalidInput, ConfigError):
            raise
        except Exception as exc:  # noqa: BLE001 - translate torch/transformers failures at the boundary
            raise UpstreamError(f"local model {self.model_id} failed: {exc}", status=500, retryable=False,
                                model_id=self.model_id) from exc
        return ChatResult(text=text, input_tokens=n_in, output_tokens=n_out,
                          latency_ms=(time.perf_counter() - t0) * 1000, finish_reason=finish, model_id=self.model_id)

    async def stream(self, messages: Sequence[Message], **sampling: Unpack[SamplingArgs]) -> AsyncIterator[StreamChunk]:
        params = self._params(sampling)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        await loop.run_in_executor(None, self.load)
        from transformers import TextStreamer

        provider = self

        class _Push(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text:
                    loop.call_soon_threadsafe(queue.put_nowait, text)

        streamer: _Push | None = _Push(self._tok, skip_prompt=True, skip_special_tokens=True)
        if params["stop"]:
            streamer = None  # stop strings are trimmed after generation; stream the trimmed text at the end

        def work() -> tuple[str, int, int, str]:
            try:
                return provider._generate(list(messages), params, streamer)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        fut = loop.run_in_executor(self._executor, work)
        sent = ""
        while True:
            piece = await queue.get()
            if piece is None:
                break
            sent += piece
            yield StreamChunk(text=piece)
        try:
            text, n_in, n_out, finish = await fut
        except Exception as exc:  # noqa: BLE001
            raise UpstreamError(f"local model {self.model_id} failed: {exc}", status=500, retryable=False,
                                model_id=self.model_id) from exc
        if text.startswith(sent) and len(text) > len(sent):
            yield StreamChunk(text=text[len(sent):])
        yield StreamChunk(finish_reason=finish, input_tokens=n_in, output_tokens=n_out)

    # ---------------------------------------------------------------- OpenAI-shaped (gateway)
    async def openai_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI request body answered locally; its ``tools`` are offered (module docstring)."""
        params = self._params(openai_sampling(body))
        if isinstance(body.get("top_k"), int) and not isinstance(body.get("top_k"), bool) and body["top_k"] > 0:
            params["top_k"] = body["top_k"]  # vLLM's extra field; the local provider honours it
        tools = offered_tools(body)
        if tools:
            params["tools"] = tools
        res = await self._chat(body.get("messages") or [], params)
        out = openai_response(res.text, model=self.model_id, input_tokens=res.input_tokens,
                              output_tokens=res.output_tokens, finish_reason=res.finish_reason)
        if tools:
            text, calls = parse_tool_calls(res.text, {t["function"].get("name") for t in tools})
            if calls:
                choice = out["choices"][0]
                choice["message"].update(content=text, tool_calls=calls)
                choice["finish_reason"] = "tool_calls"
        return out

    async def openai_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        rid, created = "chatcmpl-" + uuid.uuid4().hex[:24], int(time.time())
        yield openai_chunk(rid, self.model_id, created, role="assistant", text="")
        async for piece in self.stream(body.get("messages") or [], **openai_sampling(body)):
            if piece.final:
                yield openai_chunk(rid, self.model_id, created, finish_reason=piece.finish_reason)
                n_in, n_out = piece.input_tokens or 0, piece.output_tokens or 0
                yield openai_chunk(rid, self.model_id, created, empty_choices=True, usage={
                    "prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out})
            else:
                yield openai_chunk(rid, self.model_id, created, text=piece.text)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
