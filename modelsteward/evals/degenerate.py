"""Degenerate answers: replies that are no answer at all, whoever wrote them (issue 26).

A degenerate answer loses every quality comparison against one that is not, whatever else scores the
item (judge, reference, pairwise); two degenerate answers to one prompt are scored as usual (the
pairwise heuristic calls them a tie).  The detector reads the whole request, every message's text
(system, user, earlier assistant turns, tool results), not just the last user turn: an echo of the
user turn under a header line is as empty as an echo of the whole prompt.

An answer is degenerate when it is (checked in this order; the first reason is kept):

- ``empty``: no word at all (whitespace or punctuation only).  An answer that carries tool calls is
  never empty (``Generation.tool_calls``, where the runner records them; their own check scores them).
- ``truncated``: fewer than ``TRUNCATED_WORDS`` words and either cut by the token limit
  (``finish_reason == "length"``) or ending on a word no sentence ends on ("the", "of", "and"...)
  with no closing punctuation.  A long answer cut by ``max_tokens`` is not degenerate: the limit was
  ours.  An evaluation run with a ``max_tokens`` so small that every answer is cut short therefore
  flags both models, and such items tell the two apart no more than ties do.
- an echo of a message (``repeats`` / ``quotes`` / ``copies``): ROUGE-L F1 >= ``ECHO_ROUGE`` against
  the whole prompt or any one message; or the answer contains a whole system, user or assistant
  message of three words or more, word for word (an echo wrapped in boilerplate: llm-katan's echo
  backend writes a header line and ``User: <the last user message>``); or at least ``COPY_SHARE`` of
  the answer lies in runs of ``COPY_SPAN`` words copied from one message (a partial echo of a long
  message).  Tool results count for ROUGE-L only: relaying a tool's answer inside a reply is the
  job.  A restated question followed by its answer reads as a quote too; a use case whose right
  answer copies the request (verbatim extraction) sees both models flagged, and ties.
- ``random words``: at least ``RANDOM_MIN_WORDS`` words, cosine similarity to the prompt below
  ``RANDOM_RELEVANCE`` and fewer than ``RANDOM_FUNCTION_WORDS`` of the words English function words
  (ordinary prose has 40-55 %, a list of random content words next to none; code and JSON have few
  too, but stay related to their prompt: 0.5-0.7 measured, where random words scored 0.03-0.22 against
  story prompts).  The function words are English: an answer in another language is flagged only
  when it is also unrelated to its prompt, and then both models' are.
- ``constant``: the same text (lower-cased words, digits ignored) as more than ``CONSTANT_SHARE``
  of the model's answers, given to at least ``CONSTANT_MIN`` different prompts: boilerplate.  A
  use case whose right answer is the same most of the time (a classifier with a dominant label) sees
  both models flagged on those items, and ties there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from modelsteward.evals.text import copied_share, function_word_ratio, quotes, rouge_l, tokenize

__all__ = ["degenerate", "degenerate_answers", "constant_answers", "message_texts", "ECHO_ROUGE"]

ECHO_ROUGE = 0.8  # an answer this close (ROUGE-L F1) to the prompt or a message repeats it
COPY_SPAN = 12  # words: a run this long, copied from a message, is a copy rather than a shared phrase
COPY_SHARE = 0.8  # an answer this much made of copied runs copies the message
TRUNCATED_WORDS = 8
RANDOM_MIN_WORDS = 8
RANDOM_RELEVANCE = 0.3
RANDOM_FUNCTION_WORDS = 0.1
CONSTANT_SHARE = 0.5
CONSTANT_MIN = 3

_DANGLING = frozenset("a an the of to and or but nor with in on at by for from as into than that which whose "
                      "is are was were be my your his her its our their this these those".split())
_CLOSED = re.compile(r"[.!?…:;)\]}\"'`*]\s*$")


def message_texts(messages: Sequence[Mapping[str, Any]] | str) -> list[tuple[str, str]]:
    """``(role, text)`` of every message with text (multimodal parts' text only); a plain string is one
    user message."""
    if isinstance(messages, str):
        return [("user", messages)] if messages.strip() else []
    out = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        if content and str(content).strip():
            out.append((str(msg.get("role") or "user"), str(content)))
    return out


def _echo(texts: list[tuple[str, str]], answer: str) -> str | None:
    whole = "\n".join(t for _, t in texts)
    if len(texts) > 1 and rouge_l(answer, whole) >= ECHO_ROUGE:
        return "repeats the prompt"
    for role, text in texts:
        if rouge_l(answer, text) >= ECHO_ROUGE:
            return f"repeats the {role} message"
        if role == "tool":
            continue
        if quotes(answer, text):
            return f"quotes the {role} message"
        if copied_share(answer, text, COPY_SPAN) >= COPY_SHARE:
            return f"copies the {role} message"
    return None


def degenerate(request: Sequence[Mapping[str, Any]] | str, answer: str, *, finish_reason: str = "",
               relevance: float | None = None, tool_calls: Any = None) -> str | None:
    """Why ``answer`` to ``request`` (chat messages, or a prompt string) is no answer, else None.
    ``relevance``: the answer's cosine similarity to the prompt, when known (for ``random words``)."""
    words = tokenize(answer)
    if not words:
        return None if tool_calls else "empty"
    if len(words) < TRUNCATED_WORDS and not _CLOSED.search(answer) and (
            finish_reason == "length" or words[-1] in _DANGLING):
        return "truncated"
    echo = _echo(message_texts(request), answer)
    if echo:
        return echo
    if (relevance is not None and len(words) >= RANDOM_MIN_WORDS and relevance < RANDOM_RELEVANCE
            and function_word_ratio(answer) < RANDOM_FUNCTION_WORDS):
        return "random words"
    return None


def constant_answers(answers: Mapping[int, str], prompts: Mapping[int, str]) -> set[int]:
    """The items whose answer is one model's constant reply (see the module docstring)."""
    groups: dict[str, list[int]] = {}
    for i, text in answers.items():
        key = " ".join(re.sub(r"\d+", "0", t) for t in tokenize(text))
        if key:
            groups.setdefault(key, []).append(i)
    out: set[int] = set()
    for idx in groups.values():
        if len(idx) > CONSTANT_SHARE * len(answers) and len({prompts.get(i, "") for i in idx}) >= CONSTANT_MIN:
            out.update(idx)
    return out


def degenerate_answers(requests: Mapping[int, Sequence[Mapping[str, Any]]], gens: Mapping[int, Any],
                       relevance: Mapping[int, float] | None = None) -> dict[int, str]:
    """Item -> reason, for one model's answers (``Generation``-like: ``text``, ``finish_reason``, ``ok``)
    to ``requests`` (item -> messages); items it did not answer are left out."""
    rel = relevance or {}
    ok = {i: g for i, g in gens.items() if g.ok}
    out: dict[int, str] = {}
    for i, g in ok.items():
        why = degenerate(requests[i], g.text, finish_reason=g.finish_reason or "", relevance=rel.get(i),
                         tool_calls=getattr(g, "tool_calls", None))
        if why:
            out[i] = why
    prompts = {i: "\n".join(t for _, t in message_texts(requests[i])) for i in ok}
    for i in constant_answers({i: g.text for i, g in ok.items()}, prompts):
        out.setdefault(i, "constant")
    return out
