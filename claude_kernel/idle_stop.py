"""Give an idle notebook's CLI back: after ``CLAUDE_KERNEL_IDLE_STOP_S`` seconds without a request.

Each open notebook holds a CLI process of about 200 MB, idle or not. After the idle time, the kernel
ends it (on end of input, so its transcript is complete); the next cell starts one that resumes the
conversation, which costs that cell the first-cell start and nothing else: the session id, the
cells (``%history``) and what was spent (the budget) stay with the :class:`Conversation`.

Never while the conversation has work pending (:meth:`Conversation.has_pending_work`) or the host
says it is busy; the timer then starts again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Callable, Mapping

from .conversation import Conversation

__all__ = ["DEFAULT_IDLE_STOP_S", "IDLE_STOP_VARIABLE", "IdleStop", "idle_stop_seconds"]

log = logging.getLogger("claude_kernel")

IDLE_STOP_VARIABLE = "CLAUDE_KERNEL_IDLE_STOP_S"
#: Fifteen minutes: longer than a pause to read an answer, short enough that a forgotten tab is cheap.
DEFAULT_IDLE_STOP_S = 900.0


def idle_stop_seconds(environ: Mapping[str, str] | None = None) -> float:
    """The idle time from ``CLAUDE_KERNEL_IDLE_STOP_S``: seconds, 0 for never; a bad value warns and is ignored."""
    raw = (os.environ if environ is None else environ).get(IDLE_STOP_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_IDLE_STOP_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        log.warning(
            "%s=%r is not a number of seconds (0 turns the idle stop off); using %g",
            IDLE_STOP_VARIABLE,
            raw,
            DEFAULT_IDLE_STOP_S,
        )
        return DEFAULT_IDLE_STOP_S
    return seconds


class IdleStop:
    """The idle timer of one conversation: :meth:`activity` stops it, :meth:`idle` starts it again."""

    def __init__(self, conversation: Conversation, seconds: float, *, busy: Callable[[], bool] = lambda: False) -> None:
        self.conversation = conversation
        self.seconds = seconds
        self._busy = busy
        self._timer: asyncio.TimerHandle | None = None
        self._stopping: asyncio.Task[None] | None = None
        #: How many times the CLI was ended for being idle.
        self.stops = 0

    def activity(self) -> None:
        """A request came: the conversation is not idle."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def idle(self, loop: asyncio.AbstractEventLoop) -> None:
        """Nothing is running now: end the CLI if nothing happens for ``seconds`` (0: never)."""
        self.activity()
        if self.seconds > 0:
            self._timer = loop.call_later(self.seconds, self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._stopping = loop.create_task(self._stop(loop))

    async def _stop(self, loop: asyncio.AbstractEventLoop) -> None:
        conversation = self.conversation
        if self._busy() or conversation.has_pending_work():
            self.idle(loop)  # look again later
            return
        if conversation.session is None:
            return
        log.info("the conversation was idle for %g s: ending its CLI; the next cell resumes it", self.seconds)
        self.stops += 1
        await conversation.close()
