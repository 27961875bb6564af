"""``%%claude`` in a stock IPython kernel: same Session and rendering, plus the namespace tools."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.testing.agents import DelegatingModel
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, Text, is_notification, tool_results, user_text

from .helpers import terminal_ipython

pytestmark = pytest.mark.real_cli


def _text(run: Any) -> str:
    return "".join(m["content"].get("text", "") for m in run.outputs if m["msg_type"] == "stream")


def test_a_cell_is_a_turn_and_two_cells_share_memory(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply((Text("Noted: the word is **CEDAR**.", chunk=4),), delay=0.01), Reply.text("CEDAR."))
    first = python_kernel.run("%%claude\nRemember CEDAR")
    assert first.reply is not None and first.reply["status"] == "ok", first.outputs
    assert "Noted: the word is <strong>CEDAR</strong>." in first.html() and "session" in first.text()
    assert first.count("update_display_data") >= 1
    second = python_kernel.run("%%claude -o answer\nWhat was the word?")
    assert "CEDAR." in second.text()
    assert "Remember CEDAR" in str(fake_api.requests[-1]["messages"])
    assert user_text(fake_api.requests[-1]) == "What was the word?"
    check = python_kernel.run("print(repr(answer))")
    assert _text(check).strip() == "'CEDAR.'"


def test_one_line_form_and_help(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.text("Short answer."))
    run = python_kernel.run("%claude what is 2+2?")
    assert "Short answer." in run.text()
    assert user_text(fake_api.requests[-1]) == "what is 2+2?"
    help_run = python_kernel.run("%claude?")
    payload = str(help_run.reply)
    assert "--output" in payload and "conversation" in payload


def test_interrupt_keeps_the_session(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.text("word " * 400, delay=0.02, chunk=5), Reply.text("Next answer."))
    run = python_kernel.start("%%claude\ntalk a lot")
    python_kernel.pump(run, until=lambda e: "word word" in e.text())
    python_kernel.manager.interrupt_kernel()
    python_kernel.pump(run, timeout=10)
    assert run.reply is not None and run.reply["status"] == "error"
    assert "word word" in run.text() and "Interrupted" in run.text()
    after = python_kernel.run("%%claude\ngo on")
    assert after.reply is not None and after.reply["status"] == "ok" and "Next answer." in after.text()


def test_approval_click_while_the_cell_runs(python_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path) -> None:
    fake_api.enqueue(
        Reply.tool("Bash", {"command": "touch from-magic.txt", "description": "Create"}), Reply.text("Made it.")
    )
    run = python_kernel.start("%%claude\nmake a file")
    python_kernel.click(python_kernel.wait_for_button(run, "Allow"))
    python_kernel.pump(run)
    assert (workdir / "from-magic.txt").exists() and "Made it." in run.text()


def test_variable_tools_and_run_python_after_allow(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    python_kernel.run("numbers = list(range(1000))\nsecret_text = 'x' * 100000")
    fake_api.enqueue(
        Reply.tool("mcp__notebook__list_variables", {}),
        Reply.tool("mcp__notebook__inspect_variable", {"name": "secret_text"}),
        Reply.tool("mcp__notebook__run_python", {"code": "total = sum(numbers)\ntotal"}),
        Reply.text("The total is 499500."),
    )
    run = python_kernel.start("%%claude\nadd up my numbers")
    python_kernel.click(python_kernel.wait_for_button(run, "Allow"))
    python_kernel.pump(run)
    listed, inspected, ran = (str(tool_results(r)[0]["content"]) for r in fake_api.requests[1:4])
    assert "numbers: list (len 1000)" in listed and "secret_text: str" in listed
    assert len(inspected) < 5000 and "more characters" in inspected  # summarised, never dumped
    assert "499500" in ran
    assert "The total is 499500." in run.text()
    check = python_kernel.run("print(total)")
    assert _text(check).strip() == "499500"


def test_run_python_denied_headless(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.tool("mcp__notebook__run_python", {"code": "ran = True"}), Reply.text("Not allowed."))
    run = python_kernel.run("%%claude\nset a flag", allow_stdin=False)
    assert run.reply is not None and run.reply["status"] == "ok"
    result = tool_results(fake_api.requests[1])[0]
    assert result["is_error"] and "headless" in str(result["content"])
    check = python_kernel.run("print('ran' in globals())")
    assert _text(check).strip() == "False"


def test_magic_notebook_runs_headless_with_nbclient(
    cli_env: dict[str, str], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data-exploration demo, end to end: a plot Claude draws and sees, an error it is sent."""
    import nbformat
    from nbclient import NotebookClient

    from claude_kernel.demo import NOTEBOOKS, scripted_model
    from claude_kernel.testing.fake_api import FakeMessagesAPI

    notebook = nbformat.read(NOTEBOOKS / "magic.ipynb", as_version=4)
    plot_cell = next(c for c in notebook.cells if c.source.startswith("%%claude\nPlot"))
    plot_cell.source = plot_cell.source.replace("%%claude", "%%claude --headless allow", 1)  # nobody clicks
    with FakeMessagesAPI(fallback=scripted_model) as api:
        for name, value in {**cli_env, **api.environment()}.items():
            monkeypatch.setenv(name, value)
        NotebookClient(
            notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
        ).execute()
        requests = list(api.requests)
    plotted = [b for r in requests for t in tool_results(r) for b in t["content"] if b.get("type") == "image"]
    assert len(plotted) == 1
    assert sum("image/png" in o.get("data", {}) for o in plot_cell.outputs) == 1  # shown once
    assert "July, at 0" in str(plot_cell.outputs)
    asked = next(r for r in requests if "What went wrong above?" in user_text(r))
    assert "ZeroDivisionError: division by zero" in user_text(asked)
    assert "new cell below" in str(notebook.cells[-1].outputs)
    proposed = str(tool_results(requests[-1])[0]["content"])
    assert "headless run), so no cell was added" in proposed  # nbclient drops set_next_input


def _always_allow_run_python(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    """A first cell whose run_python is allowed always; the model then asks to run it again."""
    fake_api.enqueue(
        Reply.tool("mcp__notebook__run_python", {"code": "a = 1"}),
        Reply.text("One."),
        Reply.tool("mcp__notebook__run_python", {"code": "b = 2"}),
        Reply.text("Two."),
    )
    first = python_kernel.start("%%claude\nset a")
    python_kernel.click(python_kernel.wait_for_button(first, "Always allow"))
    python_kernel.pump(first)


def test_always_allow_run_python_stops_asking(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    _always_allow_run_python(python_kernel, fake_api)
    second = python_kernel.run("%%claude\nset b")
    assert not second.widgets and "Two." in second.text()
    assert _text(python_kernel.run("print(a + b)")).strip() == "3"


def test_always_allow_run_python_ends_with_its_conversation(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    _always_allow_run_python(python_kernel, fake_api)
    second = python_kernel.start("%%claude --new\nset b")
    python_kernel.click(python_kernel.wait_for_button(second, "Deny"))  # asked again in the new conversation
    python_kernel.pump(second)
    assert _text(python_kernel.run("print(sorted(k for k in ('a', 'b') if k in globals()))")).strip() == "['a']"


def test_terminal_ipython_prints_the_turn_and_ctrl_c_keeps_the_session(
    cli_env: dict[str, str], workdir: Path, fake_api: FakeMessagesAPI
) -> None:
    """No kernel, no widgets: the answer prints when the turn ends, approvals follow the headless
    policy, and Ctrl-C interrupts the turn without ending the conversation."""

    fake_api.enqueue(
        Reply.text("Terminal answer."), Reply.text("slowly " * 400, delay=0.02, chunk=7), Reply.text("Still here.")
    )
    ipython = terminal_ipython(cli_env, workdir)
    try:
        ipython.sendline("%claude hello from a terminal")
        ipython.expect("Terminal answer.")
        ipython.expect(r"In \[3\]: ")
        ipython.sendline("%claude talk a lot")
        fake_api.wait_for_requests(2)
        time.sleep(1.0)  # let it stream for a while
        ipython.sendintr()
        ipython.expect("Interrupted; the conversation continues")
        ipython.expect("KeyboardInterrupt")
        ipython.expect(r"In \[\d\]: ")
        ipython.sendline("%claude are you there?")
        ipython.expect("Still here.")
        ipython.expect(r"In \[\d\]: ")
    finally:
        ipython.sendline("exit")
        ipython.close(force=True)
    assert "hello from a terminal" in str(fake_api.requests[-1]["messages"])


def test_terminal_ipython_answers_background_approvals_by_the_headless_policy(
    cli_env: dict[str, str], workdir: Path, fake_api: FakeMessagesAPI
) -> None:
    """No frontend: a background agent's approval, asked after its cell ended, is still answered
    (denied, the default policy) while a later cell runs, so the agent reports instead of waiting."""
    model = DelegatingModel(hold=True, agent_command="touch not-made")
    fake_api.fallback = model
    ipython = terminal_ipython(cli_env, workdir)
    try:
        ipython.sendline("%claude delegate")
        ipython.expect("launched")
        ipython.expect(r"In \[3\]: ")
        model.release.set()  # the agent asks for Bash now, with no cell running
        ipython.sendline("import asyncio")
        deadline = time.monotonic() + 60
        while not any(is_notification(request) for request in fake_api.requests):
            assert time.monotonic() < deadline, "the agent never reported"
            ipython.sendline("await asyncio.sleep(0.5)")  # a cell: IPython's loop runs, so does the board
            ipython.expect(r"In \[\d+\]: ")
        ipython.sendline("%claude --no-context one")
        ipython.expect("You said: one")
        ipython.expect(r"In \[\d+\]: ")
    finally:
        ipython.sendline("exit")
        ipython.close(force=True)
    assert not (workdir / "not-made").exists()
