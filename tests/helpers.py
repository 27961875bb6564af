"""Small helpers shared by the tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, TypeVar

from claude_kernel.session import Event, Session

T = TypeVar("T")


async def collect_turn(session: Session) -> list[Event]:
    """Read events until the turn ends."""
    events: list[Event] = []
    while (event := await session.next_event()) is not None:
        events.append(event)
    return events


def of_type(events: list[Event], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]


def terminal_ipython(cli_env: dict[str, str], workdir: Path) -> Any:
    """Terminal IPython under pexpect, with ``%load_ext claude_kernel`` done; the next prompt is In [2]."""
    import pexpect

    ipython = pexpect.spawn(
        sys.executable,
        ["-m", "IPython", "--no-banner", "--colors=NoColor", "--simple-prompt"],
        env={**os.environ, **cli_env, "TERM": "dumb"},
        cwd=str(workdir),
        encoding="utf-8",
        timeout=60,
    )
    ipython.expect(r"In \[1\]: ")
    ipython.sendline("%load_ext claude_kernel")
    ipython.expect(r"In \[2\]: ")
    return ipython
