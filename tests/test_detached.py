"""Tasks nobody awaits (_detached.py): they run to their end and their failures are logged."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref

import pytest

from claude_kernel._detached import run_detached


def test_a_detached_task_survives_garbage_collection() -> None:
    async def main() -> bool:
        async def wait() -> None:
            # Nothing but this task holds the future: with a plain create_task, gc collects both.
            await asyncio.get_running_loop().create_future()

        task = weakref.ref(run_detached(wait()))
        await asyncio.sleep(0)
        gc.collect()
        alive = task()
        if alive is not None:
            alive.cancel()
        return alive is not None

    assert asyncio.run(main())


def test_a_detached_tasks_failure_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def fail() -> None:
        raise ValueError("lost otherwise")

    async def main() -> None:
        task = run_detached(fail())
        with pytest.raises(ValueError):
            await task
        await asyncio.sleep(0)  # the done callback runs on the next loop iteration

    with caplog.at_level(logging.ERROR, logger="claude_kernel"):
        asyncio.run(main())
    assert "lost otherwise" in caplog.text
