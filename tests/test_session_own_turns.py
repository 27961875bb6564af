"""Turns the CLI takes by itself (CLI >= 2.1.332), on the session's side channel, real CLI.

A background agent reports after the turn that started it has ended; the CLI then runs a turn of
its own. Each message must still get its own answer, and costs must be charged where they arose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from claude_kernel.session import (
    AssistantMessage,
    Event,
    OwnTurnStarted,
    PermissionRequest,
    Result,
    Session,
    SystemMessage,
    ToolUseBlock,
    UserMessage,
)
from claude_kernel.testing.agents import DelegatingModel
from claude_kernel.testing.fake_api import FakeMessagesAPI

from .helpers import collect_turn, of_type

pytestmark = [pytest.mark.anyio, pytest.mark.real_cli]


async def side_until_result(session: Session, *, timeout: float = 60) -> list[Event]:
    """Side-channel events up to the end of the CLI's own turn."""
    events: list[Event] = []
    with anyio.fail_after(timeout):
        while (event := await session.next_side_event()) is not None:
            events.append(event)
            if isinstance(event, Result):
                return events
    raise AssertionError(f"the session closed; side events: {events}")


def answer(events: list[Event]) -> str:
    result = events[-1]
    assert isinstance(result, Result)
    return result.text or ""


async def test_each_message_gets_its_own_answer_around_an_agents_report(
    fake_api: FakeMessagesAPI, make_options: Any
) -> None:
    model = DelegatingModel(hold=True)
    fake_api.fallback = model
    async with await Session.spawn(make_options()) as session:
        await session.send_message("delegate")
        first = await collect_turn(session)
        assert answer(first) == "launched"
        model.release.set()  # the agent reports only now, after the turn ended
        own = await side_until_result(session)
        started = of_type(own, OwnTurnStarted)
        assert len(started) == 1
        agent_call = next(
            block.id
            for message in of_type(first, AssistantMessage)
            for block in message.content
            if isinstance(block, ToolUseBlock) and block.name == "Agent"
        )
        assert started[0].notified == agent_call
        notification = [e for e in own if isinstance(e, SystemMessage) and e.subtype == "task_notification"]
        assert notification and notification[0].raw["tool_use_id"] == agent_call
        own_result = own[-1]
        assert isinstance(own_result, Result) and own_result.origin is not None
        assert own_result.text == "The agent reported: The answer is 42."
        assert own_result.prompt_uuid is None and own_result.cost_usd > 0

        answers = []
        costs = [first[-1].cost_usd if isinstance(first[-1], Result) else 0.0, own_result.cost_usd]
        for word in ("one", "two", "three"):
            prompt = await session.send_message(word)
            events = await collect_turn(session)
            assert isinstance(events[-1], Result) and events[-1].prompt_uuid == prompt
            answers.append(answer(events))
            costs.append(events[-1].cost_usd)
        assert answers == ["You said: one", "You said: two", "You said: three"]
        # Every turn's cost is counted once, the CLI's own included; none is charged to another.
        assert session.total_cost_usd == pytest.approx(sum(costs))
        assert not session.own_turn_running and session.side_events() == []


async def test_a_background_agents_approval_after_its_turn(
    fake_api: FakeMessagesAPI, make_options: Any, workdir: Path
) -> None:
    model = DelegatingModel(hold=True, agent_command="touch made-by-agent")
    fake_api.fallback = model
    async with await Session.spawn(make_options()) as session:
        await session.send_message("delegate")
        assert answer(await collect_turn(session)) == "launched"
        model.release.set()
        with anyio.fail_after(60):
            while not isinstance(request := await session.next_side_event(), PermissionRequest):
                assert request is not None
        assert request.tool_name == "Bash" and request.input["command"] == "touch made-by-agent"
        assert request.raw.get("agent_id") in session.background_tasks
        assert await session.allow(request)
        own = await side_until_result(session)
        assert answer(own) == "The agent reported: The answer is 42."
        assert (workdir / "made-by-agent").exists()
        # The next message is answered as its own.
        await session.send_message("after")
        assert answer(await collect_turn(session)) == "You said: after"


async def test_a_foreground_agents_traffic_stays_in_its_turn(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.fallback = DelegatingModel(background=False)
    async with await Session.spawn(make_options()) as session:
        await session.send_message("delegate")
        events = await collect_turn(session)
        assert answer(events) == "The agent is done."
        # The agent's own messages (the CLI does not always write its last one) belong to the turn.
        inner = [e for e in events if isinstance(e, AssistantMessage | UserMessage) and e.parent_tool_use_id]
        assert inner
        await session.send_message("next")
        assert answer(await collect_turn(session)) == "You said: next"
        side = session.side_events()
        assert not any(isinstance(e, OwnTurnStarted | AssistantMessage | UserMessage) for e in side)
