"""The notebook is the conversation, as a JupyterLab user meets it: edit and re-run, restart, Undo."""

from __future__ import annotations

from typing import Any

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from ..test_notebook_conversation import remembered
from .conftest import JupyterServer, playwright, shot
from .test_jupyterlab import Notebook, button

expect = playwright.expect

pytestmark = [pytest.mark.browser, pytest.mark.real_cli]


def test_edit_and_rerun_restart_from_the_menu_and_undo(page: Any, lab: JupyterServer, model: FakeMessagesAPI) -> None:
    name = "conversation.ipynb"
    lab.create_notebook(name, "claude", ["Remember ANT", "Now BEE", "Rewrite notes.txt"])
    (lab.root / "notes.txt").write_text("original\n")
    notebook = Notebook(page, lab, name)

    model.enqueue(Reply.text("Noted: ANT."), Reply.text("Noted: BEE."))
    for index in (0, 1):
        cell = notebook.run_existing(index)
        notebook.wait_done(cell)
    assert remembered(model.requests[-1]) == ["Remember ANT", "Now BEE"]

    # Edit the first cell and run it again: the conversation goes back to before it.
    first = notebook.cell(0)
    first.locator(".jp-InputArea-editor .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text("Remember CAT")
    model.enqueue(Reply.text("Noted: CAT."))
    page.keyboard.press("Control+Enter")
    notebook.wait_done(first)
    expect(first).to_contain_text("1 later cell no longer in the conversation")
    assert remembered(model.requests[-1]) == ["Remember CAT"]
    shot(page, "lab-rewound")

    # Restart the kernel from the menu: the next cell continues the same conversation.
    page.locator(".lm-MenuBar-item", has_text="Kernel").click()
    page.locator(".lm-Menu-item[data-command='kernelmenu:restart']").click()
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    indicator = notebook.panel.locator(".jp-Notebook-ExecutionIndicator")
    expect(indicator).to_have_attribute("data-status", "idle", timeout=60_000)  # a restart takes a while
    notebook._wait_for_kernel(lab, name)
    model.enqueue(Reply.text("Noted: BEE again."))
    second = notebook.run_existing(1)
    notebook.wait_done(second)
    expect(second).to_contain_text("Continuing this notebook's conversation")
    assert remembered(model.requests[-1]) == ["Remember CAT", "Now BEE"]

    # A cell that changes a file, and the Undo button under it.
    path = str(lab.root / "notes.txt")
    model.enqueue(Reply.tool("Write", {"file_path": path, "content": "rewritten\n"}), Reply.text("Rewrote it."))
    third = notebook.run_existing(2)
    allow = button(third, "Allow")
    expect(allow).to_be_visible()
    allow.click()
    notebook.wait_done(third)
    assert (lab.root / "notes.txt").read_text() == "rewritten\n"
    expect(third).to_contain_text("This cell changed")
    undo = button(third, "Undo file changes")
    expect(undo).to_be_visible()
    shot(page, "lab-undo-offered")
    undo.click()
    expect(third).to_contain_text("restored as before the cell", timeout=30_000)
    assert (lab.root / "notes.txt").read_text() == "original\n"
    shot(page, "lab-undone")
