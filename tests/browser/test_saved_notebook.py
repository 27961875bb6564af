"""A notebook saved after approvals, reopened without its kernel, still says what was decided."""

from __future__ import annotations

import json
from typing import Any

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .conftest import TOKEN, JupyterServer, playwright, shot
from .test_jupyterlab import Notebook, button

expect = playwright.expect

pytestmark = [pytest.mark.browser, pytest.mark.real_cli]


def test_a_saved_and_reopened_notebook_shows_the_decisions(
    page: Any, lab: JupyterServer, model: FakeMessagesAPI
) -> None:
    name = "decisions.ipynb"
    lab.create_notebook(name, "claude", ["Create a file"])
    notebook = Notebook(page, lab, name)
    model.enqueue(
        Reply.tool("Bash", {"command": "touch saved-decision.txt", "description": "Create"}), Reply.text("Done.")
    )
    cell = notebook.run_existing(0)
    allow = button(cell, "Allow")
    expect(allow).to_be_visible()
    allow.click()
    notebook.wait_done(cell)
    page.keyboard.press("Control+s")
    expect(page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current.jp-mod-dirty")).to_have_count(0)
    saved = json.loads((lab.root / name).read_text())
    data = [output.get("data", {}) for output in saved["cells"][0]["outputs"]]
    # A decided panel is saved as its record alone: no widget that could fail to load later.
    assert not any("application/vnd.jupyter.widget-view+json" in bundle for bundle in data)
    plains = ["".join(b["text/plain"]) if isinstance(b.get("text/plain"), list) else b.get("text/plain") for b in data]
    assert "Bash touch saved-decision.txt - allowed" in plains

    # Reopen with no kernel at all: what the panel said must still be there, not a widget error.
    lab.shutdown_kernels()
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={TOKEN}")
    reopened = page.locator(".jp-Notebook .jp-Cell").first
    Notebook(page, lab, name, opened=True)  # a new kernel: no widget model of the old one exists
    expect(reopened).to_contain_text("Done.")
    record = reopened.locator(".jp-RenderedMarkdown", has_text="touch saved-decision.txt")
    expect(record).to_contain_text("Bash touch saved-decision.txt - allowed")
    expect(reopened).not_to_contain_text("Error displaying widget")
    shot(page, "lab-reopened-decisions")
