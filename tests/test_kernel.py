"""The Claude kernel through its kernelspec: cells as turns on the real CLI and the fake API."""

from __future__ import annotations

import base64
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, Text, Thinking, tool_results, user_text

from .kernel_client import WIDGET_VIEW, visible_text

pytestmark = pytest.mark.real_cli


def test_kernel_info_describes_prose_and_no_debugger(claude_kernel: Any) -> None:
    claude_kernel.client.kernel_info()
    reply = claude_kernel.client.get_shell_msg(timeout=10)["content"]
    assert reply["language_info"]["name"] == "markdown"
    assert "debugger" not in reply.get("supported_features", [])
    assert reply["implementation"] == "claude-kernel"


def test_cell_streams_rendered_markdown_and_ends_with_a_footer(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    answer = "Here is **bold** news, streamed in pieces. " * 8
    fake_api.enqueue(Reply((Thinking("Considering."), Text(answer, chunk=6)), delay=0.01))
    run = claude_kernel.run("Tell me the news")
    assert run.reply is not None and run.reply["status"] == "ok"
    final = run.text()
    assert answer.replace("**", "").strip() in final and "Thinking" in final
    assert "<strong>bold</strong>" in run.html()
    assert all(set(bundle) == {"text/html", "text/plain"} for bundle in run.displays().values())
    assert "in /" in final and "session" in final  # the footer: tokens and costs
    assert run.count("update_display_data") >= 2
    # Throttled: far fewer updates than the ~60 deltas.
    assert run.count("update_display_data") < 30
    plain = next(iter(run.displays().values()))["text/plain"]
    assert answer.strip() in plain
    assert user_text(fake_api.requests[0]) == "Tell me the news"


def test_two_cells_are_one_conversation(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.text("Noted: the code word is HERON."), Reply.text("HERON."))
    claude_kernel.run("Remember HERON")
    run = claude_kernel.run("What was it?")
    assert "HERON." in run.text()
    assert "Remember HERON" in str(fake_api.requests[-1]["messages"])


def test_silent_requests_never_reach_the_model(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    msg_id = claude_kernel.client.execute("import sys; print(sys.path)", silent=True)
    reply = claude_kernel.client.get_shell_msg(timeout=30)
    while reply["parent_header"]["msg_id"] != msg_id:  # a late kernel_info reply from wait_for_ready
        reply = claude_kernel.client.get_shell_msg(timeout=30)
    assert reply["content"]["status"] == "ok"
    assert fake_api.requests == []


def test_model_html_is_escaped(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.text('Hi <script>alert(1)</script><img src=x onerror="alert(2)"> costs $5 and $6'))
    run = claude_kernel.run("say something nasty")
    assert "<script" not in run.html() and "<img" not in run.html()
    assert '<script>alert(1)</script><img src=x onerror="alert(2)"> costs $5 and $6' in run.text()
    assert "mathjax_ignore" in run.html()  # the prices are not typeset


def _click_on_bash_prompt(
    claude_kernel: Any, fake_api: FakeMessagesAPI, command: str, button: str, follow_up: str
) -> Any:
    """A turn in which the model asks to run ``command``; the user clicks ``button``."""
    fake_api.enqueue(Reply.tool("Bash", {"command": command, "description": "Create"}), Reply.text(follow_up))
    run = claude_kernel.start("make a file")
    claude_kernel.click(claude_kernel.wait_for_button(run, button))
    return claude_kernel.pump(run)


def test_permission_prompt_allowed_by_click(claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path) -> None:
    run = _click_on_bash_prompt(claude_kernel, fake_api, "touch clicked.txt", "Allow", "Created it.")
    assert run.reply is not None and run.reply["status"] == "ok"
    assert (workdir / "clicked.txt").exists()
    assert "Created it." in run.text() and "allowed" in run.text()
    # The panel sits under its tool card, and the answer continues in a display below the panel.
    shown = [m["content"]["data"] for m in run.outputs if m["msg_type"] == "display_data"]
    kinds = ["widget" if WIDGET_VIEW in data else "html" for data in shown]
    assert kinds == ["html", "widget", "html"]
    first, last = (
        visible_text(run.displays()[m["content"]["transient"]["display_id"]]["text/html"])
        for m in run.outputs
        if m["msg_type"] == "display_data" and WIDGET_VIEW not in m["content"]["data"]
    )
    assert "touch clicked.txt" in first and "allowed" in first and "Created it." not in first
    assert "Created it." in last and "session" in last


def test_permission_prompt_denied_by_click(claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path) -> None:
    run = _click_on_bash_prompt(claude_kernel, fake_api, "touch nope.txt", "Deny", "Fine, I did not.")
    assert not (workdir / "nope.txt").exists()
    assert tool_results(fake_api.requests[1])[0]["is_error"]
    assert "denied" in run.text()


def test_ask_user_answered_in_a_widget(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.tool("mcp__notebook__ask_user", {"question": "Which dataset?"}), Reply.text("Using iris."))
    run = claude_kernel.submit_answer(claude_kernel.start("ask me"), "iris please")
    assert "iris please" in str(tool_results(fake_api.requests[1])[0]["content"])
    assert "Using iris." in run.text()


def test_headless_run_denies_and_says_so(claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path) -> None:
    fake_api.enqueue(
        Reply.tool("Bash", {"command": "touch headless.txt", "description": "Create"}), Reply.text("Could not.")
    )
    run = claude_kernel.run("make a file", allow_stdin=False)
    assert not (workdir / "headless.txt").exists()
    assert "headless" in str(tool_results(fake_api.requests[1])[0]["content"])
    assert "headless" in run.text()


@pytest.mark.parametrize("mode", ["signal", "message"])
def test_interrupt_keeps_the_conversation(claude_kernel: Any, fake_api: FakeMessagesAPI, mode: str) -> None:
    fake_api.enqueue(Reply.text("word " * 400, delay=0.02, chunk=5), Reply.text("Next answer."))
    run = claude_kernel.start("talk a lot")
    claude_kernel.pump(run, until=lambda e: "word word" in e.text())
    if mode == "signal":
        claude_kernel.manager.interrupt_kernel()  # SIGINT to the kernel's process group, as Lab does
    else:
        msg = claude_kernel.client.session.msg("interrupt_request", {})
        claude_kernel.client.control_channel.send(msg)
    started = time.monotonic()
    claude_kernel.pump(run)
    assert time.monotonic() - started < 5
    assert run.reply is not None and run.reply["status"] == "error" and run.reply["ename"] == "KeyboardInterrupt"
    assert "word word" in run.text() and "Interrupted" in run.text()
    after = claude_kernel.run("go on")
    assert after.reply is not None and after.reply["status"] == "ok" and "Next answer." in after.text()


def test_magics(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    run = claude_kernel.run("%help")
    assert "%resume" in "".join(m["content"].get("text", "") for m in run.outputs)
    claude_kernel.run("hello")
    session = claude_kernel.run("%session")
    text = "".join(m["content"].get("text", "") for m in session.outputs)
    assert "session id:" in text
    bad = claude_kernel.run("%nonsense")
    assert bad.reply is not None and bad.reply["ename"] == "MagicError"


def test_demo_notebook_runs_headless_with_nbclient(
    kernelspec_path: str, cli_env: dict[str, str], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nbclient sends allow_stdin=False: prompts follow the headless policy and nothing hangs."""
    import nbformat
    from nbclient import NotebookClient

    from claude_kernel.demo import NOTEBOOKS, scripted_model
    from claude_kernel.testing.fake_api import FakeMessagesAPI

    notebook = nbformat.read(NOTEBOOKS / "demo.ipynb", as_version=4)
    with FakeMessagesAPI(fallback=scripted_model) as api:
        for name, value in {**cli_env, **api.environment()}.items():
            monkeypatch.setenv(name, value)  # the kernel, and so the CLI, inherit them
        NotebookClient(
            notebook, timeout=120, kernel_name="claude", resources={"metadata": {"path": str(workdir)}}
        ).execute()
    outputs = [cell.outputs for cell in notebook.cells if cell.cell_type == "code"]
    hello = outputs[0][0]["data"]
    assert "Hello!" in hello["text/html"] and "Hello!" in hello["text/plain"]
    assert "denied" in outputs[1][0]["data"]["text/html"]
    assert not (workdir / "demo-file.txt").exists()
    assert "session id:" in outputs[3][0]["text"]


def test_restart_then_resume_continues_the_conversation(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.text("Noted: OTTER."), Reply.text("It was OTTER."))
    claude_kernel.run("Remember OTTER")
    text = "".join(m["content"].get("text", "") for m in claude_kernel.run("%session").outputs)
    session_id = text.split("session id: ")[1].split()[0]
    claude_kernel.manager.restart_kernel(now=False)
    claude_kernel.client.wait_for_ready(timeout=60)
    run = claude_kernel.run(f"%resume {session_id}\nWhat was the animal?")
    assert run.reply is not None and run.reply["status"] == "ok"
    assert "It was OTTER." in run.text()
    assert "Remember OTTER" in str(fake_api.requests[-1]["messages"])


def test_declared_tool_is_answered_in_a_widget(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    declared = claude_kernel.run('%tool pick_colour "Ask the user to pick a colour"')
    assert declared.reply is not None and declared.reply["status"] == "ok"
    fake_api.enqueue(Reply.tool("mcp__notebook__pick_colour", {"hint": "warm"}), Reply.text("Red it is."))
    run = claude_kernel.submit_answer(claude_kernel.start("choose a colour with the tool"), "red")
    sent = tool_results(fake_api.requests[-1])[0]
    assert "red" in str(sent["content"]) and not sent.get("is_error")
    assert "Red it is." in run.text()


def test_model_cwd_and_permission_magics(claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path) -> None:
    sub = workdir / "project"
    sub.mkdir()
    setup = claude_kernel.run(f"%model sonnet\n%cwd {sub}\n%permissions allow Bash")
    assert setup.reply is not None and setup.reply["status"] == "ok", setup.outputs
    fake_api.enqueue(
        Reply.tool("Bash", {"command": "touch pre-allowed.txt", "description": "Create"}), Reply.text("Made it.")
    )
    run = claude_kernel.run("make a file")
    assert not run.widgets  # pre-allowed: no prompt
    # The file landed in the new working directory, and the CLI restart kept the conversation going.
    assert (sub / "pre-allowed.txt").exists() and "Made it." in run.text()
    assert "sonnet" in fake_api.requests[-1]["model"]


def test_images_from_tools_are_shown(claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path) -> None:
    from .test_session_turns import PIXEL

    (workdir / "plot.png").write_bytes(base64.b64decode(PIXEL))
    fake_api.enqueue(Reply.tool("Read", {"file_path": str(workdir / "plot.png")}), Reply.text("A tiny plot."))
    run = claude_kernel.run("show me plot.png")
    images = [
        m["content"]["data"]["image/png"]
        for m in run.outputs
        if m["msg_type"] == "display_data" and "image/png" in m["content"]["data"]
    ]
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(b"\x89PNG")
    assert "A tiny plot." in run.text()


def test_cli_crash_mid_cell_is_reported_and_the_next_cell_resumes(
    claude_kernel: Any, fake_api: FakeMessagesAPI
) -> None:
    fake_api.enqueue(Reply.text("Noted: LYNX."), Reply.text("word " * 400, delay=0.02, chunk=5), Reply.text("LYNX."))
    claude_kernel.run("Remember LYNX")
    run = claude_kernel.start("talk a lot")
    claude_kernel.pump(run, until=lambda e: "word word" in e.text())
    os.kill(_cli_pid(claude_kernel.manager.provisioner.process.pid), signal.SIGKILL)
    claude_kernel.pump(run)
    assert run.reply is not None and run.reply["ename"] == "ProcessDiedError"
    assert "next cell resumes" in run.text()
    after = claude_kernel.run("Which animal?")
    assert after.reply is not None and after.reply["status"] == "ok"
    assert "LYNX." in after.text() and "resumed session" in after.text()
    assert "Remember LYNX" in str(fake_api.requests[-1]["messages"])


def _cli_pid(kernel_pid: int) -> int:
    """The kernel's claude child (found through /proc: the kernel does not publish it)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == kernel_pid and "claude" in stat.with_name("cmdline").read_bytes().decode(errors="replace"):
            return int(stat.parent.name)
    raise AssertionError("the kernel has no claude child")


def test_api_error_shows_the_cli_message_and_a_hint(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    from claude_kernel.testing.fake_api import ErrorReply

    fake_api.enqueue(ErrorReply(401, "authentication_error", "invalid x-api-key"))
    run = claude_kernel.run("hello?")
    assert run.reply is not None and run.reply["status"] == "error" and run.reply["ename"] == "ClaudeError"
    assert "ANTHROPIC_API_KEY" in run.reply["evalue"]
    after = claude_kernel.run("still there?")  # the kernel and the session survive
    assert after.reply is not None and after.reply["status"] == "ok"


def test_interrupt_while_a_panel_waits_marks_it_cancelled(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.tool("Bash", {"command": "touch never.txt", "description": "Create"}))
    run = claude_kernel.start("make a file")
    claude_kernel.wait_for_button(run, "Allow")
    claude_kernel.manager.interrupt_kernel()
    claude_kernel.pump(run, timeout=15)
    assert run.reply is not None and run.reply["ename"] == "KeyboardInterrupt"
    updates = [str(m["content"]["data"]) for m in run.outputs if m["msg_type"] == "comm_msg"]
    assert any("cancelled" in update for update in updates)
    assert "cancelled" in run.text()


def test_missing_cli_says_how_to_install(kernelspec_path: str, cli_env: dict[str, str], workdir: Path) -> None:
    from .conftest import _running_kernel

    for driver in _running_kernel("claude", {**cli_env, "CLAUDE_KERNEL_CLI": "/nonexistent/claude"}, workdir):
        run = driver.run("hello")
        assert run.reply is not None and run.reply["ename"] == "CLINotFoundError"
        assert "npm install -g @anthropic-ai/claude-code" in run.reply["evalue"]
        assert driver.run("%help").reply["status"] == "ok"  # the kernel is still alive
