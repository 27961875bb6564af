"""One turn, from the message to the footer, for every host.

The kernel and the ``%%claude`` magic differ only in how output is sent (a :class:`DisplaySink`)
and who answers permission prompts and host tools (a :class:`Responder`: widgets when someone can
click, a declared policy when nobody can). Everything else about a turn lives here, once: sending,
streaming, throttled redraws, the cut before a panel, interrupts, the notes and hints at the end,
the footer and the final redraw. :func:`run_turn` returns a :class:`TurnOutcome` that each host
maps to its own kind of reply.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import anyio

from . import context_meter
from ._html import strip_controls
from .diff import FILE_TOOLS
from .invisible import show_invisible
from .render import FREEZE_AT, TurnView
from .session import (
    AssistantMessage,
    BudgetExceededError,
    HostToolRequest,
    PermissionRequest,
    ProcessDiedError,
    RequestCancelled,
    Result,
    Session,
    SessionError,
    TextDelta,
    ToolResult,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

__all__ = [
    "Allow",
    "Deny",
    "DisplaySink",
    "HeadlessResponder",
    "PermissionDecision",
    "Responder",
    "TurnOutcome",
    "UpdatableDisplays",
    "deliver",
    "run_turn",
    "sigint_sets",
]

log = logging.getLogger("claude_kernel.turn")

NOBODY_TO_ANSWER = (
    "Nobody can answer questions in this headless notebook run. Do not wait for an answer: "
    "go on with the choice you think best and say which one you made."
)
INTERRUPTED_NOTE = "Interrupted; the conversation continues in the next cell."
CRASHED_NOTE = "The claude CLI stopped during this cell; the next cell resumes the conversation."


@dataclass(frozen=True)
class Allow:
    updated_input: dict[str, object] | None = None
    always: bool = False
    #: The permission mode the CLI switches to as it runs the tool (an approved plan's).
    mode: str | None = None


@dataclass(frozen=True)
class Deny:
    message: str
    interrupt: bool = False


PermissionDecision = Allow | Deny


class Responder(Protocol):
    """Answers what the CLI asks the host during a turn."""

    #: Whether answering shows something in the output (then the turn's display continues below it).
    shows_output: bool

    async def permission(self, request: PermissionRequest) -> PermissionDecision: ...

    async def host_tool(self, request: HostToolRequest) -> ToolResult: ...

    def cancel(self, tool_use_id: str) -> None:
        """The CLI no longer wants an answer (an interrupt): close whatever is waiting."""

    def cancel_all(self) -> None:
        """The turn is over, however it ended: nothing may stay waiting for a click."""


class DisplaySink(Protocol):
    """Where a turn's output goes."""

    def update(self, bundles: list[dict[str, str]]) -> None:
        """Show the turn's displays (one bundle each) in place of what it showed before."""

    def finish(self, bundles: list[dict[str, str]], metadata: dict[str, Any]) -> None:
        """The turn's final displays (a terminal prints them here, once), with the turn's metadata."""

    def image(self, media_type: str, data: str) -> None: ...


class UpdatableDisplays:
    """The DisplaySink bookkeeping both notebook hosts share: one display id per bundle.

    Ids are fresh per cell run: an update replaces every output carrying its id, in any cell.
    Only displays whose bundle changed since they were last published are published again (a
    frozen display's bundle is the same object each time, so most checks are one comparison),
    and the final redraw's metadata rides on those. Subclasses only say how one bundle and one
    image are published.
    """

    def __init__(self) -> None:
        self._display_ids: list[str] = []
        self._shown: list[dict[str, str]] = []

    def update(self, bundles: list[dict[str, str]], metadata: dict[str, Any] | None = None) -> None:
        for index, bundle in enumerate(bundles):
            new = index == len(self._display_ids)
            if new:
                self._display_ids.append(uuid.uuid4().hex)
                self._shown.append(bundle)
            elif bundle is self._shown[index] or bundle == self._shown[index]:
                continue
            self._shown[index] = bundle
            self.publish(bundle, self._display_ids[index], new=new, metadata=metadata)

    def finish(self, bundles: list[dict[str, str]], metadata: dict[str, Any]) -> None:
        self.update(bundles, metadata)

    def publish(
        self, bundle: dict[str, Any], display_id: str, *, new: bool, metadata: dict[str, Any] | None = None
    ) -> None:
        raise NotImplementedError

    def image(self, media_type: str, data: str) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class HeadlessResponder:
    """The declared policy for runs where nobody can click (nbclient, papermill, a script).

    ``policy`` is ``"deny"`` (the default) or ``"allow"``; host tools that need a person always get
    an error result that says why, so the model can carry on and a run never hangs.
    """

    policy: str = "deny"
    shows_output = False

    async def permission(self, request: PermissionRequest) -> PermissionDecision:
        if request.tool_name == "AskUserQuestion":  # allowing it unanswered would not answer it either
            return Deny(NOBODY_TO_ANSWER)
        if self.policy == "allow":
            return Allow()
        return Deny(
            f"No one can approve {request.tool_name} in this headless run, so it was denied. "
            "Run the notebook interactively, or allow such calls in headless runs "
            "(`%permissions headless allow` in the Claude kernel, `%%claude --headless allow` in Python)."
        )

    async def host_tool(self, request: HostToolRequest) -> ToolResult:
        return ToolResult(
            request.tool_use_id,
            f"No one is at the notebook to answer {request.tool_name} (headless run).",
            is_error=True,
        )

    def cancel(self, tool_use_id: str) -> None:
        pass

    def cancel_all(self) -> None:
        pass


@dataclass(frozen=True)
class TurnOutcome:
    """How a turn ended, for the host to map to its reply; ``view`` is what was shown."""

    view: TurnView
    status: Literal["ok", "interrupted", "error"]
    #: For errors: a short name (``ClaudeError``, ``ProcessDiedError``...) and the text to show.
    error_name: str = ""
    error_text: str = ""
    #: The uuid of the user message the turn sent ("" if it was never sent).
    prompt_uuid: str = ""
    #: Files the turn's successful Edit / Write / NotebookEdit calls changed, in order.
    changed_files: tuple[str, ...] = ()
    #: Those of them a Write created (absent before the turn): undoing the turn deletes them.
    created_files: tuple[str, ...] = ()


class _FileChanges:
    """Which files a turn's file tools changed: their calls, kept once their result is not an error."""

    def __init__(self) -> None:
        self._calls: dict[str, str] = {}
        self.paths: list[str] = []
        self.created: list[str] = []

    def see(self, event: object) -> None:
        if isinstance(event, AssistantMessage) and not event.parent_tool_use_id:
            for block in event.content:
                if isinstance(block, ToolUseBlock) and block.name in FILE_TOOLS:
                    path = block.input.get("file_path") or block.input.get("notebook_path")
                    if isinstance(path, str) and not _is_plan_file(path):
                        self._calls[block.id] = path
        elif isinstance(event, UserMessage):
            for block in event.content:
                if isinstance(block, ToolResultBlock) and not block.is_error:
                    path = self._calls.pop(block.tool_use_id, None)
                    if path is not None and path not in self.paths:
                        self.paths.append(path)
                        # Write answers {"type": "create", "originalFile": null, ...} for a new file.
                        result = event.tool_use_result
                        if isinstance(result, dict) and result.get("type") == "create":
                            self.created.append(path)


def _is_plan_file(path: str) -> bool:
    """The plan the CLI has the model write in plan mode (``~/.claude/plans/<slug>.md``): the CLI's own
    notes, not one of the files a cell changed for the person."""
    parts = os.path.normpath(path).split(os.sep)
    return len(parts) >= 3 and parts[-2] == "plans" and parts[-3] == ".claude" and path.endswith(".md")


async def deliver(
    session: Session, request: PermissionRequest, decision: PermissionDecision, *, may_interrupt: bool = True
) -> None:
    """Tell the CLI what was decided. ``may_interrupt=False`` for a question that is not the running
    turn's (background work): a cancelled panel must not stop an unrelated turn."""
    if isinstance(decision, Allow):
        await session.allow(request, updated_input=decision.updated_input, always=decision.always, mode=decision.mode)
    else:
        await session.deny(request, decision.message, interrupt=decision.interrupt and may_interrupt)


def _decision_note(decision: PermissionDecision) -> str:
    if isinstance(decision, Deny):
        return f"denied: {decision.message}"
    if decision.always:
        return "allowed for the rest of the session"
    if decision.mode:
        return f"approved (permission mode {decision.mode})"
    if decision.updated_input is not None and "answers" in decision.updated_input:
        return "answered"
    return "allowed with your edits" if decision.updated_input is not None else "allowed"


def error_hint(result: Result) -> str:
    """The CLI's words for a failed turn, plus what a notebook user can do about it."""
    message = result.error_text
    lowered = message.lower()
    if result.api_error_status in (401, 403) or any(
        marker in lowered for marker in ("api key", "log in", "logged in", "/login")
    ):
        message += (
            " (set ANTHROPIC_API_KEY in the kernel's environment or in the kernelspec's env, "
            "or log in once by running `claude` in a terminal on the kernel's host)"
        )
    elif result.api_error_status == 429:
        message += " (rate limited: wait a moment and run the cell again)"
    return message


def usd(amount: float) -> str:
    """Dollars as people write them: cents for a budget of dollars, more digits below a dollar."""
    return f"${amount:,.2f}" if amount >= 1 else f"${amount:.4g}"


def shown_path(path: str, cwd: str | None) -> str:
    """A path as the user thinks of it: relative to the CLI's working directory when inside it.

    Only for showing: invisible and text-direction characters are written out (``⟨U+202E⟩``).
    """
    if cwd and os.path.isabs(path):
        relative = os.path.relpath(path, cwd)
        if not relative.startswith(".."):
            return show_invisible(relative)
    return show_invisible(path)


def budget_message(session: Session) -> str:
    """Why a turn stopped at the budget, naming the cap, and how to raise it."""
    cap = session.options.max_budget_usd or 0.0
    return (
        f"this conversation reached its budget of {usd(cap)} (spent ${session.total_cost_usd:.4f}); "
        "raise it with `%budget USD` (`%%claude --budget USD` in Python), or `%budget off`"
    )


def footer(view: TurnView, session: Session, meter: str = "") -> str:
    """Model, duration, tokens, this cell's cost and the session's, and how full the context is."""
    result = view.result
    parts = []
    if session.init is not None and session.init.model:
        parts.append(session.init.model)
    if result is not None:
        parts.append(f"{result.duration_ms / 1000:.1f} s")
        usage = result.usage
        tokens_in = sum(
            int(usage.get(k) or 0) for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        parts.append(f"{tokens_in:,} in / {int(usage.get('output_tokens') or 0):,} out tokens")
        cap = session.options.max_budget_usd
        of_budget = f" of {usd(cap)}" if cap is not None else ""
        parts.append(f"${result.cost_usd:.4f} (session ${session.total_cost_usd:.4f}{of_budget})")
    if meter:
        parts.append(meter)
    return " · ".join(parts)


@contextmanager
def sigint_sets(event: anyio.Event) -> Iterator[None]:
    """While the block runs, SIGINT (Ctrl-C in terminal IPython) sets ``event``.

    The handler only schedules the set on the event loop: raising KeyboardInterrupt inside the loop
    would end the process, and the turn has to end through ``Session.interrupt()`` to keep the session.
    """
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda signum, frame: loop.call_soon_threadsafe(event.set))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class TurnDisplay:
    """What a turn has shown, and when to show it again.

    Redraws are throttled: the next comes ``interval`` seconds after the last one ended, or as
    long after as the last one took, if that was longer. So redrawing never takes more than half
    the time, however slow it gets (a huge code block is re-rendered whole while it streams), and
    the turn's events are read in between. :meth:`flush` with ``force`` always sends, and holds
    the next redraw back only as long as it took: the status line after sending and the clock's
    tick must not delay what streams. The first text of each message is drawn at once, whatever
    the throttle says: waiting for the first words is what people notice. Tool images are sent
    once each, as they arrive. Kept apart from the session so the throttle and the cut can be
    tested alone.
    """

    def __init__(
        self, view: TurnView, sink: DisplaySink, *, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.view = view
        self._sink = sink
        self._interval = interval
        self._clock = clock
        self._next_redraw = float("-inf")
        self._dirty = True
        self._images_sent = 0
        # The messages whose text has begun; a message's first text is drawn without waiting.
        self._texts_begun: set[str] = set()
        self._urgent = False

    def changed(self, event: object = None) -> None:
        """The view changed (by ``event``, if given: the first text of a message is drawn at once)."""
        self._dirty = True
        if isinstance(event, TextDelta) and event.message_id not in self._texts_begun:
            self._texts_begun.add(event.message_id)
            self._urgent = True

    def flush(self, *, force: bool = False) -> None:
        start = self._clock()
        if force or (self._dirty and (self._urgent or start >= self._next_redraw)):
            self._sink.update(self.view.bundles())
            end = self._clock()
            took = end - start
            wait = took if force else max(self._interval, took)
            self._next_redraw = max(self._next_redraw, end + wait) if force else end + wait
            self._dirty = self._urgent = False
        self._send_images()

    def before_panel(self, tool_use_id: str, note: str, *, panel_below: bool) -> None:
        """Mark the tool's card and show it, before a responder asks about it.

        With a panel below the card, the displays are cut there: the ones above are redrawn now
        (without the status line, which moves to the new last display), and that new display is
        created by the next flush, so it lands after the panel and the answer goes on below it.
        """
        self.view.set_tool_note(tool_use_id, note)
        if panel_below:
            self.view.cut()
            self._sink.update(self.view.bundles()[:-1])
            self._dirty = True
        else:
            self.flush(force=True)

    def finish(self, metadata: dict[str, Any]) -> None:
        self._sink.finish(self.view.bundles(), metadata)
        self._send_images(cut=False)

    def _send_images(self, *, cut: bool = True) -> None:
        """Show new tool images; with ``cut``, the answer goes on below them (a figure stays by its tool)."""
        new = self.view.images[self._images_sent :]
        if not new:
            return
        if cut:
            self.view.cut()
            self._sink.update(self.view.bundles()[:-1])
            self._dirty = True
        for media_type, data in new:
            self._sink.image(media_type, data)
        self._images_sent = len(self.view.images)


async def run_turn(
    session: Session,
    prompt: str,
    *,
    sink: DisplaySink,
    responder: Responder,
    interrupt: anyio.Event | None = None,
    interval: float = 0.25,
    notes: Sequence[str] = (),
    images: Sequence[tuple[str, str]] = (),
) -> TurnOutcome:
    """Send ``prompt``, stream the turn to ``sink``, and end it the same way for every host.

    ``images`` (``(media_type, base64)`` pairs) go with the message and are shown above the answer.

    Setting ``interrupt`` stops the turn with ``Session.interrupt()``; so does cancelling the task
    that awaits this (the stop button of an async IPython cell): then the turn is interrupted and
    drawn to its end under a shield before the cancellation goes on. Any failure becomes an error
    outcome with the partial answer kept on screen; nothing stays waiting for a click.
    """
    display = TurnDisplay(TurnView(freeze_at=_freeze_at()), sink, interval=interval)
    view = display.view
    for note in notes:  # what happened to the conversation before this turn (continued, rewound)
        view.add_note(note)
    restarts = session.restarts
    cancelled: set[str] = set()
    files = _FileChanges()
    last_request = context_meter.LastRequest()
    prompt_uuid = ""

    async def answer_permission(request: PermissionRequest) -> None:
        waiting = (
            "waiting for your answer below"
            if request.tool_name == "AskUserQuestion"
            else "waiting for your approval below"
        )
        display.before_panel(request.tool_use_id, waiting, panel_below=responder.shows_output)
        decision = await responder.permission(request)
        if request.tool_use_id in cancelled:
            return  # the CLI withdrew the question; its "cancelled" note stands
        view.set_tool_note(request.tool_use_id, _decision_note(decision))
        with _reported_by_the_stream():
            await deliver(session, request, decision)
        display.changed()

    async def answer_host_tool(request: HostToolRequest) -> None:
        # Always cut: a host tool may show output (run_python's table) with no panel asking anything.
        display.before_panel(request.tool_use_id, "waiting for your answer below", panel_below=True)
        result = await responder.host_tool(request)
        if request.tool_use_id in cancelled:
            return
        view.set_tool_note(request.tool_use_id, "answered" if not result.is_error else "not answered")
        with _reported_by_the_stream():
            await session.send_tool_result(result)
        display.changed()

    async def interrupt_when_asked(event: anyio.Event) -> None:
        await event.wait()
        await session.interrupt()

    async def tick() -> None:
        # The status line's clock moves even while nothing streams.
        while True:
            await anyio.sleep(1.0)
            display.flush(force=True)

    def done(outcome: TurnOutcome) -> TurnOutcome:
        # An error's text (the API's message, the CLI's stderr) is printed by terminals too.
        error_text = strip_controls(outcome.error_text)
        return replace(
            outcome,
            prompt_uuid=prompt_uuid,
            changed_files=tuple(files.paths),
            created_files=tuple(files.created),
            error_text=error_text,
        )

    async def stream() -> None:
        failure: SessionError | None = None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(tick)
            if interrupt is not None:
                tasks.start_soon(interrupt_when_asked, interrupt)
            try:
                while (event := await session.next_event()) is not None:
                    if isinstance(event, PermissionRequest):
                        tasks.start_soon(answer_permission, event)
                    elif isinstance(event, HostToolRequest):
                        tasks.start_soon(answer_host_tool, event)
                    elif isinstance(event, RequestCancelled):
                        cancelled.add(event.tool_use_id)
                        responder.cancel(event.tool_use_id)
                        view.set_tool_note(event.tool_use_id, "cancelled")
                        display.changed()
                    else:
                        files.see(event)
                        last_request.see(event)
                        if view.apply(event):
                            display.changed(event)
                    display.flush()
            except SessionError as exc:
                # Raised below, outside the task group, so it is not wrapped in an ExceptionGroup.
                failure = exc
            finally:
                # The turn is over (or failed); anything still waiting for a person is moot.
                tasks.cancel_scope.cancel()
        if failure is not None:
            raise failure

    outcome: TurnOutcome
    try:
        if images:
            prompt_uuid = await session.send_message_with_images(prompt, images)
            for media_type, data in images:
                sink.image(media_type, data)
        else:
            prompt_uuid = await session.send_message(prompt)
        display.flush(force=True)
        await stream()
    except anyio.get_cancelled_exc_class():
        # The host's task was cancelled (the stop button of an async cell): end the turn in the
        # CLI, keep the session and what streamed, draw the end, then let the cancellation go on.
        with anyio.CancelScope(shield=True):
            await _drain_after_interrupt(session, view)
            meter = await context_meter.measure(session, last_request, view.result)
            _end(display, session, restarts, done(TurnOutcome(view, "interrupted")), responder, meter)
        raise
    except SessionError as exc:
        if isinstance(exc, ProcessDiedError):
            view.add_note(CRASHED_NOTE, "error")
        text = budget_message(session) if isinstance(exc, BudgetExceededError) else str(exc)
        outcome = TurnOutcome(view, "error", type(exc).__name__, text)
    except Exception as exc:  # a host must outlive any failure of a turn
        log.exception("the turn failed")
        outcome = TurnOutcome(view, "error", type(exc).__name__, str(exc))
    else:
        result = view.result
        if (interrupt is not None and interrupt.is_set()) or (result is not None and result.interrupted):
            outcome = TurnOutcome(view, "interrupted")
        elif result is not None and result.budget_exceeded:
            outcome = TurnOutcome(view, "error", "BudgetExceededError", budget_message(session))
        elif result is not None and result.is_error:
            outcome = TurnOutcome(view, "error", "ClaudeError", error_hint(result))
        else:
            outcome = TurnOutcome(view, "ok")
    outcome = done(outcome)
    meter = await context_meter.measure(session, last_request, view.result)
    _end(display, session, restarts, outcome, responder, meter)
    return outcome


def _freeze_at() -> int | None:
    """How much finished output the live display holds before it freezes (see ``TurnView``).

    ``CLAUDE_KERNEL_FREEZE_AT`` is for measuring: a number of characters, or ``off`` for the
    whole-turn redraws of earlier versions (the benchmark's "before").
    """
    setting = os.environ.get("CLAUDE_KERNEL_FREEZE_AT", "")
    if setting == "off":
        return None
    return int(setting) if setting.isdigit() else FREEZE_AT


@contextmanager
def _reported_by_the_stream() -> Iterator[None]:
    """An answer that cannot be delivered because the process died: the stream reports the death."""
    try:
        yield
    except SessionError as exc:
        log.info("an answer could not be delivered: %s", exc)


async def _drain_after_interrupt(session: Session, view: TurnView) -> None:
    """Interrupt the turn and read it to its end (bounded: the session escalates on its own)."""
    with anyio.move_on_after(3 * session.interrupt_grace + 5):
        await session.interrupt()
        while (event := await session.next_event()) is not None:
            view.apply(event)


def _end(
    display: TurnDisplay, session: Session, restarts: int, outcome: TurnOutcome, responder: Responder, meter: str = ""
) -> None:
    """The same notes, footer and final redraw for every host and every way a turn ends."""
    responder.cancel_all()
    view = display.view
    if session.restarts != restarts:
        view.add_note(f"The CLI had stopped; resumed session {session.session_id}.")
    if outcome.changed_files:
        shown = ", ".join(shown_path(path, session.options.cwd) for path in outcome.changed_files)
        view.add_note(f"This cell changed {shown}; `%undo` puts them back.")
    if outcome.status == "interrupted":
        view.add_note(INTERRUPTED_NOTE, "cancelled")
    view.finish(footer(view, session, meter))
    # A saved notebook maps each cell's output to its turn in the CLI's transcript.
    display.finish({"claude_kernel": {"session_id": session.session_id, "message_uuid": outcome.prompt_uuid}})
