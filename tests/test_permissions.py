"""Permission prompts (``can_use_tool``) answered through the session, against the real CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from claude_kernel.session import PermissionRequest, Result, Session
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, tool_results

from .helpers import collect_turn, of_type

pytestmark = [pytest.mark.anyio, pytest.mark.real_cli]

# A writing command: read-only commands such as `echo` are never asked about.
TOUCH = {"command": "touch made-by-bash.txt", "description": "Create a file"}


async def _turn_with_prompt(session: Session, answer: Any) -> tuple[list[Any], Result]:
    await session.send_message("make a file")
    events = []
    while (event := await session.next_event()) is not None:
        events.append(event)
        if isinstance(event, PermissionRequest):
            await answer(event)
    return events, of_type(events, Result)[0]


async def test_allow_runs_the_tool(fake_api: FakeMessagesAPI, make_options: Any, workdir: Path) -> None:
    fake_api.enqueue(Reply.tool("Bash", TOUCH), Reply.text("Created."))
    async with await Session.spawn(make_options()) as session:
        events, result = await _turn_with_prompt(session, session.allow)
    request = of_type(events, PermissionRequest)[0]
    assert request.tool_name == "Bash" and request.input["command"] == TOUCH["command"]
    assert request.tool_use_id.startswith("toolu_")
    assert (workdir / "made-by-bash.txt").exists()
    assert result.text == "Created." and not result.is_error
    assert not tool_results(fake_api.requests[1])[0].get("is_error")


async def test_allow_with_edited_input_runs_the_edit(
    fake_api: FakeMessagesAPI, make_options: Any, workdir: Path
) -> None:
    fake_api.enqueue(Reply.tool("Bash", TOUCH), Reply.text("Created."))
    async with await Session.spawn(make_options()) as session:

        async def edit(request: PermissionRequest) -> None:
            await session.allow(request, updated_input={**request.input, "command": "touch edited.txt"})

        await _turn_with_prompt(session, edit)
    assert (workdir / "edited.txt").exists()
    assert not (workdir / "made-by-bash.txt").exists()


async def test_deny_with_message_reaches_the_model(fake_api: FakeMessagesAPI, make_options: Any, workdir: Path) -> None:
    fake_api.enqueue(Reply.tool("Bash", TOUCH), Reply.text("Understood, I will not."))
    async with await Session.spawn(make_options()) as session:

        async def deny(request: PermissionRequest) -> None:
            await session.deny(request, "Not in my home directory, please.")

        _, result = await _turn_with_prompt(session, deny)
    assert not (workdir / "made-by-bash.txt").exists()
    denied = tool_results(fake_api.requests[1])[0]
    assert denied["is_error"] and "Not in my home directory, please." in str(denied["content"])
    assert result.text == "Understood, I will not."


async def test_deny_and_interrupt_ends_the_turn(fake_api: FakeMessagesAPI, make_options: Any, workdir: Path) -> None:
    fake_api.enqueue(Reply.tool("Bash", TOUCH))
    async with await Session.spawn(make_options()) as session:

        async def deny(request: PermissionRequest) -> None:
            await session.deny(request, "Stop.", interrupt=True)

        _, result = await _turn_with_prompt(session, deny)
        assert result.interrupted
        # The process survived: the next turn works on it.
        fake_api.enqueue(Reply.text("Still here."))
        await session.send_message("are you there?")
        assert of_type(await collect_turn(session), Result)[0].text == "Still here."
    assert len(fake_api.requests) == 2
    assert not (workdir / "made-by-bash.txt").exists()


async def test_always_allow_stops_asking(fake_api: FakeMessagesAPI, make_options: Any, workdir: Path) -> None:
    second = {"command": "touch second.txt", "description": "Another file"}
    fake_api.enqueue(Reply.tool("Bash", TOUCH), Reply.text("One."), Reply.tool("Bash", second), Reply.text("Two."))
    async with await Session.spawn(make_options()) as session:

        async def always(request: PermissionRequest) -> None:
            await session.allow(request, always=True)

        first_events, _ = await _turn_with_prompt(session, always)
        second_events, result = await _turn_with_prompt(session, always)
    assert len(of_type(first_events, PermissionRequest)) == 1
    assert of_type(second_events, PermissionRequest) == []
    assert (workdir / "second.txt").exists() and result.text == "Two."


async def test_without_permission_prompts_asks_are_denied(
    fake_api: FakeMessagesAPI, make_options: Any, workdir: Path
) -> None:
    fake_api.enqueue(Reply.tool("Bash", TOUCH), Reply.text("Could not."))
    async with await Session.spawn(make_options(permission_prompts=False)) as session:
        await session.send_message("make a file")
        events = await collect_turn(session)
    assert not of_type(events, PermissionRequest)
    assert of_type(events, Result)[0].permission_denials
    assert not (workdir / "made-by-bash.txt").exists()


async def test_the_session_follows_the_clis_permission_mode(
    fake_api: FakeMessagesAPI, make_options: Any, workdir: Path
) -> None:
    """Approving a plan with a mode (``setMode`` in the answer) changes the CLI's mode at once: the
    CLI reports it (``system/status`` ``permissionMode``) and a restarted process starts in it."""
    made = {"file_path": str(workdir / "after-plan.txt"), "content": "x\n"}
    fake_api.enqueue(Reply.tool("ExitPlanMode", {}), Reply.tool("Write", made), Reply.text("Done."))
    async with await Session.spawn(make_options(permission_mode="plan")) as session:

        async def approve(request: PermissionRequest) -> None:
            await session.allow(request, mode="acceptEdits")

        events, _ = await _turn_with_prompt(session, approve)
        assert [e.tool_name for e in of_type(events, PermissionRequest)] == ["ExitPlanMode"]  # the Write ran unasked
        assert session.options.permission_mode == "acceptEdits"
        assert (workdir / "after-plan.txt").exists()
        await session.set_permission_mode("default")
        assert session.options.permission_mode == "default"


async def test_entering_plan_mode_is_followed(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    """EnterPlanMode runs without a prompt; the CLI reports the mode it entered."""
    fake_api.enqueue(Reply.tool("EnterPlanMode", {}), Reply.text("Planning."))
    async with await Session.spawn(make_options()) as session:
        events, _ = await _turn_with_prompt(session, session.allow)
        assert not of_type(events, PermissionRequest)
        assert session.options.permission_mode == "plan"
