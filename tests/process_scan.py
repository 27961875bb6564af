"""Find the processes a test started, wherever they were reparented: by a variable they inherit."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

TAG_VARIABLE = "CLAUDE_KERNEL_TEST_TAG"


def new_tag() -> dict[str, str]:
    """An environment entry that every descendant of a process started with it inherits."""
    return {TAG_VARIABLE: uuid.uuid4().hex}


def tagged(tag: dict[str, str]) -> dict[int, str]:
    """Live (not zombie) processes carrying ``tag``: pid -> command line."""
    needle = f"{TAG_VARIABLE}={tag[TAG_VARIABLE]}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def wait_for_none(tag: dict[str, str], timeout: float = 10.0) -> dict[int, str]:
    """Wait until no process carries ``tag``; what is left after ``timeout`` (empty: all gone)."""
    deadline = time.monotonic() + timeout
    while (left := tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
