"""End every CLI process group when the host process is told to stop (SIGTERM, SIGHUP).

Each CLI runs in its own process group (see :mod:`._transport`), so a signal aimed at the host
never reaches it or the tools it runs (a Bash ``sleep``). When a kernel is stopped by a signal
rather than a shutdown request, as Enterprise Gateway's remote proxies do (SIGINT, then SIGTERM
about a millisecond later), nothing else would end those groups: Python's default SIGTERM action
exits without running finalizers. So the transports register their groups here, and
:func:`end_groups_on_signals` installs synchronous handlers that end them all, then let the signal
do what it would have done.

A CLI still being spawned when the signal lands is not registered yet; it is not orphaned for
long: its stdin closes when the host exits, and the CLI exits at that end of input (no turn, so
no tool, has started yet).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["end_all_groups", "end_groups_on_signals", "live_groups"]

#: Process-group ids (each the pid of a CLI this process started) not yet shut down.
live_groups: set[int] = set()

_SIGNALS = ("SIGTERM", "SIGHUP")
_installed: set[int] = set()


def _gone(pid: int) -> bool:
    """Whether our child ``pid`` has exited; reaps it if so (the host is exiting, nobody else will)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # already reaped (by asyncio's child watcher), or not our child
        return True
    return reaped != 0


def end_all_groups(grace: float = 1.0) -> None:
    """SIGTERM every live group, give the CLIs ``grace`` seconds to exit, then SIGKILL the groups.

    Synchronous, so a signal handler can call it. SIGTERM first because the CLI then exits cleanly;
    the SIGKILL that follows ends whatever ignored the SIGTERM (a tool's child, say).
    """
    groups = list(live_groups)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while not all(_gone(pgid) for pgid in groups) and time.monotonic() < deadline:
        time.sleep(0.01)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        live_groups.discard(pgid)


def _handler(previous: Any) -> Callable[[int, FrameType | None], None]:
    def handle(signum: int, frame: FrameType | None) -> None:
        end_all_groups()
        if callable(previous):
            previous(signum, frame)
            return
        # The default action (exit): restore it and let the signal take its course, so the exit
        # status still says which signal ended the process.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    return handle


def end_groups_on_signals() -> None:
    """Make SIGTERM and SIGHUP end every CLI process group before they act as they would have.

    Call it once from the main thread (signal handlers can only be set there); later calls do
    nothing. A handler already installed is chained to; an ignored signal stays ignored (``nohup``
    means the host wants to outlive a hang-up, and then its CLIs should too).
    """
    for name in _SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None or signum in _installed:  # SIGHUP does not exist on Windows
            continue
        previous = signal.getsignal(signum)
        if previous == signal.SIG_IGN:
            continue
        _installed.add(signum)
        signal.signal(signum, _handler(previous))
