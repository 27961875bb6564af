"""Run one turn: stream events into a :class:`TurnView`, send displays, answer the CLI's questions.

The kernel and the ``%%claude`` magic differ only in how they send output (a :class:`DisplaySink`)
and who answers permission prompts and host tools (a :class:`Responder`: widgets when someone can
click, a declared policy when nobody can). Everything else about a turn lives here, once.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import anyio

from .render import TurnView
from .session import (
    HostToolRequest,
    PermissionRequest,
    RequestCancelled,
    Result,
    Session,
    SessionError,
    ToolResult,
)

__all__ = [
    "Allow",
    "Deny",
    "DisplaySink",
    "HeadlessResponder",
    "PermissionDecision",
    "Responder",
    "UpdatableDisplays",
    "footer",
    "run_turn",
    "sigint_sets",
]


@dataclass(frozen=True)
class Allow:
    updated_input: dict[str, object] | None = None
    always: bool = False


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


class DisplaySink(Protocol):
    """Where a turn's output goes."""

    def update(self, bundles: list[dict[str, str]]) -> None:
        """Show the turn's displays (one bundle each) in place of what it showed before."""

    def image(self, media_type: str, data: str) -> None: ...


class UpdatableDisplays:
    """The DisplaySink bookkeeping both hosts share: one display id per bundle, new ones appended.

    Ids are fresh per cell run: an update replaces every output carrying its id, in any cell.
    Subclasses only say how one bundle is published.
    """

    def __init__(self) -> None:
        self._display_ids: list[str] = []

    def update(self, bundles: list[dict[str, str]]) -> None:
        for index, bundle in enumerate(bundles):
            new = index == len(self._display_ids)
            if new:
                self._display_ids.append(uuid.uuid4().hex)
            self.publish(bundle, self._display_ids[index], new=new)

    def publish(self, bundle: dict[str, str], display_id: str, *, new: bool) -> None:
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


def _decision_note(decision: PermissionDecision) -> str:
    if isinstance(decision, Deny):
        return f"denied: {decision.message}"
    if decision.always:
        return "allowed for the rest of the session"
    return "allowed with your edits" if decision.updated_input is not None else "allowed"


@contextmanager
def sigint_sets(event: anyio.Event) -> Iterator[None]:
    """While the block runs, SIGINT (Ctrl-C, Jupyter's signal-mode interrupt) sets ``event``.

    The handler only schedules the set on the event loop: raising KeyboardInterrupt inside the loop
    would kill a kernel, and the turn has to end through ``Session.interrupt()`` to keep the session.
    """
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda signum, frame: loop.call_soon_threadsafe(event.set))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def run_turn(
    session: Session,
    prompt: str,
    *,
    sink: DisplaySink,
    responder: Responder,
    view: TurnView | None = None,
    interrupt: anyio.Event | None = None,
    interval: float = 0.25,
) -> TurnView:
    """Send ``prompt`` and stream the turn to ``sink`` until its result; returns the final view.

    Setting ``interrupt`` stops the turn with ``Session.interrupt()``; the session stays usable.
    Display updates are throttled to one per ``interval`` seconds (a long answer must not cost
    thousands of full re-renders), plus a tick each second for the status line's clock; the last
    update is always complete.
    """
    view = view or TurnView()
    last_sent = 0.0
    dirty = True
    images_sent = 0
    cancelled: set[str] = set()

    def flush(*, force: bool = False) -> None:
        nonlocal last_sent, dirty, images_sent
        now = time.monotonic()
        if force or (dirty and now - last_sent >= interval):
            sink.update(view.bundles())
            last_sent, dirty = now, False
        for media_type, data in view.images[images_sent:]:
            sink.image(media_type, data)
        images_sent = len(view.images)

    def before_asking(tool_use_id: str, note: str) -> None:
        """Mark the card and show it; a responder's panel then goes below it, and the turn goes on below that."""
        nonlocal dirty
        view.set_tool_note(tool_use_id, note)
        if responder.shows_output:
            view.cut()
            # Redraw only the displays above the cut (the status line moves to the new last one):
            # the next flush creates that one, after the panel.
            sink.update(view.bundles()[:-1])
            dirty = True
        else:
            flush(force=True)

    async def answer_permission(request: PermissionRequest) -> None:
        nonlocal dirty
        before_asking(request.tool_use_id, "waiting for your approval below")
        decision = await responder.permission(request)
        if request.tool_use_id in cancelled:
            return  # the CLI withdrew the question; its "cancelled" note stands
        view.set_tool_note(request.tool_use_id, _decision_note(decision))
        if isinstance(decision, Allow):
            await session.allow(request, updated_input=decision.updated_input, always=decision.always)
        else:
            await session.deny(request, decision.message, interrupt=decision.interrupt)
        dirty = True

    async def answer_host_tool(request: HostToolRequest) -> None:
        nonlocal dirty
        before_asking(request.tool_use_id, "waiting for your answer below")
        result = await responder.host_tool(request)
        if request.tool_use_id in cancelled:
            return
        view.set_tool_note(request.tool_use_id, "answered" if not result.is_error else "not answered")
        await session.send_tool_result(result)
        dirty = True

    async def interrupt_when_asked(event: anyio.Event) -> None:
        await event.wait()
        await session.interrupt()

    async def tick() -> None:
        while True:
            await anyio.sleep(1.0)
            flush(force=True)

    await session.send_message(prompt)
    flush(force=True)
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
                    dirty = True
                else:
                    dirty |= view.apply(event)
                flush()
        except SessionError as exc:
            # Raised below, outside the task group, so callers see the error itself rather than
            # an ExceptionGroup wrapping it.
            failure = exc
        # The turn is over; anything still waiting for a person is moot.
        tasks.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return view


def footer(view: TurnView, session: Session) -> str:
    """Model, duration, tokens, this cell's cost and the session's."""
    result: Result | None = view.result
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
        parts.append(f"${result.cost_usd:.4f} (session ${session.total_cost_usd:.4f})")
    return " · ".join(parts)
