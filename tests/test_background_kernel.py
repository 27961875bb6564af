"""The Claude kernel and the turns the CLI takes between cells (CLI >= 2.1.332), real CLI.

A cell delegates to an agent that reports after the cell has ended: the report and the CLI's own
turn about it land in that cell (its displays are updated after it ended), and every later cell
answers its own message.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.testing.agents import AGENT_TASK, DelegatingModel
from claude_kernel.testing.fake_api import (
    FakeMessagesAPI,
    Reply,
    first_user_text,
    is_notification,
    tool_results,
    user_text,
)

from .kernel_client import Execution
from .test_notebook_conversation import remembered

pytestmark = pytest.mark.real_cli

REPORTED = "The agent reported: The answer is 42."


def reported(execution: Execution) -> bool:
    return REPORTED in execution.text() and "session $" in execution.text()


def test_an_agents_report_lands_in_its_cell_and_each_cell_answers_itself(
    claude_kernel: Any, fake_api: FakeMessagesAPI
) -> None:
    model = DelegatingModel(hold=True)
    fake_api.fallback = model
    first = claude_kernel.run("delegate")
    assert first.reply is not None and first.reply["status"] == "ok"
    assert "launched" in first.text() and "Left running by this cell" in first.text()
    assert "internal metadata" not in first.text() and "agentId" not in first.text()
    assert REPORTED not in first.text()
    model.release.set()  # the agent reports now, with no cell running
    claude_kernel.pump(first, until=reported)
    assert "completed" in first.text()
    answers = [claude_kernel.run(word) for word in ("one", "two", "three")]
    for word, run in zip(("one", "two", "three"), answers, strict=True):
        assert f"You said: {word}" in run.text()
        assert REPORTED not in run.text() and "on its own" not in run.text()
    assert sum(is_notification(request) for request in fake_api.requests) == 1
    history = claude_kernel.run("%history").streamed()
    for word in ("delegate", "one", "two", "three"):
        assert word in history


def test_a_background_agents_approval_is_answered_after_its_cell_ended(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    model = DelegatingModel(hold=True, agent_command="touch made-by-agent")
    fake_api.fallback = model
    first = claude_kernel.run("delegate")
    assert first.done
    model.release.set()
    allow = claude_kernel.wait_for_button(first, "Allow")
    claude_kernel.click(allow)
    claude_kernel.pump(first, until=reported)
    assert (workdir / "made-by-agent").exists()
    assert "touch made-by-agent" in first.text()
    later = claude_kernel.run("after")
    assert "You said: after" in later.text() and REPORTED not in later.text()


def test_headless_background_approval_follows_the_policy_and_nothing_hangs(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    fake_api.fallback = DelegatingModel(agent_command="touch not-made")
    first = claude_kernel.run("delegate", allow_stdin=False)
    assert first.reply is not None and first.reply["status"] == "ok"
    for word in ("next", "last"):
        run = claude_kernel.run(word, allow_stdin=False)
        assert run.reply is not None and run.reply["status"] == "ok"
        assert f"You said: {word}" in run.text()
    assert not (workdir / "not-made").exists()


def test_the_magic_shows_an_agents_report_in_its_cell(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    model = DelegatingModel(hold=True)
    fake_api.fallback = model
    first = python_kernel.run("%%claude\ndelegate")
    assert first.reply is not None and first.reply["status"] == "ok"
    assert "Left running by this cell" in first.text()
    model.release.set()
    python_kernel.pump(first, until=reported)
    later = python_kernel.run("%%claude\none")
    assert "You said: one" in later.text() and REPORTED not in later.text()


def test_the_magics_background_agent_reads_the_namespace_after_its_cell_ended(
    python_kernel: Any, fake_api: FakeMessagesAPI
) -> None:
    """Background questions go to the magic's own responder, which answers the namespace tools."""
    python_kernel.run("numbers = list(range(10))")
    delegating = DelegatingModel(hold=True)

    def model(request: dict[str, Any]) -> Reply:
        if AGENT_TASK in first_user_text(request) and not tool_results(request):
            delegating.release.wait(60)
            return Reply.tool("mcp__notebook__list_variables", {})
        return delegating(request)

    fake_api.fallback = model
    first = python_kernel.run("%%claude --no-context\ndelegate")
    assert "Left running by this cell" in first.text()
    delegating.release.set()  # the agent lists the variables now, with no cell running
    python_kernel.pump(first, until=reported)
    listed = [
        str(result["content"])
        for request in fake_api.requests
        if AGENT_TASK in first_user_text(request)
        for result in tool_results(request)
    ]
    assert len(listed) == 1 and "numbers: list (len 10)" in listed[0]


def test_session_lists_background_work_and_stop_stops_it(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    model = DelegatingModel(hold=True)
    fake_api.fallback = model
    first = claude_kernel.run("delegate")
    listed = claude_kernel.run("%session").streamed()
    assert "running in the background" in listed and "Agent \u201cfind the answer\u201d" in listed
    stopped = claude_kernel.run("%stop")
    assert "stopped Agent \u201cfind the answer\u201d" in stopped.streamed()
    claude_kernel.pump(first, until=lambda e: "stopped" in e.text() and "session $" in e.text().split("stopped")[-1])
    assert "nothing is running in the background" in claude_kernel.run("%stop").streamed()
    assert "running in the background" not in claude_kernel.run("%session").streamed()
    model.release.set()


@pytest.mark.timeout(300)  # the CLI rounds a wake-up to the minute: 60 to 120 s, and the pump waits 180
def test_a_wake_up_lands_in_the_cell_that_scheduled_it(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    def model(request: dict[str, Any]) -> Reply:
        text = user_text(request)
        if text == "check back later" and not tool_results(request):
            return Reply.tool("ScheduleWakeup", {"delaySeconds": 60, "reason": "to check", "prompt": "check now"})
        if text == "check now":
            return Reply.text("Woke up and checked.")
        return Reply.text("Scheduled." if tool_results(request) else f"You said: {text}")

    fake_api.fallback = model
    first = claude_kernel.run("check back later")
    assert "scheduled a wake-up" in first.text()
    between = claude_kernel.run("meanwhile")
    assert "You said: meanwhile" in between.text()
    # The CLI clamps a wake-up to at least 60 s (and rounds it to the minute).
    claude_kernel.pump(first, until=lambda e: "Woke up and checked." in e.text(), timeout=180)
    assert "Woke up" not in between.text()


def test_a_background_approval_asked_while_another_cell_runs_is_shown_there(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    model = DelegatingModel(hold=True, agent_command="touch asked-meanwhile")
    answered = threading.Event()

    def slow_or_model(request: dict[str, Any]) -> Reply:
        if user_text(request) == "slow" and not tool_results(request):
            answered.wait(60)  # the second cell runs until the agent's question is answered
            return Reply.text("A slow answer that takes its time to arrive.")
        return model(request)

    fake_api.fallback = slow_or_model
    first = claude_kernel.run("delegate")
    second = claude_kernel.start("slow")
    claude_kernel.pump(second, until=lambda e: "waiting for the model" in e.text())
    model.release.set()
    allow = claude_kernel.wait_for_button(second, "Allow")
    assert "running in the background, asks" in second.text()
    claude_kernel.click(allow)
    answered.set()
    claude_kernel.pump(second)
    assert "A slow answer that takes its time to arrive." in second.text()
    claude_kernel.pump(first, until=reported)
    assert (workdir / "asked-meanwhile").exists()


def test_the_stop_button_between_cells_stops_the_clis_own_turn(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    model = DelegatingModel(hold=True, notification_delay=0.3)
    fake_api.fallback = model
    first = claude_kernel.run("delegate")
    model.release.set()
    claude_kernel.pump(first, until=lambda e: "The agent rep" in e.text())
    claude_kernel.manager.interrupt_kernel()
    claude_kernel.pump(first, until=lambda e: "Interrupted." in e.text())
    assert REPORTED not in first.text()
    after = claude_kernel.run("after")
    assert after.reply is not None and after.reply["status"] == "ok"
    # The CLI tells the model of the interruption before the next message, as after any other.
    assert "[Request interrupted by user]\nafter" in after.text()


def test_nbclient_finishes_with_each_cells_own_reply_while_an_agent_still_works(
    kernelspec_path: str, cli_env: dict[str, str], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(text) for text in ("delegate", "one", "delegate")]
    )
    model = DelegatingModel(hold=True)
    with FakeMessagesAPI(fallback=model) as api:
        for name, value in {**cli_env, **api.environment()}.items():
            monkeypatch.setenv(name, value)
        try:
            NotebookClient(
                notebook, timeout=120, kernel_name="claude", resources={"metadata": {"path": str(workdir)}}
            ).execute()
        finally:
            model.release.set()
    shown = ["\n".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs) for cell in notebook.cells]
    assert "launched" in shown[0] and "Left running by this cell" in shown[0]
    assert "You said: one" in shown[1] and REPORTED not in shown[1]
    assert "launched" in shown[2] and REPORTED not in shown[2]


def test_rewinds_work_with_the_clis_own_turns_between_cells(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    model = DelegatingModel(hold=True)
    fake_api.fallback = model
    first = claude_kernel.run("delegate", cell_id="c1")
    model.release.set()
    claude_kernel.pump(first, until=reported)
    assert "You said: one" in claude_kernel.run("one", cell_id="c2").text()
    assert "You said: two" in claude_kernel.run("two", cell_id="c3").text()
    rerun = claude_kernel.run("uno", cell_id="c2")  # re-running the second cell drops it and the third
    assert rerun.reply is not None and rerun.reply["status"] == "ok" and "You said: uno" in rerun.text()
    request = fake_api.requests[-1]
    assert remembered(request) == ["delegate", "uno"]
    # The agent's report, which came before the second cell, is still part of the conversation.
    assert "The agent reported" in json.dumps(request["messages"])
    history = claude_kernel.run("%history").streamed()
    assert "uno" in history and "two" not in history.split("dropped")[0]


def test_a_background_commands_end_lands_in_its_cell(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    def model(request: dict[str, Any]) -> Reply:
        if is_notification(request):
            return Reply.text("The command has finished.")
        if user_text(request) == "in the background" and not tool_results(request):
            command = {"command": "sleep 1; touch bg-done", "description": "wait", "run_in_background": True}
            return Reply.tool("Bash", command)
        return Reply.text("Started." if tool_results(request) else f"You said: {user_text(request)}")

    fake_api.fallback = model
    first = claude_kernel.start("in the background")
    claude_kernel.click(claude_kernel.wait_for_button(first, "Allow"))
    claude_kernel.pump(first)
    assert "Left running by this cell" in first.text() and "sleep 1; touch bg-done" in first.text()
    claude_kernel.pump(first, until=lambda e: "The command has finished." in e.text() and "session $" in e.text())
    assert (workdir / "bg-done").exists()
