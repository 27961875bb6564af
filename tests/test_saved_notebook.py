"""A saved notebook reads well without the kernel: panels carry text forms of their decisions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

pytestmark = pytest.mark.real_cli


def saved_outputs(run: Any) -> list[Any]:
    """The cell's outputs as a frontend saves them: each display at its latest update, in order."""
    outputs: list[Any] = []
    by_id: dict[str, Any] = {}
    for msg in run.outputs:
        kind, content = msg["msg_type"], msg["content"]
        display_id = content.get("transient", {}).get("display_id")
        if kind == "update_display_data":
            if display_id in by_id:
                by_id[display_id]["data"] = content["data"]
            continue
        if kind not in ("display_data", "stream", "error"):
            continue
        output = nbformat.v4.output_from_msg(msg)
        outputs.append(output)
        if display_id:
            by_id[display_id] = output
    return outputs


def convert(notebook: Path, to: str) -> str:
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", to, str(notebook)], check=True, capture_output=True
    )
    return notebook.with_suffix(".md" if to == "markdown" else ".html").read_text()


def test_decisions_survive_in_the_saved_notebook(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path, tmp_path: Path
) -> None:
    fake_api.enqueue(Reply.tool("Bash", {"command": "touch saved.txt", "description": "Create"}), Reply.text("Made."))
    allowed = claude_kernel.start("make a file")
    claude_kernel.click(claude_kernel.wait_for_button(allowed, "Allow"))
    claude_kernel.pump(allowed)
    fake_api.enqueue(Reply.tool("mcp__notebook__ask_user", {"question": "Which fjord?"}), Reply.text("Lovely."))
    answered = claude_kernel.submit_answer(claude_kernel.start("ask me"), "Geiranger")
    fake_api.enqueue(Reply.tool("Bash", {"command": "rm -rf /tmp/x", "description": "Remove"}), Reply.text("Ok."))
    denied = claude_kernel.start("clean up")
    claude_kernel.click(claude_kernel.wait_for_button(denied, "Deny"))
    claude_kernel.pump(denied)

    notebook = nbformat.v4.new_notebook()
    for source, run in (("make a file", allowed), ("ask me", answered), ("clean up", denied)):
        cell = nbformat.v4.new_code_cell(source)
        cell.outputs = saved_outputs(run)
        notebook.cells.append(cell)
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)

    for to in ("markdown", "html"):
        text = convert(path, to)
        assert "VBox(" not in text and "HTML(value=" not in text
        assert "touch saved.txt" in text and "allowed" in text
        assert "Which fjord?" in text and "Geiranger" in text
        assert "rm -rf /tmp/x" in text and "denied" in text
    markdown = convert(path, "markdown")
    assert "`Bash` `touch saved.txt` - allowed" in markdown
    assert "`ask_user:` `Which fjord?` - answered: `Geiranger`" in markdown
