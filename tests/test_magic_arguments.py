"""Magic arguments a careless user types: odd but valid forms work, bad ones are refused and change nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, user_text

pytestmark = pytest.mark.real_cli


def test_resume_takes_every_spelling_of_a_session_id(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.text("Noted: HERON."))
    assert claude_kernel.run("Remember HERON").reply["status"] == "ok"
    match = re.search(r"session id: (\S+)", claude_kernel.run("%session").streamed())
    assert match is not None
    session_id = match.group(1)
    for spelling in (session_id.upper(), f"{{{session_id}}}", f"urn:uuid:{session_id}", session_id.replace("-", "")):
        resumed = claude_kernel.run(f"%resume {spelling}", timeout=30)
        assert resumed.reply["status"] == "ok", resumed.outputs
        assert session_id in resumed.streamed()  # the id as the CLI knows it
        fake_api.enqueue(Reply.text("HERON."))
        after = claude_kernel.run(f"Which bird? ({spelling})")
        assert after.reply["status"] == "ok", after.outputs
        assert "Remember HERON" in str(fake_api.requests[-1]["messages"])


@pytest.mark.parametrize(
    "cell",
    ["%budget inf", "%budget 1e309", "%budget nan", '%permissions allow ""', "%permissions allow Read ''"],
)
def test_bad_arguments_are_refused_and_change_nothing(claude_kernel: Any, fake_api: FakeMessagesAPI, cell: str) -> None:
    refused = claude_kernel.run(cell, timeout=30)
    assert refused.reply["status"] == "error" and refused.reply["ename"] == "MagicError", refused.outputs
    shown = claude_kernel.run("%permissions").streamed()
    assert "allowed tools: none" in shown
    assert "no budget" in claude_kernel.run("%budget").streamed()
    fake_api.enqueue(Reply.text("Fine."))
    after = claude_kernel.run("hello")
    assert after.reply["status"] == "ok" and user_text(fake_api.requests[-1]) == "hello"


def test_a_quoted_working_directory(claude_kernel: Any, tmp_path: Path) -> None:
    folder = tmp_path / "my notes"
    folder.mkdir()
    for quoted in (f'"{folder}"', f"'{folder}'", str(folder)):
        run = claude_kernel.run(f"%cwd {quoted}", timeout=30)
        assert run.reply["status"] == "ok", run.outputs
        assert f"working directory: {folder}" in run.streamed()
    two = claude_kernel.run(f'%cwd "{folder}" "{tmp_path}"', timeout=30)
    assert two.reply["ename"] == "MagicError"


def test_a_tool_name_the_api_would_refuse_is_refused_here(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    # The API takes tool names of at most 64 characters, and the CLI sends mcp__notebook__NAME as is:
    # a longer one would fail every later turn.
    refused = claude_kernel.run(f'%tool {"x" * 50} "desc"', timeout=30)
    assert refused.reply["ename"] == "MagicError" and "at most 49" in refused.reply["evalue"]
    assert claude_kernel.run(f'%tool {"y" * 49} "desc"', timeout=30).reply["status"] == "ok"
    fake_api.enqueue(Reply.text("Fine."))
    assert claude_kernel.run("hello").reply["status"] == "ok"
    names = [tool["name"] for tool in fake_api.requests[-1]["tools"]]
    assert f"mcp__notebook__{'y' * 49}" in names and max(len(name) for name in names) <= 64
