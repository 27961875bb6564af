"""The :class:`Session`: one persistent ``claude`` process, many turns.

Reading is pull-based: whoever needs the next stdout line (``next_event``, or a control request
waiting for its response) takes the read lock and reads one line; events go into a queue and
control responses wake their waiters. So no background task is needed, a ``Session`` can be
created anywhere (a kernel's ``do_execute``, a magic, a script), and several tasks can share it:
one streaming ``next_event`` while another answers a permission prompt or interrupts.

Everything that belongs to one process (its transport and control protocol, the turns it still owes
a Result, its cumulative cost, an interrupt's escalation) lives in one :class:`_Process` record,
created when the process starts and replaced whole by the next one. The ``Session`` keeps what
outlives a process: the conversation's id, the total cost, the options.

Interrupts escalate on their own clock: the control-protocol interrupt first (the process
survives); if the turn has not ended after ``interrupt_grace`` seconds, SIGINT to the process group
(with SIGCONT, so that a stopped CLI receives it; the CLI writes its result and exits); if it still
has not ended, SIGKILL. The escalation deadline is the deadline of the reader's cancel scope, and
``interrupt()`` moves it, so a reader blocked on a CLI that writes nothing (stopped, deadlocked)
still wakes on time. A process that was signalled is never reused: the next
:meth:`Session.send_message` starts one with ``--resume=<session id>``, so the conversation goes on.

A message is either answered or raises: a turn whose process ends before its Result raises
:class:`ProcessDiedError` from ``next_event``, unless that very turn was being interrupted, in which
case it ends with an interrupted :class:`Result` that the session makes up.

The conversation can be rewound (:meth:`Session.rewind`: in place with the ``rewind_conversation``
control request, or where the CLI refuses that, a restart with ``--resume-session-at`` and
``--fork-session``), files restored (:meth:`Session.rewind_files`), and spending capped across
restarts (``SessionOptions.max_budget_usd``: each process is given what is left).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import math
import signal
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from ._control import ControlProtocol, PendingRequest, ToolResult
from ._errors import (
    BudgetExceededError,
    ControlRequestError,
    MalformedLineError,
    NotConnectedError,
    ProcessDiedError,
    RewindError,
    SessionError,
)
from ._events import (
    AssistantMessage,
    Event,
    PermissionRequest,
    Result,
    SystemInit,
    SystemMessage,
    ToolUseBlock,
    UserMessage,
    _BlockDelta,
    parse_message,
)
from ._options import SessionOptions, build_argv, build_env, find_cli
from ._routing import OWN, Route, Router
from ._transport import Transport

__all__ = ["Rewound", "Session"]

log = logging.getLogger("claude_kernel.session")

_DECODER = json.JSONDecoder()
_CONTROL_TYPES = frozenset({"control_request", "control_response", "control_cancel_request"})
_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
#: How long a control request may go unanswered (seconds) before its caller gives up on it.
_CONTROL_TIMEOUT = 60.0


def _decode_line(line: bytes) -> dict[str, Any] | None:
    """One stdout line as a JSON object; None for blank and non-JSON noise lines."""
    stripped = line.strip()
    if not stripped.startswith(b"{"):
        if stripped:
            log.debug("skipping non-JSON stdout line: %.200r", stripped)
        return None
    try:
        # Decoded once and parsed with raw_decode: about 40% faster than json.loads on the bytes.
        text = stripped.decode()
        message, end = _DECODER.raw_decode(text)
        if end != len(text):
            raise ValueError(f"extra data at {end}")
    except ValueError as exc:
        raise MalformedLineError(f"unparseable stdout line ({len(stripped)} bytes): {exc}") from exc
    if not isinstance(message, dict):
        raise MalformedLineError("stdout line is JSON but not an object")
    return message


@dataclass(eq=False)
class _Process:
    """One CLI process and everything that lives and dies with it."""

    transport: Transport
    control: ControlProtocol
    #: The uuids of the user messages written and not yet answered by a Result, oldest first.
    prompts: list[str] = field(default_factory=list)
    #: The CLI's cumulative ``total_cost_usd`` so far.
    cost_usd: float = 0.0
    #: The prompt of the turn being interrupted, and when to escalate if it has not ended by then.
    interrupting: str | None = None
    deadline: float | None = None
    #: Signals sent after an interrupt: 1 SIGINT, 2 and more SIGKILL.
    escalation: int = 0
    #: The scope of the read in progress, whose deadline follows ``deadline``.
    read_scope: anyio.CancelScope | None = None
    #: The last transcript entry seen (a main-chain ``assistant`` or ``user`` line).
    last_entry: str | None = None
    exit_reported: bool = False
    #: Set once a report of the exit under way has queued what it owes (None: no report began).
    exit_reporting: anyio.Event | None = None
    #: Which turn the events being read belong to: the host's message or the CLI's own.
    router: Router = field(default_factory=Router)

    @property
    def usable(self) -> bool:
        """Can it take another message? Not once it was signalled, ended or lost its stdin."""
        transport = self.transport
        return not self.escalation and not transport.at_eof and transport.returncode is None and transport.stdin_open

    def set_deadline(self, deadline: float | None) -> None:
        """Set when to escalate; a read blocked right now wakes at the new deadline."""
        self.deadline = deadline
        if self.read_scope is not None:
            self.read_scope.deadline = math.inf if deadline is None else deadline


@dataclass(frozen=True)
class Rewound:
    """How :meth:`Session.rewind` went."""

    #: The conversation's id from now on: the same after an in-place rewind, a new one after a fork.
    session_id: str
    #: True when the running process rewound in place; False when it was restarted on a fork.
    in_place: bool
    #: Why the in-place rewind was not done (the CLI's reason, e.g. ``stale_target``), if it was not.
    refused: str | None = None


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
        #: Cost of every turn so far, across process restarts (from ``options.spent_usd``).
        self.total_cost_usd = options.spent_usd
        #: How many times a stopped process was replaced by a resumed one.
        self.restarts = 0
        #: The last transcript entry as of the latest Result: ``rewind(to=...)`` it keeps everything so far.
        self.last_message_uuid: str | None = None
        self._cli = cli
        self._proc: _Process | None = None
        self._events: deque[Event | SessionError] = deque()
        #: Events of no host message: the CLI's own turns, background tasks after their turn ended.
        self._side: deque[Event] = deque()
        #: Set when the process is replaced or the session closed; a side reader waits on it.
        self._proc_changed = anyio.Event()
        #: The background tasks the CLI reports running (``background_tasks_changed``), by task id.
        self.background_tasks: dict[str, dict[str, Any]] = {}
        #: Whether the model scheduled a wake-up (``ScheduleWakeup``) that has not come yet.
        self.wake_up_due = False
        self._read_lock = anyio.Lock()
        self._start_lock = anyio.Lock()
        self._closed = False
        #: (prompt uuid, last transcript entry) of each turn answered in this conversation since this
        #: Session began, oldest first: what an in-place rewind needs to name the turns it drops.
        self._answered: list[tuple[str, str | None]] = []
        # An in-place rewind reaches the transcript only with the next turn (the CLI buffers its
        # marker): until a Result shows it did, a restart must rewind again. (target, last seen)
        self._unsaved_rewind: tuple[str, str] | None = None
        # A fork (rewind) writes its transcript only with its first turn; until a Result shows it
        # did, a restart must fork again under the same id, since plain --resume would find nothing.
        self._unsaved_fork: tuple[SessionOptions, str] | None = None

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
        await session._start(options, fork_id=str(uuid.uuid4()) if options.fork_session else None)
        return session

    async def _start(self, options: SessionOptions, *, fork_id: str | None) -> _Process:
        """Start a process and complete the handshake; it becomes the current one.

        ``fork_id`` is the new session id of a fork (``options.fork_session``).
        """
        left = self._budget_left()
        argv = build_argv(self._cli, options, session_id=fork_id, budget_left=left if left and left > 0 else None)
        log.debug("starting %s", argv)
        transport = await Transport.start(argv, cwd=options.cwd, env=build_env(options))
        control = ControlProtocol(transport.write, server_name=options.host_tool_server, host_tools=options.host_tools)
        proc = _Process(transport, control)
        pending: PendingRequest | None = None
        try:
            with anyio.fail_after(60):
                try:
                    pending = await proc.control.send_request("initialize", hooks=None)
                    await self._pump_until(proc, pending)
                except NotConnectedError:
                    pass  # it died before reading its stdin: reported below, with its stderr
            if pending is None or (pending.error is not None and transport.at_eof):
                raise ProcessDiedError(await transport.wait(5.0), transport.stderr_tail())
            self.server_info = pending.result()
        except BaseException:
            proc.exit_reported = True
            await transport.shutdown(grace=1.0)
            raise
        self._proc = proc
        self.background_tasks, self.wake_up_due = {}, False  # they lived in the process that was replaced
        self._wake_side_reader()
        if fork_id is not None:
            self.session_id = fork_id
            self._unsaved_fork = (options, fork_id)
        return proc

    def _resume_options(self) -> tuple[SessionOptions, str | None]:
        """How to start a process that continues the conversation where it is."""
        if self._unsaved_fork is not None:
            return self._unsaved_fork
        plain = replace(
            self.options, resume=self.session_id, resume_session_at=None, fork_session=False, resume_drops_turn=None
        )
        return plain, None

    async def _ensure_running(self) -> _Process:
        """The current process, or a new one resuming the conversation if it cannot take messages."""
        if self._closed:
            raise NotConnectedError("the session was closed")
        async with self._start_lock:
            proc = self._proc
            if proc is not None and proc.interrupting is not None:
                await self._settle_interrupt(proc)
            if proc is not None and proc.usable:
                return proc
            if proc is not None:
                await self._retire(proc)
            log.info("the claude process had stopped; resuming session %s", self.session_id)
            self.restarts += 1
            options, fork_id = self._resume_options()
            proc = await self._start(options, fork_id=fork_id)
            await self._redo_unsaved_rewind(proc)
            return proc

    async def _settle_interrupt(self, proc: _Process) -> None:
        """Wait for the turn being interrupted to end, reading its events into the queue.

        A message sent meanwhile must not join a process the escalation may yet kill.
        """
        while proc.interrupting is not None and not proc.transport.at_eof:
            async with self._read_lock:
                if proc.interrupting is not None and not proc.transport.at_eof:
                    await self._read_one(proc)

    async def _retire(self, proc: _Process) -> None:
        """Finish with a process that takes no more messages, after reading what it still owes.

        Its remaining events (and the error or made-up Result of a turn it never finished) go into
        the event queue, in order, so every message already sent is answered or raises.
        """
        if proc.prompts and not proc.exit_reported:
            if proc.deadline is None:
                proc.set_deadline(anyio.current_time() + self.interrupt_grace)
            while not proc.transport.at_eof:
                async with self._read_lock:
                    if not proc.transport.at_eof:
                        await self._read_one(proc)
            await self._report_exit(proc)
        proc.exit_reported = True
        await proc.transport.shutdown(grace=1.0)
        proc.control.fail_all("the claude process was replaced")

    async def close_stdin(self) -> None:
        """Tell the CLI no more messages will come; it finishes the current turn, then exits.

        Events can still be read until then. (Async, unlike the Rust seed's: closing an async
        stream is itself an await.)
        """
        self._closed = True
        if self._proc is not None:
            await self._proc.transport.close_stdin()

    async def close(self, *, grace: float = 3.0) -> tuple[int | None, str]:
        """End the process and everything it started; return its exit code and stderr.

        A turn still running is interrupted first, so closing never waits for a long answer; it is
        abandoned, not reported as an error. The process gets about ``grace`` seconds in all to
        exit after EOF and SIGTERM before SIGKILL (a stopped or hung CLI included), which fits in
        Jupyter's shutdown wait.
        """
        self._closed = True
        self._wake_side_reader()
        proc = self._proc
        if proc is None:
            return None, ""
        transport = proc.transport
        with anyio.CancelScope(shield=True):
            if proc.prompts and transport.stdin_open and transport.returncode is None:
                with contextlib.suppress(NotConnectedError):
                    await proc.control.send_request("interrupt")
            proc.prompts.clear()
            proc.exit_reported = True
            proc.set_deadline(None)
            code = await transport.shutdown(grace=grace)
        proc.control.fail_all("the session was closed")
        return code, transport.stderr_text()

    async def wait_for_stderr(self) -> str:
        """Wait for the process to exit and return everything it wrote to stderr."""
        if self._proc is None:
            return ""
        await self._proc.transport.wait()
        return self._proc.transport.stderr_text()

    def is_finished(self) -> bool:
        """True when no turn is in progress: its result arrived, or the process has ended."""
        proc = self._proc
        return proc is None or not proc.prompts or proc.transport.returncode is not None

    @property
    def resume_point(self) -> SessionOptions:
        """Where a new process continues this conversation: its id, or, for a fork with no turn yet
        (so no transcript: its own id would find nothing), the fork to make again from where it began.
        """
        return self._resume_options()[0]

    @property
    def has_unsaved_rewind(self) -> bool:
        """A rewind (in place or a fork) has not reached the transcript yet: it needs a turn first.

        Until then only this Session knows how to restart the conversation where it is; a new
        Session resuming the session id would not find the rewind.
        """
        return self._unsaved_fork is not None or self._unsaved_rewind is not None

    @property
    def pid(self) -> int | None:
        return self._proc.transport.pid if self._proc else None

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- sending ----------------------------------------------------------------------------

    async def send_message(self, text: str) -> str:
        """Send one user message (one turn); returns the message's uuid.

        :raises BudgetExceededError: ``max_budget_usd`` is spent; nothing was sent.
        """
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
        left = self._budget_left()
        if left is not None and left <= 0:
            assert self.options.max_budget_usd is not None
            raise BudgetExceededError(self.options.max_budget_usd, self.total_cost_usd)
        message_uuid = str(uuid.uuid4())
        for attempt in range(2):
            proc = await self._ensure_running()
            # Counted before the write so that a reader running meanwhile knows a turn is coming.
            proc.prompts.append(message_uuid)
            try:
                await proc.transport.write(
                    {
                        "type": "user",
                        "message": {"role": "user", "content": content},
                        "parent_tool_use_id": None,
                        "session_id": self.session_id or "",
                        "uuid": message_uuid,
                    }
                )
            except NotConnectedError:
                proc.prompts.remove(message_uuid)
                if attempt:
                    raise
                # Its stdin broke before the message got there: the process died between turns.
                # The message goes to a new process instead (the dead one is no longer usable).
                continue
            except BaseException:
                proc.prompts.remove(message_uuid)
                raise
            break
        return message_uuid

    async def allow(
        self,
        request: PermissionRequest,
        *,
        updated_input: Mapping[str, Any] | None = None,
        always: bool = False,
        mode: str | None = None,
    ) -> bool:
        """Let the tool run, with ``updated_input`` if the user edited it.

        ``always`` adds a rule allowing this tool for the rest of the session. ``mode`` switches the
        CLI's permission mode as it runs the tool (approving a plan with "accept edits"). Returns
        False when the request is no longer pending (it was cancelled or already answered).
        """
        allowed = await self._require_control().allow(request, updated_input, always, mode)
        if allowed and mode:
            self._follow_mode(mode)
        return allowed

    async def deny(
        self, request: PermissionRequest, message: str = "The user denied this tool call.", *, interrupt: bool = False
    ) -> bool:
        """Refuse the tool call; the model sees ``message``. ``interrupt`` also ends the turn."""
        return await self._require_control().deny(request, message, interrupt)

    async def send_tool_result(self, result: ToolResult) -> bool:
        """Answer a :class:`HostToolRequest`; the content becomes the tool result the model sees.

        Returns False when the call is no longer pending (cancelled by an interrupt).
        """
        return await self._require_control().send_tool_result(result)

    async def interrupt(self) -> None:
        """Stop the current turn; the session stays usable.

        Sends the control-protocol interrupt and returns at once; keep reading events: the turn
        ends with an interrupted :class:`Result`. If it has not ended after ``interrupt_grace``
        seconds the reader escalates to SIGINT, then SIGKILL (even while the CLI writes nothing),
        and the next message resumes in a new process.
        """
        proc = self._proc
        if proc is None or proc.transport.returncode is not None:
            return
        if not proc.prompts:
            if proc.router.turn is OWN:  # a turn the CLI took by itself: stopped the same way
                with contextlib.suppress(NotConnectedError):
                    await proc.control.send_request("interrupt")
            return
        if proc.interrupting is None:
            proc.interrupting = proc.prompts[0]
            proc.set_deadline(anyio.current_time() + self.interrupt_grace)
        try:
            await proc.control.send_request("interrupt")
        except NotConnectedError:
            proc.set_deadline(anyio.current_time())

    async def set_model(self, model: str | None) -> dict[str, Any]:
        """Switch the model for the following turns (None: the CLI's default)."""
        return await self._request("set_model", model=model)

    async def set_permission_mode(self, mode: str) -> dict[str, Any]:
        answer = await self._request("set_permission_mode", mode=mode)
        self._follow_mode(mode)
        return answer

    async def rewind_files(self, user_message_id: str, *, dry_run: bool = False) -> dict[str, Any]:
        """Restore the files changed since the user message ``user_message_id`` (its prompt uuid).

        Needs ``SessionOptions.file_checkpointing`` (on by default). Returns the CLI's answer,
        e.g. ``{"canRewind": true, ...}``; ``dry_run`` only asks whether it could.

        :raises ControlRequestError: the CLI cannot rewind to that message.
        """
        fields: dict[str, Any] = {"user_message_id": user_message_id}
        if dry_run:
            fields["dry_run"] = True
        return await self._request("rewind_files", **fields)

    async def rewind(
        self,
        to: str | None,
        *,
        first_dropped: str | None = None,
        latest: str | None = None,
        dropping_turn: str | None = None,
    ) -> Rewound:
        """Rewind the conversation: keep it up to the transcript entry ``to``, drop what followed.

        ``to`` is a ``Result.last_message_uuid`` (keep everything up to the end of that turn), or
        None to drop every turn (in place only: with ``first_dropped``, the first turn's prompt).
        ``dropping_turn``, a prompt uuid, makes the CLI refuse unless exactly that one turn is
        dropped (a guard for retrying the last turn).

        The running process rewinds in place (the ``rewind_conversation`` control request, a few
        milliseconds, same session id, no transcript copy). That needs the prompt uuid of the first
        turn dropped and of the latest turn: the session knows them for the turns it saw answered;
        for older ones (a conversation resumed by a new Session) pass ``first_dropped`` and
        ``latest``. The CLI cuts the dropped turns out of the conversation for good: on CLI
        2.1.337 not even ``--resume-session-at`` reaches them again. Only where the CLI refuses the
        in-place rewind (or the uuids are unknown) does the process restart with
        ``--resume=<id> --resume-session-at=<to> --fork-session``, under a new session id, leaving
        the old branch resumable by its own id; :attr:`Rewound.refused` then says why.

        :raises RewindError: the CLI refused (an unknown ``to``, a forbidden truncation); nothing
            changed and the conversation goes on where it was.
        :raises SessionError: a turn is running, the host's or one the CLI took by itself
            (interrupt it or read it to its end first), or there is no conversation yet.
        """
        if self._closed:
            raise NotConnectedError("the session was closed")
        proc = self._proc
        if proc is not None and proc.prompts and not proc.exit_reported:
            raise SessionError("cannot rewind while a turn is running; read it to its end or interrupt it first")
        if self.own_turn_running:
            # No host message is pending, but the CLI is writing a turn of its own into the
            # conversation: cutting the conversation under it (or forking it midway) would race it.
            raise SessionError(
                "cannot rewind while Claude runs a turn of its own (a background agent's report, a wake-up); "
                "read it to its end or interrupt it first"
            )
        if self._unsaved_fork is None and self.session_id is None:
            raise SessionError("nothing to rewind: this session has no conversation yet")
        target = self._in_place_target(to, first_dropped, dropping_turn)
        # The latest turn this session saw answered is the CLI's latest; a caller's is older news.
        last_seen = dropping_turn or (self._answered[-1][0] if self._answered else latest)
        refused = "the turns to drop are not known to this session"
        if target is not None and last_seen is not None and self._unsaved_fork is None:
            try:
                answer = await self._request(
                    "rewind_conversation", target_message_uuid=target, last_seen_user_message_uuid=last_seen
                )
            except ControlRequestError as exc:  # a CLI without the request
                answer = {"rewound": False, "reason": str(exc)}
            if answer.get("rewound") is True:
                # Before a turn saved the previous one, the transcript's latest turn is still its.
                self._unsaved_rewind = (target, self._unsaved_rewind[1] if self._unsaved_rewind else last_seen)
                self._forget_turns_from(target)
                self.last_message_uuid = to
                assert self.session_id is not None
                return Rewound(self.session_id, in_place=True)
            refused = str(answer.get("reason") or answer.get("error") or answer)
            log.info("the CLI refused to rewind in place (%s)", refused)
        if to is None:
            raise RewindError(f"the CLI refused to drop the whole conversation in place: {refused}")
        session_id = await self._rewind_by_fork(to, dropping_turn)
        return Rewound(session_id, in_place=False, refused=refused)

    def _in_place_target(self, to: str | None, first_dropped: str | None, dropping_turn: str | None) -> str | None:
        """The prompt uuid of the first turn a rewind to ``to`` drops, if it is known."""
        if first_dropped is not None or dropping_turn is not None:
            return first_dropped or dropping_turn
        if to is None:
            return None
        kept = next((i for i, (_, last) in enumerate(self._answered) if last == to), None)
        if kept is None or kept + 1 >= len(self._answered):
            return None
        return self._answered[kept + 1][0]

    async def _redo_unsaved_rewind(self, proc: _Process) -> None:
        """Rewind a resumed process again if the in-place rewind had not reached the transcript.

        If it had (the old process was killed after writing it), the CLI no longer finds the
        target and refuses, which is as good. A CLI that never answers (``TimeoutError``) must not
        fail the message this restart is for either: it is a best effort like the refusal, and the
        message goes on in the conversation as the resumed process has it (a hung process is then
        the message's own problem: interrupt and restart handle it).
        """
        if self._unsaved_rewind is None:
            return
        target, last_seen = self._unsaved_rewind
        try:
            pending = await proc.control.send_request(
                "rewind_conversation", target_message_uuid=target, last_seen_user_message_uuid=last_seen
            )
            with anyio.fail_after(_CONTROL_TIMEOUT):
                await self._pump_until(proc, pending)
            log.debug("rewound the resumed process again: %s", pending.result())
        except SessionError:
            pass  # refused (the rewind had reached the transcript), or the process went: nothing to redo
        except TimeoutError:  # anyio's fail_after raises the built-in one, on Python 3.10 too
            log.warning("the resumed claude process did not answer the rewind in %s s; going on", _CONTROL_TIMEOUT)

    def _forget_turns_from(self, prompt: str) -> None:
        """Drop the turns from ``prompt`` on from the turns this session saw answered."""
        index = next((i for i, (answered, _) in enumerate(self._answered) if answered == prompt), None)
        if index is not None:
            del self._answered[index:]

    async def _rewind_by_fork(self, to: str, dropping_turn: str | None) -> str:
        """Rewind by restarting the CLI on a fork of the conversation; returns the fork's session id."""
        proc = self._proc
        # Rewinding a fork that has not run a turn yet starts from what it was forked from.
        source = self._unsaved_fork[0].resume if self._unsaved_fork is not None else self.session_id
        async with self._start_lock:
            if proc is not None:
                await self._retire(proc)
            fork = replace(
                self.options, resume=source, resume_session_at=to, fork_session=True, resume_drops_turn=dropping_turn
            )
            try:
                await self._start(fork, fork_id=str(uuid.uuid4()))
            except ProcessDiedError as exc:
                options, fork_id = self._resume_options()
                await self._start(options, fork_id=fork_id)
                raise RewindError(f"the CLI refused to rewind to {to}: {exc.stderr_tail.strip() or exc}") from exc
        # The fork's turns are not this session's: an in-place rewind must be told them.
        self._answered.clear()
        self._unsaved_rewind = None
        self.last_message_uuid = to
        assert self.session_id is not None
        return self.session_id

    async def context_usage(self) -> dict[str, Any]:
        """How full the context window is: what ``/context`` shows, from the ``get_context_usage`` control request.

        On CLI 2.1.337 the answer holds ``totalTokens``, ``maxTokens``, ``percentage``,
        ``autoCompactThreshold`` and ``isAutoCompactEnabled``, and a breakdown (``categories``...).
        Only the running process is asked: measuring never starts one, nor resumes a stopped one.

        :raises NotConnectedError: no process can answer.
        :raises ControlRequestError: the CLI does not know the request (older than 2.1.332).
        """
        proc = self._proc
        if proc is None or not proc.usable:
            raise NotConnectedError("the claude process is not running")
        pending = await proc.control.send_request("get_context_usage")
        with anyio.fail_after(_CONTROL_TIMEOUT):
            await self._pump_until(proc, pending)
        return pending.result()

    async def _request(self, subtype: str, **fields: Any) -> dict[str, Any]:
        proc = await self._ensure_running()
        pending = await proc.control.send_request(subtype, **fields)
        with anyio.fail_after(_CONTROL_TIMEOUT):
            await self._pump_until(proc, pending)
        return pending.result()

    def _require_control(self) -> ControlProtocol:
        if self._proc is None:
            raise NotConnectedError("the session has not started")
        return self._proc.control

    def _budget_left(self) -> float | None:
        cap = self.options.max_budget_usd
        return None if cap is None else cap - self.total_cost_usd

    # -- receiving --------------------------------------------------------------------------

    async def next_event(self) -> Event | None:
        """The next event of the current turn, or None once it has ended (or no turn is running).

        :raises ProcessDiedError: the process ended in the middle of a turn without being asked
            to; the next :meth:`send_message` resumes the conversation in a new process.
        """
        while True:
            if self._events:
                item = self._events.popleft()
                if isinstance(item, SessionError):
                    raise item
                return item
            proc = self._proc
            if proc is None:
                return None
            if proc.transport.at_eof and not proc.exit_reported:
                await self._report_exit(proc)
                continue
            if proc.exit_reporting is not None and not proc.exit_reporting.is_set():
                await proc.exit_reporting.wait()  # another reader is reporting this turn's end
                continue
            if not proc.prompts or proc.exit_reported:
                return None
            async with self._read_lock:
                if not self._events and self._proc is proc:
                    await self._read_one(proc)

    # -- the side channel: what belongs to no message of the host's --------------------------

    async def next_side_event(self) -> Event | None:
        """The next event that is not part of a message the host is waiting on; None once closed.

        That is: a turn the CLI takes by itself (an :class:`OwnTurnStarted`, its events, its
        :class:`Result`), and the traffic of background tasks once the turn that started them has
        ended (their subagents' messages, ``task_*`` system messages, their permission prompts,
        which must be answered as any other). Task events of the running turn come here too, so
        one reader can follow every task. It reads the CLI even while no turn runs, and waits
        across process restarts; a host that wants to show background work as it happens keeps
        one task calling this. Without one, :meth:`side_events` hands over what piled up.
        """
        while True:
            if self._side:
                return self._side.popleft()
            if self._closed:
                return None
            proc = self._proc
            if proc is None or proc.exit_reported:
                changed = self._proc_changed
                await changed.wait()
                continue
            if proc.transport.at_eof:
                await self._report_exit(proc)
                continue
            async with self._read_lock:
                if not self._side and self._proc is proc and not proc.transport.at_eof:
                    await self._read_one(proc)

    def side_events(self) -> list[Event]:
        """Take every side-channel event read so far (see :meth:`next_side_event`)."""
        events = list(self._side)
        self._side.clear()
        return events

    @property
    def own_turn_running(self) -> bool:
        """Whether the CLI is in the middle of a turn of its own."""
        return self._proc is not None and self._proc.router.turn is OWN

    @property
    def has_background_work(self) -> bool:
        """Whether the process has work of its own under way or due: ending it would lose that.

        Background tasks (and so their pending questions), a turn of its own, a scheduled
        wake-up, or side-channel events nobody has read yet.
        """
        return bool(self.background_tasks or self._side or self.wake_up_due) or self.own_turn_running

    async def stop_task(self, task_id: str) -> dict[str, Any]:
        """Stop a background task (an agent, a background command) by its task id."""
        return await self._request("stop_task", task_id=task_id)

    def _to_side(self, event: Event) -> None:
        self._side.append(event)

    def _wake_side_reader(self) -> None:
        self._proc_changed.set()
        self._proc_changed = anyio.Event()

    async def _pump_until(self, proc: _Process, pending: PendingRequest) -> None:
        """Read lines until ``pending`` is answered (another reader may answer it for us)."""
        while not pending.done.is_set():
            if proc.transport.at_eof:
                proc.control.fail_all("the claude process exited")
                return
            async with self._read_lock:
                if not pending.done.is_set():
                    await self._read_one(proc)

    async def _read_one(self, proc: _Process) -> None:
        """Read and dispatch a line, and the lines that arrived with it, up to the end of a turn.

        Escalates a stuck interrupt when its deadline passes; the deadline is the read's own, so
        it fires even while the CLI writes nothing. Lines already received are dispatched in one
        go: a stream of small deltas then costs one wait per read from the pipe, not per line.
        """
        line = proc.transport.buffered_line()
        while line is None:
            with anyio.CancelScope(deadline=math.inf if proc.deadline is None else proc.deadline) as scope:
                proc.read_scope = scope
                try:
                    line = await proc.transport.read_line()  # cancel-safe: nothing read is lost
                finally:
                    proc.read_scope = None
            if not scope.cancelled_caught:
                if line is None:
                    return
                break
            self._escalate(proc)
        # Per line of a long answer, every lookup counts: the loop's names are bound once.
        decode, on_event, queue, next_line = self._decode, self._on_event, self._events, proc.transport.buffered_line
        while True:
            message = decode(line)
            if message is not None:
                if message.get("type") in _CONTROL_TYPES:
                    event = await proc.control.handle(message)
                    if event is not None and proc.router.route(event, proc.prompts) is Route.SIDE:
                        self._to_side(event)
                        event = None
                elif proc is self._proc:
                    event = on_event(proc, parse_message(message))
                else:
                    # Still starting (a failed --resume writes a zeroed result): not part of any turn.
                    log.debug("ignoring a %r line from a process that is starting", message.get("type"))
                    event = None
                if event is not None:
                    queue.append(event)
                    if isinstance(event, Result):
                        return  # what follows belongs to the next turn, read when it is asked for
            line = next_line()
            if line is None:
                return

    @staticmethod
    def _decode(line: bytes) -> dict[str, Any] | None:
        try:
            return _decode_line(line)
        except MalformedLineError as exc:
            log.warning("%s", exc)
            return None

    def _escalate(self, proc: _Process) -> None:
        proc.escalation += 1
        if proc.escalation == 1:
            log.warning("the turn did not stop after an interrupt; sending SIGINT to the CLI")
            proc.transport.signal_group(signal.SIGINT)
            # A stopped process would keep SIGINT pending forever.
            proc.transport.signal_group(signal.SIGCONT)
        else:
            log.warning("the CLI did not exit after SIGINT; killing it")
            proc.transport.signal_group(signal.SIGKILL)
        proc.set_deadline(anyio.current_time() + self.interrupt_grace)

    def _on_event(self, proc: _Process, event: Event) -> Event | None:
        """Note what the event tells the session; return it if it goes on the turn queue."""
        router = proc.router
        if isinstance(event, _BlockDelta):  # most events of a turn: nothing to note
            if router.turn is OWN:
                self._to_side(event)
                return None
            return event
        route = router.route(event, proc.prompts)
        if router.started is not None:
            if router.started.source is not None:
                self.wake_up_due = False  # it came
            self._to_side(router.started)
            router.started = None
        if route is Route.DROP:
            return None
        if isinstance(event, Result):
            event = self._on_result(proc, event, own=route is Route.SIDE)
        else:
            self._note(proc, event)
        if route is not Route.HOST:
            self._to_side(event)
        return None if route is Route.SIDE else event

    def _note(self, proc: _Process, event: Event) -> None:
        if isinstance(event, (AssistantMessage, UserMessage)):
            # Subagent traffic lives in a side chain, not in the conversation a rewind truncates.
            if event.uuid and event.parent_tool_use_id is None:
                proc.last_entry = event.uuid
            if isinstance(event, AssistantMessage):
                for block in event.content:
                    if isinstance(block, ToolUseBlock) and block.name == "ScheduleWakeup":
                        self.wake_up_due = not block.input.get("stop")
        elif isinstance(event, SystemInit):
            self.init = event
            self.session_id = event.session_id or self.session_id
            self._follow_mode(event.permission_mode)
        elif isinstance(event, SystemMessage) and event.subtype == "status":
            # The CLI changes its mode by itself (leaving plan mode when a plan is approved) and says so here.
            self._follow_mode(event.raw.get("permissionMode"))
        elif isinstance(event, SystemMessage) and event.subtype == "background_tasks_changed":
            tasks = event.raw.get("tasks")
            if isinstance(tasks, list):
                self.background_tasks = {
                    str(task.get("task_id")): task for task in tasks if isinstance(task, dict) and task.get("task_id")
                }

    def _follow_mode(self, mode: object) -> None:
        """Keep the CLI's permission mode as the one a restarted process starts in."""
        if isinstance(mode, str) and mode and mode != self.options.permission_mode:
            self.options = replace(self.options, permission_mode=mode)

    def _on_result(self, proc: _Process, result: Result, *, own: bool) -> Result:
        """Account for a turn's end: its cost, the conversation's id and last entry, its prompt.

        A turn the CLI took by itself costs money too (so it counts towards the budget), but it
        answers none of the host's messages: no prompt is marked answered.
        """
        self.session_id = result.session_id or self.session_id
        self._unsaved_fork = self._unsaved_rewind = None
        turn_cost = max(0.0, result.total_cost_usd - proc.cost_usd)
        proc.cost_usd = result.total_cost_usd
        self.total_cost_usd += turn_cost
        if own:
            self.last_message_uuid = proc.last_entry or self.last_message_uuid
            return replace(result, cost_usd=turn_cost, prompt_uuid=None, last_message_uuid=self.last_message_uuid)
        prompt = result.raw.get("user_message_uuid")
        if prompt not in proc.prompts:
            prompt = proc.prompts[0] if proc.prompts else None
        if prompt is not None:
            proc.prompts.remove(prompt)
        if prompt == proc.interrupting or not proc.prompts:
            proc.interrupting = None
            proc.set_deadline(None)
        self.last_message_uuid = proc.last_entry or self.last_message_uuid
        if prompt is not None:
            self._answered.append((prompt, self.last_message_uuid))
        return replace(result, cost_usd=turn_cost, prompt_uuid=prompt, last_message_uuid=self.last_message_uuid)

    async def _report_exit(self, proc: _Process) -> None:
        """The process's output ended: fail pending work, and queue the end of every unfinished turn.

        A turn that was being interrupted ends with a made-up interrupted Result; any other raises
        :class:`ProcessDiedError` (once, for all of them).
        """
        if proc.exit_reported:
            return
        proc.exit_reported = True
        # Another reader (the side channel's) may find the turn's end meanwhile: it waits for this.
        proc.exit_reporting = anyio.Event()
        try:
            code = await proc.transport.wait(5.0)
            proc.control.fail_all("the claude process exited")
            unfinished, proc.prompts = proc.prompts, []
            proc.set_deadline(None)
            if not unfinished:
                return
            if unfinished == [proc.interrupting]:
                self._events.append(self._ended_while_interrupted(proc, unfinished[0], code))
            else:
                self._events.append(ProcessDiedError(code, proc.transport.stderr_tail()))
        finally:
            proc.exit_reporting.set()

    def _ended_while_interrupted(self, proc: _Process, prompt: str, code: int | None) -> Result:
        """The Result of an interrupted turn whose process ended before writing one.

        Its ``last_message_uuid`` stays the last one a real Result confirmed: what a killed
        process printed last may not have reached its transcript.
        """
        return Result(
            subtype="error_during_execution",
            is_error=True,
            session_id=self.session_id or "",
            text=None,
            errors=[f"the claude process ended (exit code {code}) before the interrupted turn finished"],
            total_cost_usd=proc.cost_usd,
            cost_usd=0.0,
            usage={},
            duration_ms=0,
            duration_api_ms=0,
            num_turns=0,
            stop_reason=None,
            terminal_reason="aborted_process_exited",
            api_error_status=None,
            permission_denials=[],
            raw={},
            prompt_uuid=prompt,
            last_message_uuid=self.last_message_uuid,
        )
