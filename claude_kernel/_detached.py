"""Tasks nobody awaits, kept alive until they finish.

The event loop holds only a weak reference to a task: one started with ``create_task`` whose
result is dropped can be garbage-collected mid-run (the asyncio documentation warns of it), and
then its work silently stops. :func:`run_detached` holds each such task until it is done, and
logs its exception, since nobody else will see it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["run_detached"]

log = logging.getLogger("claude_kernel")

_running: set[asyncio.Task[Any]] = set()


def run_detached(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Run ``coro`` as a task on the running loop that lives until it is done."""
    task = asyncio.get_running_loop().create_task(coro)
    _running.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _running.discard(task)
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("a background task failed", exc_info=exc)
