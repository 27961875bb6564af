"""A folder is trusted before its project settings run commands (real CLI, kernel by kernelspec).

The folder ships an ``.mcp.json`` server and a ``UserPromptSubmit`` hook, each leaving a marker
file when the CLI runs it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply
from claude_kernel.trust import project_commands

from .conftest import _running_kernel

pytestmark = pytest.mark.real_cli

SERVER = """
import json, os, sys
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "mcp-started"), "a").close()
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg:
        continue
    if msg["method"] == "initialize":
        result = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "probe", "version": "1"}}
    else:
        result = {"tools": []} if msg["method"] == "tools/list" else {}
    print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)
"""


@pytest.fixture
def risky_folder(workdir: Path) -> Path:
    (workdir / "server.py").write_text(SERVER)
    server = {"command": sys.executable, "args": [str(workdir / "server.py")]}
    (workdir / ".mcp.json").write_text(json.dumps({"mcpServers": {"probe": server}}))
    (workdir / ".claude").mkdir()
    hook = {"type": "command", "command": f"touch {workdir / 'hook-ran'}"}
    (workdir / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"UserPromptSubmit": [{"hooks": [hook]}]}}))
    return workdir


@pytest.fixture
def env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**cli_env, "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data")}


@pytest.fixture
def kernel(kernelspec_path: str, env: dict[str, str], risky_folder: Path) -> Iterator[Any]:
    yield from _running_kernel("claude", env, risky_folder)


def ran(folder: Path) -> dict[str, bool]:
    return {"server": (folder / "mcp-started").exists(), "hook": (folder / "hook-ran").exists()}


def test_what_would_run_is_listed(risky_folder: Path) -> None:
    commands = project_commands(str(risky_folder))
    assert commands is not None and len(commands.items) == 2
    assert "MCP server `probe`" in commands.items[0] and "UserPromptSubmit hook" in commands.items[1]
    assert project_commands(str(risky_folder / ".claude")) is None


def test_an_untrusted_folder_runs_nothing_and_the_answer_is_remembered(
    kernel: Any, fake_api: FakeMessagesAPI, risky_folder: Path
) -> None:
    fake_api.enqueue(Reply.text("Hello."), Reply.text("Again."))
    asked = kernel.start("hello", cell_id="c1")
    kernel.click(kernel.wait_for_button(asked, "Keep its settings off"))
    kernel.pump(asked)
    assert asked.reply is not None and asked.reply["status"] == "ok", asked.outputs
    assert "Trust this folder?" in asked.plain() and "not trusted" in asked.plain()
    assert ran(risky_folder) == {"server": False, "hook": False}
    kernel.manager.restart_kernel(now=False)
    kernel.client.wait_for_ready(timeout=60)
    again = kernel.run("again", cell_id="c2")
    assert again.reply is not None and again.reply["status"] == "ok", again.outputs
    assert "Trust this folder?" not in again.plain()  # asked once
    assert ran(risky_folder) == {"server": False, "hook": False}
    # The kernel's own tools come by flag, not by settings: they work in an untrusted folder.
    fake_api.enqueue(Reply.tool("mcp__notebook__ask_user", {"question": "Which?"}), Reply.text("Noted."))
    asked_back = kernel.submit_answer(kernel.start("ask me", cell_id="c3"), "this one")
    assert asked_back.reply is not None and asked_back.reply["status"] == "ok", asked_back.outputs
    assert "this one" in json.dumps(fake_api.requests[-1]["messages"])


def test_a_trusted_folder_runs_its_settings(kernel: Any, fake_api: FakeMessagesAPI, risky_folder: Path) -> None:
    fake_api.enqueue(Reply.text("Hello."))
    asked = kernel.start("hello", cell_id="c1")
    kernel.click(kernel.wait_for_button(asked, "Trust this folder"))
    kernel.pump(asked)
    assert asked.reply is not None and asked.reply["status"] == "ok", asked.outputs
    assert ran(risky_folder) == {"server": True, "hook": True}


@pytest.mark.parametrize("opt_in", [False, True], ids=["headless", "headless opted in"])
def test_a_headless_run_keeps_project_settings_off_unless_opted_in(
    opt_in: bool,
    kernelspec_path: str,
    env: dict[str, str],
    fake_api: FakeMessagesAPI,
    risky_folder: Path,
) -> None:
    extra = {"CLAUDE_KERNEL_TRUST_PROJECT": "1"} if opt_in else {}
    for headless in _running_kernel("claude", {**env, **extra}, risky_folder):
        fake_api.enqueue(Reply.text("Hello."))
        run = headless.run("hello", allow_stdin=False)
        assert run.reply is not None and run.reply["status"] == "ok", run.outputs
        assert ran(risky_folder) == {"server": opt_in, "hook": opt_in}
        assert ("stay off" in run.plain()) != opt_in


def test_the_magic_asks_before_its_first_turn_too(
    env: dict[str, str], fake_api: FakeMessagesAPI, risky_folder: Path
) -> None:
    """``%%claude`` asks through the same preamble as the kernel (``Conversation.before_turn``)."""
    for python in _running_kernel("python3", env, risky_folder):
        assert python.run("%load_ext claude_kernel").reply["status"] == "ok"
        fake_api.enqueue(Reply.text("Hello."))
        asked = python.start("%%claude\nhello", cell_id="c1")
        python.click(python.wait_for_button(asked, "Trust this folder"))
        python.pump(asked)
        assert asked.reply is not None and asked.reply["status"] == "ok", asked.outputs
        assert "Hello." in asked.text()
        assert ran(risky_folder) == {"server": True, "hook": True}
