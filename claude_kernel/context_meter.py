"""The context meter at the end of every cell's footer: ``context 15k / 1M (2%)``.

The figures are the CLI's own: the ``get_context_usage`` control request (what ``/context``
shows) gives the window, where auto-compaction starts, and the tokens in use as the CLI counts
them (system prompt, tools and skills included). Asking costs a round trip (~26 ms, about two
thirds of a short turn), so it is not asked after every turn. Within one conversation the context
only grows, until a compaction or ``/clear``; so after a turn that sent a model request, the usage
that request reported, or the CLI's last count if that is larger, is the figure. The CLI is asked
again when that cannot hold: a new process, conversation or model; a turn without a model request
(a slash command); a compaction; or a figure near auto-compaction, where the warning must be
right. A CLI that cannot answer (older, or stopped) leaves the last request's usage alone.
"""

from __future__ import annotations

import logging
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

    def estimate(self, result: Result | None) -> ContextUsage | None:
        """Without the CLI's figures: the last request's usage, of the largest window the Result names."""
        if not self.used or result is None:
            return None
        models = result.raw.get("modelUsage")
        windows = [_number(m.get("contextWindow")) for m in models.values()] if isinstance(models, dict) else []
        window = max((w for w in windows if w), default=0)
        return ContextUsage(self.used, window) if window else None


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
    usage = None
    if known is not None and known.conversation == conversation and last.used is not None and not last.compacted:
        usage = replace(known.usage, used=max(last.used, known.usage.used))
    if usage is None or usage.near_compaction:
        usage = await _ask(session) or usage
    if usage is None:
        return meter.meter() if (meter := last.estimate(result)) is not None else ""
    _known[session] = _Known(conversation, usage)
    return usage.meter()
