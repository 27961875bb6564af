"""One ``claude`` process: spawn, one locked JSON-line writer, a line reader of any size, shutdown.

Why each choice:

* The child gets its own process group (``start_new_session``): a SIGINT aimed at the kernel's
  group (Jupyter's interrupt) must never reach the CLI, because SIGINT ends the CLI's process.
  It also lets shutdown end the whole group, tool subprocesses included.
* Every stdin write goes through one lock and is shielded from cancellation: a single non-JSON or
  half-written line kills the CLI.
* stdout lines can be megabytes (tool output, base64 images), so lines are framed by hand rather
  than with a ``StreamReader`` and its 64 KiB limit.
* stderr goes to an unlinked temporary file: the OS drains it continuously (a full pipe would stall
  the CLI), nothing is lost, and a crash report can read its tail at any time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from subprocess import PIPE
from typing import Any

import anyio
from anyio.abc import Process

from ._errors import NotConnectedError
from ._signals import live_groups

__all__ = ["Transport"]

_READ_CHUNK = 1 << 16


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _end_group(pgid: int) -> None:
    live_groups.discard(pgid)
    _signal_group(pgid, signal.SIGKILL)


class Transport:
    """A running CLI process and its three streams."""

    def __init__(self, process: Process, stderr_file: Any) -> None:
        self._process = process
        self._stderr_file = stderr_file
        self._write_lock = anyio.Lock()
        # Complete stdout lines not read yet, and the start of the next one (split a chunk at a time).
        self._lines: deque[bytes] = deque()
        self._buffer = bytearray()
        self._eof = False
        self._stdin_open = True
        self._shut_down = False
        # If the owner forgets to close us (or the interpreter exits), still end the group; a
        # signal handler that must end it first finds it in live_groups.
        live_groups.add(process.pid)
        self._reaper = weakref.finalize(self, _end_group, process.pid)

    @classmethod
    async def start(cls, argv: Sequence[str], *, cwd: str | None, env: Mapping[str, str]) -> Transport:
        stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the transport
        try:
            process = await anyio.open_process(
                list(argv),
                stdin=PIPE,
                stdout=PIPE,
                stderr=stderr_file,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        except BaseException:
            stderr_file.close()
            raise
        return cls(process, stderr_file)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    @property
    def at_eof(self) -> bool:
        return self._eof

    @property
    def stdin_open(self) -> bool:
        return self._stdin_open

    async def write(self, message: Mapping[str, Any]) -> None:
        """Write one message as one compact JSON line."""
        line = (json.dumps(message, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        async with self._write_lock:
            if not self._stdin_open or self._process.stdin is None:
                raise NotConnectedError("stdin of the claude process is closed")
            # A line cut short by cancellation would be a non-JSON line, which kills the CLI.
            with anyio.CancelScope(shield=True):
                try:
                    await self._process.stdin.send(line)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                    self._stdin_open = False
                    raise NotConnectedError("the claude process stopped reading its stdin") from exc

    async def read_line(self) -> bytes | None:
        """The next stdout line without its newline, or None at end of output.

        Cancel-safe: bytes already received stay in the buffer for the next call.
        """
        while True:
            if self._lines:
                return self._lines.popleft()
            if self._eof:
                if not self._buffer:
                    return None
                line = bytes(self._buffer)
                self._buffer.clear()
                return line
            await self._receive()

    def buffered_line(self) -> bytes | None:
        """The next stdout line if it has already arrived in full (without its newline), else None; never waits."""
        return self._lines.popleft() if self._lines else None

    async def _receive(self) -> None:
        """Receive a chunk: its complete lines are queued, a line it leaves unfinished is kept for the next."""
        assert self._process.stdout is not None
        try:
            chunk = await self._process.stdout.receive(_READ_CHUNK)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._eof = True
            return
        if b"\n" not in chunk:  # a long line goes on: only this chunk is searched, not all of it again
            self._buffer += chunk
            return
        *lines, rest = (bytes(self._buffer) + chunk).split(b"\n")
        self._lines.extend(lines)
        self._buffer = bytearray(rest)

    async def close_stdin(self) -> None:
        """Send EOF: the CLI finishes the turn in progress, then exits."""
        async with self._write_lock:
            if self._stdin_open and self._process.stdin is not None:
                self._stdin_open = False
                with anyio.CancelScope(shield=True):
                    await self._process.stdin.aclose()

    def signal_group(self, signum: int) -> None:
        """Send a signal to the CLI and everything it started."""
        _signal_group(self._process.pid, signum)

    async def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process to exit; the exit code, or None if it is still running."""
        with anyio.move_on_after(timeout):
            await self._process.wait()
        return self._process.returncode

    async def shutdown(self, grace: float = 3.0) -> int | None:
        """End the process and its group within about ``grace`` seconds: EOF, SIGTERM, SIGKILL.

        EOF comes first, with two thirds of the time, because a CLI killed right after a turn can
        lose the end of its transcript, which a later ``--resume`` needs. Each step also sends
        SIGCONT: a stopped process (SIGSTOP, a debugger) acts on nothing but SIGCONT and SIGKILL,
        and once continued it can still exit cleanly. The whole fits in Jupyter's shutdown wait.
        """
        if self._shut_down:
            return self._process.returncode
        self._shut_down = True
        with anyio.CancelScope(shield=True):
            eof_deadline = anyio.current_time() + grace * 2 / 3
            with anyio.move_on_after(grace * 2 / 3):
                # A writer stuck on a full pipe holds the write lock: then skip the EOF.
                with contextlib.suppress(OSError):
                    await self.close_stdin()
            self.signal_group(signal.SIGCONT)
            code = await self.wait(max(0.0, eof_deadline - anyio.current_time()))
            if code is None:
                self.signal_group(signal.SIGTERM)
                self.signal_group(signal.SIGCONT)
                code = await self.wait(grace / 3)
            if code is None:
                self.signal_group(signal.SIGKILL)
                code = await self._process.wait()
            # Tool subprocesses (a Bash command) can outlive the CLI; they share its group.
            self._reaper()
            await self._process.aclose()
        return code

    def stderr_text(self, max_bytes: int | None = None) -> str:
        """What the CLI wrote to stderr so far (the last ``max_bytes`` if given)."""
        fd = self._stderr_file.fileno()
        size = os.fstat(fd).st_size
        start = 0 if max_bytes is None else max(0, size - max_bytes)
        return os.pread(fd, size - start, start).decode("utf-8", errors="replace")

    def stderr_tail(self, lines: int = 20) -> str:
        return "\n".join(self.stderr_text(16_384).splitlines()[-lines:])
