"""The :class:`Session`: one persistent ``claude`` process, many turns.

Reading is pull-based: whoever needs the next stdout line (``next_event``, or a control request
waiting for its response) takes the read lock and reads one line; events go into a queue and
control responses wake their waiters. So no background task is needed, a ``Session`` can be
created anywhere (a kernel's ``do_execute``, a magic, a script), and several tasks can share it:
one streaming ``next_event`` while another answers a permission prompt or interrupts.

Interrupts escalate inside that same read path: the control-protocol interrupt first (the process
survives); if the turn has not ended after ``interrupt_grace`` seconds, SIGINT to the process group
(the CLI writes its result and exits); if it still has not ended, SIGKILL. A process that ended is
replaced at the next :meth:`Session.send_message` by one started with ``--resume=<session id>``, so
the conversation goes on.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import signal
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import anyio

from ._control import ControlProtocol, PendingRequest, ToolResult
from ._errors import MalformedLineError, NotConnectedError, ProcessDiedError
from ._events import Event, PermissionRequest, Result, SystemInit, parse_message
from ._options import SessionOptions, build_argv, build_env, find_cli
from ._transport import Transport

__all__ = ["Session"]

log = logging.getLogger("claude_kernel.session")

_CONTROL_TYPES = frozenset({"control_request", "control_response", "control_cancel_request"})
_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def _decode_line(line: bytes) -> dict[str, Any] | None:
    """One stdout line as a JSON object; None for blank and non-JSON noise lines."""
    stripped = line.strip()
    if not stripped.startswith(b"{"):
        if stripped:
            log.debug("skipping non-JSON stdout line: %.200r", stripped)
        return None
    try:
        message = json.loads(stripped)
    except ValueError as exc:
        raise MalformedLineError(f"unparseable stdout line ({len(stripped)} bytes): {exc}") from exc
    if not isinstance(message, dict):
        raise MalformedLineError("stdout line is JSON but not an object")
    return message


class Session:
    """A conversation with Claude Code over one long-lived CLI process.

    Create it with :meth:`spawn`. Send a message, then call :meth:`next_event` until it returns
    None (the turn's :class:`Result` has arrived); then send the next message.
    """

    def __init__(self, options: SessionOptions, cli: str, *, interrupt_grace: float) -> None:
        self.options = options
        self.interrupt_grace = interrupt_grace
        self.session_id: str | None = options.resume
        #: The most recent ``system/init`` (model, tools, CLI version).
        self.init: SystemInit | None = None
        #: The CLI's answer to ``initialize`` (models, commands, account, version).
        self.server_info: dict[str, Any] = {}
        #: Cost of every turn so far, across process restarts.
        self.total_cost_usd = 0.0
        #: How many times a stopped process was replaced by a resumed one.
        self.restarts = 0
        self._cli = cli
        self._transport: Transport | None = None
        self._control: ControlProtocol | None = None
        self._events: deque[Event] = deque()
        self._read_lock = anyio.Lock()
        self._turns_pending = 0
        self._process_cost = 0.0
        self._closed = False
        self._escalation = 0
        self._deadline: float | None = None
        self._exit_reported = True

    @property
    def cli_path(self) -> str:
        """The ``claude`` executable this session runs (see :func:`find_cli` for the lookup order)."""
        return self._cli

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    async def spawn(cls, options: SessionOptions | None = None, *, interrupt_grace: float = 5.0) -> Session:
        """Start the CLI and complete the ``initialize`` handshake.

        :raises CLINotFoundError: no executable; the message says how to install one.
        :raises ProcessDiedError: the CLI exited during start-up (its stderr is in the error).
        """
        options = options or SessionOptions()
        session = cls(options, find_cli(options.cli_path), interrupt_grace=interrupt_grace)
        await session._start(resume=options.resume)
        return session

    async def _start(self, *, resume: str | None) -> None:
        argv = build_argv(self._cli, self.options, resume=resume)
        log.debug("starting %s", argv)
        transport = await Transport.start(argv, cwd=self.options.cwd, env=build_env(self.options))
        self._transport = transport
        self._control = ControlProtocol(
            transport.write, server_name=self.options.host_tool_server, host_tools=self.options.host_tools
        )
        self._turns_pending = 0
        self._process_cost = 0.0
        self._escalation = 0
        self._deadline = None
        self._exit_reported = False
        pending: PendingRequest | None = None
        try:
            with anyio.fail_after(60):
                pending = await self._control.send_request("initialize", hooks=None)
                await self._pump_until(pending)
        except NotConnectedError:
            pass  # it died before reading its stdin: reported below, with its stderr
        except BaseException:
            with anyio.CancelScope(shield=True):
                await transport.shutdown(grace=1.0)
            raise
        if pending is None or (pending.error is not None and transport.at_eof):
            self._exit_reported = True
            raise ProcessDiedError(await transport.wait(5.0), transport.stderr_tail())
        self.server_info = pending.result()

    async def _ensure_running(self) -> Transport:
        if self._closed:
            raise NotConnectedError("the session was closed")
        transport = self._transport
        if transport is None or transport.at_eof or transport.returncode is not None:
            if transport is not None:
                await transport.shutdown(grace=1.0)
            log.info("the claude process had stopped; resuming session %s", self.session_id)
            self.restarts += 1
            await self._start(resume=self.session_id)
            assert self._transport is not None
            transport = self._transport
        if not transport.stdin_open:
            raise NotConnectedError("stdin was closed; no more messages can be sent")
        return transport

    async def close_stdin(self) -> None:
        """Tell the CLI no more messages will come; it finishes the current turn, then exits.

        Events can still be read until then. (Async, unlike the Rust seed's: closing an async
        stream is itself an await.)
        """
        self._closed = True
        if self._transport is not None:
            await self._transport.close_stdin()

    async def close(self, *, grace: float = 5.0) -> tuple[int | None, str]:
        """End the process and everything it started; return its exit code and stderr.

        A turn still running is interrupted first, so closing never waits for a long answer.
        """
        self._closed = True
        transport = self._transport
        if transport is None:
            return None, ""
        with anyio.CancelScope(shield=True):
            if self._turns_pending and transport.stdin_open and transport.returncode is None:
                try:
                    assert self._control is not None
                    await self._control.send_request("interrupt")
                except NotConnectedError:
                    pass
            code = await transport.shutdown(grace=grace)
        if self._control is not None:
            self._control.fail_all("the session was closed")
        self._turns_pending = 0
        return code, transport.stderr_text()

    async def wait_for_stderr(self) -> str:
        """Wait for the process to exit and return everything it wrote to stderr."""
        if self._transport is None:
            return ""
        await self._transport.wait()
        return self._transport.stderr_text()

    def is_finished(self) -> bool:
        """True when no turn is in progress: its result arrived, or the process has ended."""
        transport = self._transport
        return self._turns_pending == 0 or transport is None or transport.returncode is not None

    @property
    def pid(self) -> int | None:
        return self._transport.pid if self._transport else None

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- sending ----------------------------------------------------------------------------

    async def send_message(self, text: str) -> str:
        """Send one user message (one turn); returns the message's uuid."""
        return await self._send_user_content(text)

    async def send_message_with_images(self, text: str, images: Iterable[tuple[str, str]]) -> str:
        """Send text with images, given as ``(media_type, base64 data)`` pairs.

        :raises ValueError: an unsupported media type or data that is not base64 (checked here,
            because the API would reject the whole turn).
        """
        blocks: list[dict[str, Any]] = []
        for media_type, data in images:
            if media_type not in _IMAGE_TYPES:
                raise ValueError(
                    f"unsupported image type {media_type!r}; use one of " + ", ".join(sorted(_IMAGE_TYPES))
                )
            try:
                base64.b64decode(data, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"image data for {media_type} is not valid base64") from exc
            blocks.append({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
        if text:
            blocks.append({"type": "text", "text": text})
        return await self._send_user_content(blocks)

    async def _send_user_content(self, content: str | list[dict[str, Any]]) -> str:
        transport = await self._ensure_running()
        message_uuid = str(uuid.uuid4())
        # Counted before the write so that a reader running meanwhile knows a turn is coming.
        self._turns_pending += 1
        try:
            await transport.write(
                {
                    "type": "user",
                    "message": {"role": "user", "content": content},
                    "parent_tool_use_id": None,
                    "session_id": self.session_id or "",
                    "uuid": message_uuid,
                }
            )
        except BaseException:
            self._turns_pending -= 1
            raise
        return message_uuid

    async def allow(
        self, request: PermissionRequest, *, updated_input: Mapping[str, Any] | None = None, always: bool = False
    ) -> bool:
        """Let the tool run, with ``updated_input`` if the user edited it.

        ``always`` adds a rule allowing this tool for the rest of the session. Returns False when
        the request is no longer pending (it was cancelled or already answered).
        """
        control = self._require_control()
        return await control.allow(request, updated_input, always)

    async def deny(
        self, request: PermissionRequest, message: str = "The user denied this tool call.", *, interrupt: bool = False
    ) -> bool:
        """Refuse the tool call; the model sees ``message``. ``interrupt`` also ends the turn."""
        control = self._require_control()
        return await control.deny(request, message, interrupt)

    async def send_tool_result(self, result: ToolResult) -> bool:
        """Answer a :class:`HostToolRequest`; the content becomes the tool result the model sees.

        Returns False when the call is no longer pending (cancelled by an interrupt).
        """
        control = self._require_control()
        return await control.send_tool_result(result)

    async def interrupt(self) -> None:
        """Stop the current turn; the session stays usable.

        Sends the control-protocol interrupt and returns at once; keep reading events: the turn
        ends with an interrupted :class:`Result`. If it has not ended after ``interrupt_grace``
        seconds the reader escalates to SIGINT, then SIGKILL, and the next message resumes.
        """
        transport = self._transport
        if transport is None or self._turns_pending == 0 or transport.returncode is not None:
            return
        if self._deadline is None:
            self._escalation = 0
            self._deadline = anyio.current_time() + self.interrupt_grace
        try:
            await self._require_control().send_request("interrupt")
        except NotConnectedError:
            self._deadline = anyio.current_time()

    async def set_model(self, model: str | None) -> dict[str, Any]:
        """Switch the model for the following turns (None: the CLI's default)."""
        return await self._request("set_model", model=model)

    async def set_permission_mode(self, mode: str) -> dict[str, Any]:
        return await self._request("set_permission_mode", mode=mode)

    async def _request(self, subtype: str, **fields: Any) -> dict[str, Any]:
        await self._ensure_running()
        pending = await self._require_control().send_request(subtype, **fields)
        with anyio.fail_after(60):
            await self._pump_until(pending)
        return pending.result()

    def _require_control(self) -> ControlProtocol:
        if self._control is None:
            raise NotConnectedError("the session has not started")
        return self._control

    # -- receiving --------------------------------------------------------------------------

    async def next_event(self) -> Event | None:
        """The next event of the current turn, or None once it has ended (or no turn is running).

        :raises ProcessDiedError: the process ended in the middle of a turn without being asked
            to; the next :meth:`send_message` resumes the conversation in a new process.
        """
        while True:
            if self._events:
                return self._events.popleft()
            transport = self._transport
            if transport is None:
                return None
            if transport.at_eof:
                await self._report_exit(transport)
                return None
            if self._turns_pending == 0:
                return None
            async with self._read_lock:
                if not self._events:
                    await self._read_one(transport)

    async def _pump_until(self, pending: PendingRequest) -> None:
        """Read lines until ``pending`` is answered (another reader may answer it for us)."""
        while not pending.done.is_set():
            transport = self._transport
            assert transport is not None and self._control is not None
            if transport.at_eof:
                self._control.fail_all("the claude process exited")
                return
            async with self._read_lock:
                if not pending.done.is_set():
                    await self._read_one(transport)

    async def _read_one(self, transport: Transport) -> None:
        """Read and dispatch one line, escalating a stuck interrupt while waiting for it."""
        while True:
            if self._deadline is None:
                line = await transport.read_line()
                break
            with anyio.move_on_after(max(0.0, self._deadline - anyio.current_time())):
                line = await transport.read_line()
                break
            self._escalate(transport)
        if line is None:
            return
        try:
            message = _decode_line(line)
        except MalformedLineError as exc:
            log.warning("%s", exc)
            return
        if message is None:
            return
        if message.get("type") in _CONTROL_TYPES:
            assert self._control is not None
            event = await self._control.handle(message)
        else:
            event = self._on_event(parse_message(message))
        if event is not None:
            self._events.append(event)

    def _escalate(self, transport: Transport) -> None:
        self._escalation += 1
        if self._escalation == 1:
            log.warning("the turn did not stop after an interrupt; sending SIGINT to the CLI")
            transport.signal_group(signal.SIGINT)
        else:
            log.warning("the CLI did not exit after SIGINT; killing it")
            transport.signal_group(signal.SIGKILL)
        self._deadline = anyio.current_time() + self.interrupt_grace

    def _on_event(self, event: Event) -> Event:
        if isinstance(event, SystemInit):
            self.init = event
            self.session_id = event.session_id or self.session_id
        elif isinstance(event, Result):
            self.session_id = event.session_id or self.session_id
            turn_cost = max(0.0, event.total_cost_usd - self._process_cost)
            self._process_cost = event.total_cost_usd
            self.total_cost_usd += turn_cost
            self._turns_pending = max(0, self._turns_pending - 1)
            if self._turns_pending == 0:
                self._deadline = None
            return replace(event, cost_usd=turn_cost)
        return event

    async def _report_exit(self, transport: Transport) -> None:
        """The process's output ended: fail pending work; raise if a turn died with it."""
        if self._exit_reported:
            return
        self._exit_reported = True
        code = await transport.wait(5.0)
        assert self._control is not None
        self._control.fail_all("the claude process exited")
        died_mid_turn = self._turns_pending > 0
        asked_to_stop = self._closed or self._escalation > 0
        self._turns_pending = 0
        self._deadline = None
        if died_mid_turn and not asked_to_stop:
            raise ProcessDiedError(code, transport.stderr_tail())
