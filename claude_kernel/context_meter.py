"""The context meter at the end of every cell's footer: ``context 15k / 1M (2%)``.

The figure is the CLI's own (the ``get_context_usage`` control request, what ``/context`` shows),
so it counts the system prompt, tools and skills as the CLI does, and follows ``/compact`` and
``/clear``, which send no model request. A CLI that cannot answer (older, or stopped) falls back to
what the turn's last model request reported. The footer warns when the CLI's auto-compaction is near,
so a long notebook is not surprised by a summarized conversation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import anyio

from .session import AssistantMessage, Result, Session, SessionError
from .slash import tokens

__all__ = ["ContextUsage", "LastRequest", "measure"]

log = logging.getLogger("claude_kernel.context")

#: Auto-compaction is "near" from this share of its threshold on.
NEAR = 0.85
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
    """What the turn's last model request reported: the meter when the CLI cannot be asked."""

    def __init__(self) -> None:
        self._usage: dict[str, Any] | None = None

    def see(self, event: object) -> None:
        if isinstance(event, AssistantMessage) and not event.parent_tool_use_id and event.model != "<synthetic>":
            usage = (event.raw.get("message") or {}).get("usage")
            if isinstance(usage, dict):
                self._usage = usage

    def estimate(self, result: Result | None) -> ContextUsage | None:
        """The context the last request filled, of the largest window the Result names."""
        if self._usage is None or result is None:
            return None
        used = sum(
            _number(self._usage.get(key)) or 0
            for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
        )
        models = result.raw.get("modelUsage")
        windows = [_number(m.get("contextWindow")) for m in models.values()] if isinstance(models, dict) else []
        window = max((w for w in windows if w), default=0)
        return ContextUsage(used, window) if used and window else None


async def measure(session: Session, last: LastRequest, result: Result | None) -> str:
    """The meter for the footer; "" when neither the CLI nor the turn says how full the context is."""
    usage = None
    with anyio.move_on_after(ASK_FOR):
        try:
            usage = ContextUsage.of(await session.context_usage())
        except SessionError as exc:
            log.debug("no context usage from the CLI: %s", exc)
    if usage is None:
        usage = last.estimate(result)
    return usage.meter() if usage is not None else ""
