"""Interrupts and recovery on the real CLI: the turn stops, the conversation goes on."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from claude_kernel.session import (
    AssistantMessage,
    HostTool,
    HostToolRequest,
    PermissionRequest,
    ProcessDiedError,
    RequestCancelled,
    Result,
    Session,
    TextDelta,
    ToolResult,
    ToolUseBlock,
)
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .conftest import process_alive, wait_until_dead
from .helpers import collect_turn, of_type

pytestmark = [pytest.mark.anyio, pytest.mark.real_cli]

SLOW = Reply.text("word " * 400, delay=0.02, chunk=5)  # about 8 s if nobody stops it


async def _read_until(session: Session, kind: type) -> list[Any]:
    events = []
    while (event := await session.next_event()) is not None:
        events.append(event)
        if isinstance(event, kind):
            return events
    raise AssertionError(f"the turn ended without a {kind.__name__}")


async def test_interrupt_mid_stream_then_next_turn(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(SLOW, Reply.text("Fresh answer."))
    async with await Session.spawn(make_options()) as session:
        pid = session.pid
        await session.send_message("talk for a long time")
        events = await _read_until(session, TextDelta)
        started = time.monotonic()
        await session.interrupt()
        events += await collect_turn(session)
        stopped_after = time.monotonic() - started
        result = of_type(events, Result)[0]
        assert result.interrupted and result.is_error
        partial = "".join(d.text for d in of_type(events, TextDelta))
        assert 0 < len(partial) < len("word " * 400)
        assert stopped_after < 3
        # Same process, next turn normal, and the model saw the interruption.
        await session.send_message("and now?")
        second = of_type(await collect_turn(session), Result)[0]
        assert second.text == "Fresh answer." and not second.is_error
        assert session.pid == pid and session.restarts == 0
    assert "interrupted" in str(fake_api.requests[-1]["messages"]).lower()


async def test_interrupt_while_bash_runs(fake_api: FakeMessagesAPI, make_options: Any, workdir: Path) -> None:
    # The CLI refuses a bare `sleep 30`, so the slow command is a Python one that leaves its pid.
    slow = 'python3 -c \'import os, time; open("slow.pid", "w").write(str(os.getpid())); time.sleep(30)\''
    fake_api.enqueue(Reply.tool("Bash", {"command": slow, "description": "wait"}))
    async with await Session.spawn(make_options(allowed_tools=["Bash"])) as session:
        await session.send_message("wait a while")
        await _read_until(session, AssistantMessage)
        pid_file = workdir / "slow.pid"
        with anyio.fail_after(10):
            while not pid_file.exists() or not pid_file.read_text():
                await anyio.sleep(0.05)
        started = time.monotonic()
        await session.interrupt()
        result = of_type(await collect_turn(session), Result)[0]
        assert result.interrupted and time.monotonic() - started < 5
        # The command itself was stopped, not left running.
        with anyio.fail_after(5):
            while process_alive(int(pid_file.read_text())):
                await anyio.sleep(0.05)
        fake_api.enqueue(Reply.text("Back."))
        await session.send_message("next")
        assert of_type(await collect_turn(session), Result)[0].text == "Back."
        assert session.restarts == 0


async def test_interrupt_cancels_a_pending_permission_prompt(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(Reply.tool("Bash", {"command": "touch never.txt", "description": "x"}))
    async with await Session.spawn(make_options()) as session:
        await session.send_message("make a file")
        request = (await _read_until(session, PermissionRequest))[-1]
        await session.interrupt()
        events = await collect_turn(session)
        cancelled = of_type(events, RequestCancelled)
        assert [c.tool_use_id for c in cancelled] == [request.tool_use_id]
        assert of_type(events, Result)[0].interrupted
        # A late answer is refused, not sent.
        assert await session.allow(request) is False


async def test_interrupt_cancels_a_pending_host_tool(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    tool = HostTool("ask_user", "Ask the user.")
    fake_api.enqueue(Reply.tool("mcp__host__ask_user", {}))
    async with await Session.spawn(make_options(host_tools=[tool])) as session:
        await session.send_message("ask")
        request = (await _read_until(session, HostToolRequest))[-1]
        await session.interrupt()
        events = await collect_turn(session)
        assert [c.tool_use_id for c in of_type(events, RequestCancelled)] == [request.tool_use_id]
        assert of_type(events, Result)[0].interrupted
        assert await session.send_tool_result(ToolResult(request.tool_use_id, "too late")) is False


async def test_escalation_to_sigint_then_resume(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    """With no grace the reader escalates at once: SIGINT ends the process; the next turn resumes."""
    fake_api.enqueue(Reply.text("Remember PAPAYA."), SLOW, Reply.text("PAPAYA, still."))
    session = await Session.spawn(make_options(), interrupt_grace=0.0)
    async with session:
        await session.send_message("remember papaya")
        await collect_turn(session)
        first_pid, session_id = session.pid, session.session_id
        await session.send_message("talk for a long time")
        await _read_until(session, TextDelta)
        await session.interrupt()
        await collect_turn(session)  # ends without raising: we asked for it
        assert first_pid is not None
        assert wait_until_dead(first_pid)
        await session.send_message("what fruit?")
        result = of_type(await collect_turn(session), Result)[0]
        assert result.text == "PAPAYA, still."
        assert session.restarts == 1 and session.pid != first_pid
        assert session.session_id == session_id
    assert "remember papaya" in str(fake_api.requests[-1]["messages"])


async def test_killed_cli_is_reported_then_resumed(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(Reply.text("Noted: KIWI."), SLOW, Reply.text("KIWI."))
    async with await Session.spawn(make_options()) as session:
        await session.send_message("remember kiwi")
        await collect_turn(session)
        await session.send_message("talk for a long time")
        await _read_until(session, TextDelta)
        assert session.pid is not None
        os.kill(session.pid, signal.SIGKILL)
        with pytest.raises(ProcessDiedError) as died:
            await collect_turn(session)
        assert died.value.exit_code == -signal.SIGKILL
        assert await session.next_event() is None
        await session.send_message("which fruit?")
        assert of_type(await collect_turn(session), Result)[0].text == "KIWI."
        assert session.restarts == 1
    assert "remember kiwi" in str(fake_api.requests[-1]["messages"])


async def test_interrupt_when_idle_is_harmless(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    async with await Session.spawn(make_options()) as session:
        await session.interrupt()
        await session.send_message("hi")
        assert of_type(await collect_turn(session), Result)[0].text == "You said: hi"


def test_tool_use_block_is_public() -> None:
    assert ToolUseBlock("id", "Bash", {}).name == "Bash"
