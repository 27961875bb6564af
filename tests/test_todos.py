"""The model's to-do list as one checklist per turn, updated in place."""

from __future__ import annotations

from typing import Any

import pytest

from claude_kernel.render import TurnView
from claude_kernel.session import PermissionRequest, Session
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, ToolUse

from .kernel_client import visible_text
from .test_render import assistant, audit, tool_result


def _todos(*statuses: str) -> dict[str, Any]:
    names = ["Read the data", "Draw the chart", "Save it"]
    return {
        "todos": [
            {
                "content": name,
                "status": status,
                "activeForm": name.replace("Read", "Reading").replace("Draw", "Drawing"),
            }
            for name, status in zip(names, statuses, strict=True)
        ]
    }


def test_three_todo_writes_make_one_checklist_updated_in_place() -> None:
    view = TurnView()
    calls = [("pending", "pending", "pending"), ("completed", "in_progress", "pending"), ("completed",) * 3]
    shown = []
    for number, statuses in enumerate(calls, 1):
        view.apply(
            assistant(
                f"m{number}", {"type": "tool_use", "id": f"t{number}", "name": "TodoWrite", "input": _todos(*statuses)}
            )
        )
        view.apply(tool_result(f"t{number}", "Todos have been modified successfully."))
        view.apply(assistant(f"m{number}", {"type": "text", "text": f"Step {number}."}))
        shown.append(visible_text("".join(b["text/html"] for b in view.bundles())))
    assert "0 of 3 done" in shown[0] and "☐ Read the data" in shown[0]
    assert "1 of 3 done" in shown[1] and "☑ Read the data" in shown[1] and "◐ Drawing the chart" in shown[1]
    assert "3 of 3 done" in shown[2] and "☐" not in shown[2]
    final = "".join(b["text/html"] for b in view.bundles())
    assert final.count("claude-todos") == 1  # one checklist, not a card per call
    assert final.index("claude-todos") < final.index("Step 1.")  # in place: where the first call was
    plain = "\n".join(b["text/plain"] for b in view.bundles())
    assert "[x] Save it" in plain and plain.count("[To-do]") == 1


def test_a_refused_todo_call_changes_nothing() -> None:
    view = TurnView()
    view.apply(
        assistant(
            "m1",
            {"type": "tool_use", "id": "t1", "name": "TodoWrite", "input": _todos("pending", "pending", "pending")},
        )
    )
    view.apply(
        tool_result("t1", "<tool_use_error>Error: No such tool available: TodoWrite.</tool_use_error>", is_error=True)
    )
    html = "".join(b["text/html"] for b in view.bundles())
    assert "claude-todos" not in html and "No such tool available" in visible_text(html)


def test_checklist_text_is_inert() -> None:
    view = TurnView()
    payload = "<img src=x onerror=alert(1)>"
    todo = {"todos": [{"content": payload, "status": "in_progress", "activeForm": payload}]}
    view.apply(assistant("m1", {"type": "tool_use", "id": "t1", "name": "TodoWrite", "input": todo}))
    view.apply(tool_result("t1", "ok"))
    for bundle in view.bundles():
        audit(bundle["text/html"], fragment=False)


@pytest.mark.anyio
@pytest.mark.real_cli
async def test_task_tools_keep_one_checklist(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    """TodoWrite is off in CLI 2.1.337; with CLAUDE_CODE_ENABLE_TODO_TOOLS=1 it offers TaskCreate/TaskUpdate."""
    fake_api.enqueue(
        Reply((ToolUse("TaskCreate", {"subject": "Read the data", "description": "csv", "activeForm": "Reading"}),)),
        Reply((ToolUse("TaskCreate", {"subject": "Draw the chart", "description": "png"}),)),
        Reply((ToolUse("TaskUpdate", {"taskId": "1", "status": "completed"}),)),
        Reply((ToolUse("TaskUpdate", {"taskId": "2", "status": "in_progress", "activeForm": "Drawing"}),)),
        Reply.text("Working on it."),
    )
    view = TurnView()
    options = make_options(env={"CLAUDE_CODE_ENABLE_TODO_TOOLS": "1"})
    async with await Session.spawn(options) as session:
        await session.send_message("make the chart")
        while (event := await session.next_event()) is not None:
            if isinstance(event, PermissionRequest):
                await session.allow(event)
            view.apply(event)
    html = "".join(b["text/html"] for b in view.bundles())
    shown = visible_text(html)
    assert html.count("claude-todos") == 1, shown
    assert "☑ Read the data" in shown and "◐ Drawing" in shown and "1 of 2 done" in shown
