"""Careless users and a misbehaving CLI: every cell gets a reply, and the conversation survives."""

from __future__ import annotations

import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.session import find_cli
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, user_text

from .conftest import _running_kernel
from .test_kernel import _cli_pid

pytestmark = pytest.mark.real_cli


@pytest.fixture
def slow_starting_kernel(kernelspec_path: str, cli_env: dict[str, str], workdir: Path, tmp_path: Path) -> Iterator[Any]:
    """A Claude kernel whose CLI takes two seconds to start: time enough to interrupt a start."""
    wrapper = tmp_path / "slow-claude"
    wrapper.write_text(f'#!/bin/sh\nsleep 2\nexec "{find_cli()}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    yield from _running_kernel("claude", {**cli_env, "CLAUDE_KERNEL_CLI": str(wrapper)}, workdir)


def test_interrupting_a_cli_restart_keeps_the_kernel_and_the_conversation(
    slow_starting_kernel: Any, fake_api: FakeMessagesAPI
) -> None:
    kernel = slow_starting_kernel
    fake_api.enqueue(Reply.text("Noted: OTTER."), Reply.text("OTTER."))
    assert kernel.run("Remember OTTER", timeout=90).reply["status"] == "ok"
    for magic in ("%new", "%permissions allow Read"):
        run = kernel.start(f"{magic}\nhello")
        time.sleep(0.7)  # inside the restart: the old CLI is closed, the new one is starting
        kernel.manager.interrupt_kernel()
        kernel.pump(run, timeout=30)
        assert run.reply["status"] == "error" and run.reply["ename"] == "KeyboardInterrupt", run.outputs
        assert kernel.manager.is_alive()
    after = kernel.run("Which animal?", timeout=90)
    assert after.reply["status"] == "ok", after.outputs
    assert "Remember OTTER" in str(fake_api.requests[-1]["messages"])  # the same conversation


def test_interrupting_the_first_cell_while_the_cli_starts(slow_starting_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    kernel = slow_starting_kernel
    run = kernel.start("hello")
    time.sleep(0.3)
    kernel.manager.interrupt_kernel()
    kernel.pump(run, timeout=30)
    assert run.reply["ename"] == "KeyboardInterrupt"
    assert kernel.manager.is_alive()
    fake_api.enqueue(Reply.text("Here now."))
    after = kernel.run("hello again", timeout=90)
    assert after.reply["status"] == "ok" and "Here now." in after.plain()


def test_sigint_between_cells_is_harmless(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.text("Fine."))
    claude_kernel.manager.interrupt_kernel()
    time.sleep(0.3)
    assert claude_kernel.manager.is_alive()
    assert claude_kernel.run("still there?").reply["status"] == "ok"


@pytest.mark.parametrize(
    "declaration",
    [
        "%tool t3 \"desc\" '[1,2]'",
        '%tool t3 "desc" [1,2]',
        '%tool t3 "desc" {"type": "array"}',
        '%tool t3 "desc" {"properties": {"x": {"type": "bogus"}}}',
        '%tool bad/name "desc"',
    ],
)
def test_a_bad_tool_schema_is_rejected_and_changes_nothing(
    claude_kernel: Any, fake_api: FakeMessagesAPI, declaration: str
) -> None:
    rejected = claude_kernel.run(declaration)
    assert rejected.reply["status"] == "error" and rejected.reply["ename"] == "MagicError"
    fake_api.enqueue(Reply.text("All good."))
    after = claude_kernel.run("hello")
    assert after.reply["status"] == "ok" and "All good." in after.plain()
    tools = [tool["name"] for tool in fake_api.requests[-1]["tools"]]
    assert "mcp__notebook__ask_user" in tools and not any("t3" in name for name in tools)


def test_a_quoted_json_schema_is_accepted(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    declared = claude_kernel.run('%tool t1 "desc" {"type":"object","properties":{"q":{"type":"string"}}}')
    assert declared.reply["status"] == "ok", declared.outputs
    fake_api.enqueue(Reply.text("ok"))
    claude_kernel.run("hello")
    schema = next(t for t in fake_api.requests[-1]["tools"] if t["name"] == "mcp__notebook__t1")["input_schema"]
    assert schema["properties"] == {"q": {"type": "string"}}


@pytest.mark.parametrize(
    "cell",
    ['%permissions "unclosed', "%permissions headless maybe", "%resume", "%cwd /no/such/folder", "%nosuchmagic"],
)
def test_every_magic_error_gets_a_reply(claude_kernel: Any, cell: str) -> None:
    run = claude_kernel.run(cell, timeout=30)
    assert run.reply["status"] == "error" and run.reply["ename"] == "MagicError"
    assert run.reply["evalue"]


def test_a_working_directory_deleted_later_is_reported(
    claude_kernel: Any, fake_api: FakeMessagesAPI, tmp_path: Path
) -> None:
    folder = tmp_path / "gone-soon"
    folder.mkdir()
    assert claude_kernel.run(f"%cwd {folder}").reply["status"] == "ok"
    folder.rmdir()
    run = claude_kernel.run("%permissions allow Read", timeout=30)
    assert run.reply["status"] == "error" and "no longer exists" in run.reply["evalue"]
    assert claude_kernel.run(f"%cwd {tmp_path}").reply["status"] == "ok"
    fake_api.enqueue(Reply.text("Back."))
    assert claude_kernel.run("hello").reply["status"] == "ok"


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "12345678-1234-1234-1234-123456789012"])
def test_resume_of_a_bad_id_keeps_the_conversation(claude_kernel: Any, fake_api: FakeMessagesAPI, bad_id: str) -> None:
    fake_api.enqueue(Reply.text("Noted: MOOSE."), Reply.text("MOOSE."))
    claude_kernel.run("Remember MOOSE")
    session = claude_kernel.run("%session")
    run = claude_kernel.run(f"%resume {bad_id}", timeout=30)
    assert run.reply["status"] == "error" and "still in session" in run.reply["evalue"]
    assert run.reply["evalue"].split("still in session ")[1].split()[0] in session.streamed()
    after = claude_kernel.run("Which animal?")
    assert after.reply["status"] == "ok"
    assert "Remember MOOSE" in str(fake_api.requests[-1]["messages"])


def test_a_panel_left_waiting_by_a_dead_cli_is_cancelled(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.tool("Bash", {"command": "touch never.txt", "description": "Create"}))
    run = claude_kernel.start("make a file")
    allow = claude_kernel.wait_for_button(run, "Allow")
    os.kill(_cli_pid(claude_kernel.manager.provisioner.process.pid), signal.SIGKILL)
    claude_kernel.pump(run, timeout=30)
    assert run.reply["ename"] == "ProcessDiedError"
    updates = [str(m["content"]["data"]) for m in run.outputs if m["msg_type"] == "comm_msg"]
    assert any("cancelled" in update for update in updates)
    claude_kernel.click(allow)  # a stale click on the dead panel
    fake_api.enqueue(Reply.text("Resumed."))
    after = claude_kernel.run("hello")
    assert after.reply["status"] == "ok"
    late = [str(m["content"]["data"]) for m in after.outputs if m["msg_type"] == "comm_msg"]
    assert not any("allowed" in update for update in late)
    assert user_text(fake_api.requests[-1]) == "hello"


def test_not_logged_in_says_what_to_do_in_a_notebook(
    kernelspec_path: str, cli_env: dict[str, str], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    without_key = {name: value for name, value in cli_env.items() if name != "ANTHROPIC_API_KEY"}
    for kernel in _running_kernel("claude", without_key, workdir):
        run = kernel.run("hello?")
        assert run.reply["ename"] == "ClaudeError"
        assert "Not logged in" in run.reply["evalue"]
        assert "ANTHROPIC_API_KEY" in run.reply["evalue"] and "kernelspec" in run.reply["evalue"]
        assert "Not logged in" not in run.plain()  # said once, in the error
