"""The board that shows background work (background.py), fed side-channel events in-process.

The end-to-end behaviour is in test_background_kernel.py (real CLI); these are the board's own
rules, with a stand-in for the session and the host's responders.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio

from claude_kernel.background import BackgroundBoard
from claude_kernel.panels._base import PanelSink
from claude_kernel.render import TurnView
from claude_kernel.session import (
    HostToolRequest,
    OwnTurnStarted,
    PermissionRequest,
    ToolResult,
)
from claude_kernel.session._events import parse_message
from claude_kernel.turn import Allow, PermissionDecision

AGENT = "toolu_agent"


class _Sink:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(
        self, bundle: dict[str, Any], display_id: str, *, new: bool, metadata: dict[str, Any] | None = None
    ) -> None:
        self.published.append(bundle)


class _Session:
    """What the board uses of a Session: answers go nowhere but are recorded."""

    def __init__(self) -> None:
        self.allowed: list[str] = []
        self.init = None
        self.options = SimpleNamespace(max_budget_usd=None)
        self.total_cost_usd = 0.0

    async def allow(self, request: PermissionRequest, **_: Any) -> None:
        self.allowed.append(request.request_id)

    async def send_tool_result(self, result: ToolResult) -> None:
        pass


def _new_session() -> Any:
    """Typed Any: the board takes a Session, and this is the part of one it uses."""
    return _Session()


class _Responder:
    """Records where it was made to ask; answers once ``release`` is set."""

    shows_output = True

    def __init__(self, sink: PanelSink | None, release: anyio.Event) -> None:
        self.sink = sink
        self.release = release
        self.asking = anyio.Event()

    async def permission(self, request: PermissionRequest) -> PermissionDecision:
        self.asking.set()
        await self.release.wait()
        return Allow()

    async def host_tool(self, request: HostToolRequest) -> ToolResult:
        return ToolResult(request.tool_use_id, "answered")

    def cancel(self, tool_use_id: str) -> None:
        pass

    def cancel_all(self) -> None:
        pass


class _Factory:
    def __init__(self) -> None:
        self.release = anyio.Event()
        self.made: list[_Responder] = []

    def __call__(self, sink: PanelSink | None) -> _Responder:
        self.made.append(_Responder(sink, self.release))
        return self.made[-1]


def _launching_turn() -> TurnView:
    """A cell's turn that sent an agent to the background."""
    view = TurnView()
    launch = {"description": "find the answer", "prompt": "p", "run_in_background": True}
    call = {"type": "tool_use", "id": AGENT, "name": "Agent", "input": launch}
    view.apply(parse_message({"type": "assistant", "message": {"id": "m1", "content": [call]}}))
    launched = {"type": "tool_result", "tool_use_id": AGENT, "content": "Async agent launched successfully."}
    view.apply(parse_message({"type": "user", "message": {"content": [launched]}}))
    return view


def _task(subtype: str, **extra: Any) -> Any:
    line = {"type": "system", "subtype": subtype, "task_id": "agent-1", "tool_use_id": AGENT, **extra}
    return parse_message(line)


def _asks(request_id: str) -> PermissionRequest:
    raw = {"subtype": "can_use_tool", "agent_id": "agent-1"}
    return PermissionRequest(request_id, "Bash", {"command": "ls"}, f"toolu_{request_id}", [], "", None, raw)


async def _until(condition: Any) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0.001)


def test_questions_go_to_the_hosts_responder_where_the_person_looks() -> None:
    async def main() -> None:
        factory, session, cell = _Factory(), _new_session(), _Sink()
        board = BackgroundBoard(responder=factory)
        async with anyio.create_task_group() as tasks:
            board.cell_started(cell)
            board.apply(session, _asks("in-cell"), tasks)
            await _until(lambda: len(factory.made) == 1)
            board.cell_ended(cell, None)  # the cell raised: it is over all the same
            board.apply(session, _asks("after"), tasks)  # nowhere to ask now: the headless policy
            await _until(lambda: len(factory.made) == 2)
            factory.release.set()
        assert [responder.sink for responder in factory.made] == [cell, None]
        assert sorted(session.allowed) == ["after", "in-cell"]

    anyio.run(main)


def test_a_cancelled_wait_for_the_slot_leaves_the_other_questions_hold() -> None:
    async def main() -> None:
        factory, session, cell = _Factory(), _new_session(), _Sink()
        board = BackgroundBoard(responder=factory)
        board.cell_ended(cell, _launching_turn())
        async with anyio.create_task_group() as tasks:
            board.apply(session, _task("task_started", task_type="local_agent"), tasks)
            board.apply(session, _asks("first"), tasks)
            board.apply(session, _asks("second"), tasks)
            await _until(lambda: factory.made and factory.made[0].asking.is_set())
            await anyio.sleep(0.01)  # the second waits for the slot the first holds
            tasks.cancel_scope.cancel()  # the session closes: both end, and neither fails
        assert session.allowed == []

    anyio.run(main)


def test_a_task_is_forgotten_once_claude_answered_its_report() -> None:
    async def main() -> None:
        board, session, cell = BackgroundBoard(responder=_Factory()), _new_session(), _Sink()
        board.cell_ended(cell, _launching_turn())
        async with anyio.create_task_group() as tasks:
            for event in (
                _task("task_started", task_type="local_agent", description="find the answer"),
                _task("task_notification", status="completed"),
                OwnTurnStarted(AGENT),
                parse_message({"type": "result", "subtype": "success", "total_cost_usd": 0.01}),
            ):
                board.apply(session, event, tasks)
        shown = cell.published[-1]["text/plain"]
        assert "Agent find the answer: completed" in shown and "Agent \u201cfind the answer\u201d reported" in shown
        assert board._tasks == {} and board._areas == {}

    anyio.run(main)
