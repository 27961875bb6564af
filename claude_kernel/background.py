"""What the CLI does between cells, shown in the cell that started it.

The turn path (``turn.py``) answers the cell's own message. Beside it, a :class:`BackgroundBoard`
follows the session's side channel (``Session.next_side_event``) for as long as the session
lives: background agents working after their cell ended, the turns the CLI takes by itself when
one reports or a wake-up comes due, and the approvals such work asks for while no cell runs.

Where it shows them: a cell that leaves work running (a background agent, a background command,
a scheduled wake-up) ends with an *area*, a display that is updated after the cell has ended
(``update_display_data`` replaces a display by id in any cell, finished or not). The area shows
each task's progress, then the turn the CLI takes when it reports, streaming. Beneath it sits a
*slot*, a second display where an approval or question from that work appears and is answered.
A turn no cell started (nothing is known to have asked for it) is kept and shown, labelled, at
the top of the next cell; one that begins while a cell runs gets an area in that cell.

Nothing here is Jupyter-specific: a host hands over a :class:`~.widgets.PanelSink` per cell and
a factory for the responder that asks in a sink, or answers by policy when nobody can click.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ._detached import run_detached
from ._html import escape
from .agent_progress import AgentProgress, task_kind
from .panels._base import PanelSink
from .render import TurnView
from .session import (
    AssistantMessage,
    Event,
    HostToolRequest,
    OwnTurnStarted,
    PermissionRequest,
    RequestCancelled,
    Result,
    Session,
    SessionError,
    SystemMessage,
    UserMessage,
)
from .turn import Responder, deliver, footer

__all__ = ["WAKE_UP_TOOLS", "BackgroundBoard", "ResponderFactory"]

log = logging.getLogger("claude_kernel.background")

#: Tools whose call means the CLI will come back by itself later.
WAKE_UP_TOOLS = frozenset({"ScheduleWakeup", "CronCreate"})

_MUTED = "color: var(--jp-ui-font-color2)"
_AREA = "border-left: 3px solid var(--jp-brand-color2, #90caf9); padding: 0.1em 0 0.1em 0.75em; margin: 0.5em 0"
_EMPTY: dict[str, str] = {"text/plain": ""}

#: The host's responder that asks in a sink, or, given None (nobody can click), answers by its
#: headless policy. The host's own: ``%%claude`` answers its namespace tools itself.
ResponderFactory = Callable[[PanelSink | None], Responder]


@dataclass(eq=False)
class _Task:
    tool_use_id: str
    task_id: str
    description: str
    kind: str
    progress: AgentProgress = field(default_factory=AgentProgress)


class _Area:
    """A cell's display for the work it left running, and the slot beneath it for questions."""

    def __init__(self, sink: PanelSink, title: str, *, interval: float) -> None:
        self.sink = sink
        self.title = title
        self.tasks: list[_Task] = []
        self.turns: list[TurnView] = []
        self.wakes = False
        #: Questions are asked one at a time: there is one slot.
        self.asking = anyio.Lock()
        self._interval = interval
        self._drawn_at = float("-inf")
        self._ids = (uuid.uuid4().hex, uuid.uuid4().hex)
        sink.publish(self.bundle(), self._ids[0], new=True)
        sink.publish(_EMPTY, self._ids[1], new=True)

    def bundle(self) -> dict[str, str]:
        html = [f'<div style="{_MUTED}"><strong>{escape(self.title)}</strong></div>']
        plain = [self.title]
        for task in self.tasks:
            state = "running in the background" if task.progress.running else task.progress.status
            line = f"{task.kind} {task.description}: {state}"
            html.append(f"<div>▸ <strong>{escape(task.kind)}</strong> <code>{escape(task.description)}</code>")
            html.append(f' <span style="{_MUTED}">{escape(state)}</span></div>')
            html.append(f'<div style="{_MUTED}; margin-left: 1em">{task.progress.html()}</div>')
            plain += [line, task.progress.plain()]
        if self.wakes and not self.turns:
            html.append(f'<div style="{_MUTED}">Claude scheduled a wake-up; its turn will show here.</div>')
            plain.append("Claude scheduled a wake-up; its turn will show here.")
        for view in self.turns:
            for bundle in view.bundles():
                html.append(bundle["text/html"])
                plain.append(bundle["text/plain"])
        return {"text/html": f'<div style="{_AREA}">' + "".join(html) + "</div>", "text/plain": "\n".join(plain)}

    def redraw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._drawn_at >= self._interval:
            self.sink.publish(self.bundle(), self._ids[0], new=False)
            self._drawn_at = now

    def slot(self) -> PanelSink:
        return _Slot(self.sink, self._ids[1])


def _publish_note(sink: PanelSink, text: str) -> None:
    """A line of our own (escaped) as a display of its own in a cell's output."""
    html = f'<div style="{_MUTED}">{escape(text)}</div>'
    sink.publish({"text/html": html, "text/plain": text}, uuid.uuid4().hex, new=True)


@dataclass(frozen=True)
class _Slot:
    """A panel sink that always shows its panel in one reserved display (the cell may have ended)."""

    sink: PanelSink
    display_id: str

    def publish(
        self, bundle: dict[str, Any], display_id: str, *, new: bool, metadata: dict[str, Any] | None = None
    ) -> None:
        self.sink.publish(bundle, self.display_id, new=False, metadata=metadata)


class BackgroundBoard:
    """Follows a session's side channel and shows it in the cells (see the module's docstring)."""

    def __init__(self, *, responder: ResponderFactory, interval: float = 0.25) -> None:
        self._responder = responder
        self._interval = interval
        self._tasks: dict[str, _Task] = {}  # by the tool call that started the task
        self._areas: dict[str, _Area] = {}  # by the tool call whose work they show
        self._wake_area: _Area | None = None
        #: The CLI's turn of its own under way: its view, its area, the task whose report it answers.
        self._own: tuple[TurnView, _Area | None, str | None] | None = None
        self._orphans: list[TurnView] = []
        self._responders: dict[str, Responder] = {}
        # The running cell, if any, and the area it got for a turn of the CLI's own.
        self._cell: PanelSink | None = None
        self._cell_area: _Area | None = None
        #: How questions are answered: by a person (widgets) or by the headless policy.
        self.interactive = True
        self._followed: Session | None = None

    def watch(self, session: Session) -> None:
        """Follow ``session`` from now on, in a task on the running loop (once per session).

        A conversation replaces its session on ``%new``, ``%resume`` and option changes; the
        follower of the old one ends when it closes.
        """
        if session is not self._followed:
            self._followed = session
            run_detached(self.follow(session))

    # -- the host's cells -------------------------------------------------------------------

    def cell_started(self, sink: PanelSink) -> None:
        """A cell begins: turns nobody started are shown at its top, labelled."""
        self._cell, self._cell_area = sink, None
        for view in self._orphans:
            area = _Area(sink, "While no cell was running, Claude took a turn on its own:", interval=self._interval)
            area.turns.append(view)
            area.redraw(force=True)
        self._orphans = []

    def cell_ended(self, sink: PanelSink, view: TurnView | None) -> None:
        """The cell is over: give the work its turn left running an area in its output.

        What it left running is read off the turn itself (the CLI's task events may still be on
        their way); the area is made even for work that already finished, since the turn the CLI
        takes about it is still to come. Hosts call this however the cell ends; ``view`` is None
        when the turn raised (an interrupted ``%%claude`` cell), and then only the cell is over:
        questions asked later must not go to it.
        """
        if view is None:
            self._cell, self._cell_area = None, None
            return
        tasks = []
        for tool_use_id, kind, description in view.background_launches():
            task = self._tasks.setdefault(tool_use_id, _Task(tool_use_id, "", description, kind))
            tasks.append(task)
        wakes = any(name in WAKE_UP_TOOLS for _, name in view.tool_calls())
        self._cell, self._cell_area = None, None
        if not tasks and not wakes:
            return
        area = _Area(sink, "Left running by this cell:", interval=self._interval)
        area.tasks, area.wakes = tasks, wakes
        area.redraw(force=True)
        for task in tasks:
            self._areas[task.tool_use_id] = area
        if wakes:
            self._wake_area = area

    # -- the side channel -------------------------------------------------------------------

    async def follow(self, session: Session) -> None:
        """Show the session's side channel until the session closes."""
        async with anyio.create_task_group() as tasks:
            try:
                while (event := await session.next_side_event()) is not None:
                    try:
                        self.apply(session, event, tasks)
                    except Exception:  # a drawing bug must not stop the board
                        log.exception("could not show a background event")
            except SessionError as exc:
                log.info("stopped following the session: %s", exc)
            tasks.cancel_scope.cancel()

    def apply(self, session: Session, event: Event, tasks: TaskGroup) -> None:
        if isinstance(event, PermissionRequest | HostToolRequest):
            tasks.start_soon(self._answer, session, event)
        elif isinstance(event, RequestCancelled):
            responder = self._responders.pop(event.tool_use_id, None)
            if responder is not None:
                responder.cancel(event.tool_use_id)
        elif isinstance(event, OwnTurnStarted):
            self._own_turn_started(event)
        elif isinstance(event, SystemMessage) and event.subtype.startswith("task_"):
            self._task_event(event)
        elif isinstance(event, AssistantMessage | UserMessage) and event.parent_tool_use_id:
            self._agent_event(event.parent_tool_use_id, event)
        elif self._own is not None:
            self._own_turn_event(session, event)

    def _task_event(self, event: SystemMessage) -> None:
        raw = event.raw
        tool_use_id = raw.get("tool_use_id")
        if not isinstance(tool_use_id, str):
            return
        if event.subtype == "task_started":
            kind = task_kind(raw.get("task_type"))
            task = self._tasks.setdefault(tool_use_id, _Task(tool_use_id, "", str(raw.get("description") or ""), kind))
            task.task_id = str(raw.get("task_id") or "")
            return
        self._agent_event(tool_use_id, event)

    def _agent_event(self, tool_use_id: str, event: Event) -> None:
        task = self._tasks.get(tool_use_id)
        if task is not None and task.progress.apply(event):
            self._redraw_task(task, force=not task.progress.running)

    def _own_turn_started(self, event: OwnTurnStarted) -> None:
        area = self._areas.get(event.notified or "") or self._wake_area
        if area is None and self._cell is not None:
            if self._cell_area is None:
                self._cell_area = _Area(self._cell, "Claude, on its own, before this cell's answer:", interval=0)
            area = self._cell_area
        view = TurnView()
        task = self._tasks.get(event.notified or "")
        if task is not None:
            view.add_note(f"{task.kind} \u201c{task.description}\u201d reported; Claude answers it:")
        if area is not None:
            area.turns.append(view)
            area.redraw(force=True)
        self._own = (view, area, event.notified)

    def _own_turn_event(self, session: Session, event: Event) -> None:
        assert self._own is not None
        view, area, notified = self._own
        if not view.apply(event):
            return
        if isinstance(event, Result):
            if event.interrupted:
                view.add_note("Interrupted.", "cancelled")
            view.finish(footer(view, session))
            self._own = None
            if area is None:
                self._orphans.append(view)
            self._forget(notified)
        if area is not None:
            area.redraw(force=isinstance(event, Result))

    def _forget(self, tool_use_id: str | None) -> None:
        """Drop a task once Claude has answered its report: nothing more comes for it, and a long
        session would otherwise keep every task it ever ran. One whose cell has not ended yet
        (it has no area) stays: that cell's end still reads its status."""
        if tool_use_id is not None and self._areas.pop(tool_use_id, None) is not None:
            self._tasks.pop(tool_use_id, None)

    def _asker(self, request: PermissionRequest | HostToolRequest) -> tuple[_Task | None, _Area | None]:
        """The background task that asks (if a subagent does), and the area that shows its work."""
        agent = request.raw.get("agent_id") if isinstance(request, PermissionRequest) else None
        for task in self._tasks.values():
            if task.task_id == agent:
                return task, self._areas.get(task.tool_use_id)
        return None, self._own[1] if self._own is not None else None

    async def _answer(self, session: Session, request: PermissionRequest | HostToolRequest) -> None:
        """Ask where the person looks: in the running cell if there is one, else under the work's area."""
        task, area = self._asker(request)
        who = f"{task.kind} \u201c{task.description}\u201d, running in the background," if task else "Claude"
        responder: Responder
        if self._cell is not None and self.interactive:
            _publish_note(self._cell, f"{who} asks (it was started by an earlier cell):")
            responder, area = self._responder(self._cell), None
        elif area is not None and self.interactive:
            responder = self._responder(area.slot())
        else:
            responder, area = self._responder(None), None
        if task is not None:
            task.progress.live = f"{request.tool_name}: waiting for your answer"
            self._redraw_task(task)
        self._responders[request.tool_use_id] = responder
        # Released only once acquired: a wait for the slot cancelled (the session closing) must
        # not free the slot another question holds.
        holding: _Area | None = None
        try:
            if area is not None:
                await area.asking.acquire()
                holding = area
            if isinstance(request, PermissionRequest):
                await deliver(session, request, await responder.permission(request), may_interrupt=False)
            else:
                await session.send_tool_result(await responder.host_tool(request))
        except SessionError as exc:
            log.info("a background question could not be answered: %s", exc)
        finally:
            if holding is not None:
                holding.asking.release()
            self._responders.pop(request.tool_use_id, None)
            if task is not None:
                task.progress.live = ""
                self._redraw_task(task)

    def _redraw_task(self, task: _Task, *, force: bool = True) -> None:
        area = self._areas.get(task.tool_use_id)
        if area is not None:
            area.redraw(force=force)
