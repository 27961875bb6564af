"""The context meter at the end of every cell's footer: ``context 15k / 1M (2%)``.

Within one conversation the context only grows, until a compaction or ``/clear``; so after a turn
that sent a model request, the usage that request reported (its input in all its forms, and its
output) is what the context holds, and the Result's ``modelUsage`` names the window. That figure
costs nothing, and it is the meter while the context is far from full.

The CLI's own count, the ``get_context_usage`` control request (what ``/context`` shows), adds
where auto-compaction starts, which the warning near it needs. Asking costs a round trip (~26 ms,
about two thirds of a short turn), and the first time in a process about a second of the CLI's
own work: asked at the end of the first cell, it made the first cell after every kernel start or
restart a second slower. So the CLI is asked only where its figures matter: once the context
fills a good part of the window (``ASK_FROM``: auto-compaction may be near, even with a lowered
threshold), and when the turn's own figure is missing (a turn without a model request, such as a
slash command). Its count then stands, raised by later requests, until it cannot hold: a new
process, conversation or model, or a compaction. A CLI that cannot answer (older, or stopped)
leaves the turn's own figure.
"""

from __future__ import annotations

import logging
import os
import weakref
from dataclasses import dataclass, replace
from typing import Any

import anyio

from .session import AssistantMessage, Result, Session, SessionError, SystemMessage
from .slash import tokens

__all__ = ["ContextUsage", "LastRequest", "measure"]

log = logging.getLogger("claude_kernel.context")

#: Auto-compaction is "near" from this share of its threshold on.
NEAR = 0.85
#: The parts of a request's usage that fill the context window (its input, in all its forms, and output).
_CONTEXT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
#: How long the end of a turn waits for the CLI's answer (~40 ms after a turn, ~1 s before the first).
ASK_FOR = 2.0
#: The share of the window from which the CLI's count is asked for: its auto-compaction starts at
#: about 80-90% of the window by default, and ``CLAUDE_AUTOCOMPACT_PCT_OVERRIDE`` may lower that.
ASK_FROM = 0.4
#: Caps the window the CLI fills (and ``/context`` then shows that cap as the window).
_WINDOW_CAP = "CLAUDE_CODE_AUTO_COMPACT_WINDOW"


def _number(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else None


@dataclass(frozen=True)
class ContextUsage:
    """How many tokens the conversation fills of the model's context window."""

    used: int
    window: int
    #: Where the CLI compacts the conversation by itself; None when it does not (or did not say).
    compacts_at: int | None = None

    @classmethod
    def of(cls, answer: dict[str, Any]) -> ContextUsage | None:
        """From the ``get_context_usage`` answer (``totalTokens``, ``maxTokens``, ``autoCompactThreshold``...)."""
        used, window = _number(answer.get("totalTokens")), _number(answer.get("maxTokens"))
        if used is None or not window:
            return None
        threshold = _number(answer.get("autoCompactThreshold")) if answer.get("isAutoCompactEnabled", True) else None
        return cls(used, window, threshold or None)

    @property
    def near_compaction(self) -> bool:
        return self.compacts_at is not None and self.used >= NEAR * self.compacts_at

    def meter(self) -> str:
        share = min(100, round(100 * self.used / self.window))
        text = f"context {tokens(self.used)} / {tokens(self.window)} ({share}%)"
        if self.near_compaction:
            assert self.compacts_at is not None
            text += f" · auto-compaction near (at {tokens(self.compacts_at)}; `/compact` now chooses when)"
        return text


class LastRequest:
    """What the turn's model requests reported, and whether it compacted (fed every event of a turn)."""

    def __init__(self) -> None:
        #: Tokens the turn's last model request filled; None when it sent none.
        self.used: int | None = None
        self.compacted = False

    def see(self, event: object) -> None:
        if isinstance(event, AssistantMessage) and not event.parent_tool_use_id and event.model != "<synthetic>":
            usage = (event.raw.get("message") or {}).get("usage")
            if isinstance(usage, dict):
                self.used = sum(_number(usage.get(key)) or 0 for key in _CONTEXT_KEYS)
        elif isinstance(event, SystemMessage) and event.subtype == "compact_boundary":
            self.compacted = True

    def estimate(self, result: Result | None, *, cap: int | None = None) -> ContextUsage | None:
        """The turn's own figure: its last request's usage, of the largest window the Result names.

        ``cap`` is the CLI's own limit on the window, where one is set.
        """
        if not self.used or result is None:
            return None
        models = result.raw.get("modelUsage")
        windows = [_number(m.get("contextWindow")) for m in models.values()] if isinstance(models, dict) else []
        largest = max((w for w in windows if w), default=0)
        window = min(largest, cap) if cap and largest else largest
        return ContextUsage(self.used, window) if window else None


def _window_cap(session: Session) -> int | None:
    """The cap the CLI was started with, from its environment (one set in its settings is not seen)."""
    value = session.options.env.get(_WINDOW_CAP, os.environ.get(_WINDOW_CAP, ""))
    return _number(int(value)) if value.strip().isdigit() else None


@dataclass(frozen=True)
class _Known:
    """The CLI's last count for a session: for which conversation and model, and the figures."""

    conversation: tuple[str | None, str]
    usage: ContextUsage


#: Per session, so that a session closed and dropped takes its entry with it.
_known: weakref.WeakKeyDictionary[Session, _Known] = weakref.WeakKeyDictionary()


async def _ask(session: Session) -> ContextUsage | None:
    with anyio.move_on_after(ASK_FOR):
        try:
            return ContextUsage.of(await session.context_usage())
        except SessionError as exc:
            log.debug("no context usage from the CLI: %s", exc)
    return None


async def measure(session: Session, last: LastRequest, result: Result | None) -> str:
    """The meter for the footer; "" when neither the CLI nor the turn says how full the context is."""
    conversation = (session.session_id, session.init.model if session.init is not None else "")
    known = _known.get(session)
    estimate = last.estimate(result, cap=_window_cap(session))
    if known is not None and known.conversation == conversation and last.used is not None and not last.compacted:
        usage: ContextUsage | None = replace(known.usage, used=max(last.used, known.usage.used))
    elif estimate is not None and estimate.used < ASK_FROM * estimate.window:
        return estimate.meter()
    else:
        usage = None
    if usage is None or usage.near_compaction:
        usage = await _ask(session) or usage
    if usage is None:
        return estimate.meter() if estimate is not None else ""
    _known[session] = _Known(conversation, usage)
    return usage.meter()
