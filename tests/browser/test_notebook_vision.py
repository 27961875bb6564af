"""The data-exploration demo in JupyterLab: the figure Claude drew is shown, its proposed cell lands below."""

from __future__ import annotations

import json
from typing import Any

import pytest

from claude_kernel.demo import NOTEBOOKS
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, tool_results

from .conftest import JupyterServer, playwright, shot
from .test_jupyterlab import Notebook, button

expect = playwright.expect

pytestmark = [pytest.mark.browser, pytest.mark.real_cli]


def test_the_demo_shows_claudes_figure_and_inserts_its_cell_below(
    page: Any, lab: JupyterServer, model: FakeMessagesAPI
) -> None:
    """The scripted model (the offline demo's) plays magic.ipynb; a person clicks Allow once."""
    content = json.loads((NOTEBOOKS / "magic.ipynb").read_text())
    lab.api("PUT", "/api/contents/exploration.ipynb", {"type": "notebook", "content": content})
    notebook = Notebook(page, lab, "exploration.ipynb")
    sources = ["".join(cell["source"]) for cell in content["cells"]]
    plot = sources.index(next(s for s in sources if s.startswith("%%claude\nPlot")))
    ask = sources.index(next(s for s in sources if "What went wrong" in s))
    for index in range(plot):
        if content["cells"][index]["cell_type"] == "code":
            notebook.wait_done(notebook.run_existing(index))
    table = next(i for i, s in enumerate(sources) if "pd.DataFrame" in s)
    expect(notebook.cell(table).locator(".jp-OutputArea-output table")).to_contain_text("2025-01")

    cell = notebook.run_existing(plot)
    button(cell, "Allow").click()
    notebook.wait_done(cell)
    figure = cell.locator(".jp-OutputArea-output img")
    expect(figure).to_have_count(1)  # shown once
    expect(figure).to_be_visible()
    assert figure.evaluate("img => img.naturalWidth") > 300
    expect(cell).to_contain_text("July, at 0")
    figure.scroll_into_view_if_needed()
    shot(page, "lab-claude-drew-a-figure")
    # The session's model served earlier tests too: their tool results may be plain text.
    results = [t["content"] for r in model.requests for t in tool_results(r) if isinstance(t["content"], list)]
    sent = [b for content in results for b in content if b.get("type") == "image"]
    assert len(sent) == 1

    for index in range(plot + 1, ask):
        if content["cells"][index]["cell_type"] == "code":
            notebook.wait_done(notebook.run_existing(index))
    asked = notebook.run_existing(ask)
    notebook.wait_done(asked)
    expect(asked).to_contain_text("Added a new cell below")
    expect(asked).to_contain_text("Sent with 1 cell since the last message, 1 error.")
    proposed = notebook.cell(ask + 1)
    expect(proposed).to_contain_text("if earlier else None")
    expect(proposed.locator(".jp-InputArea-prompt")).to_have_text("[ ]:")  # not run: the person runs it
    proposed.scroll_into_view_if_needed()
    shot(page, "lab-claude-proposed-a-cell")


def test_notebook7_inserts_the_proposed_cell_below(page: Any, notebook7: JupyterServer, model: FakeMessagesAPI) -> None:
    model.enqueue(
        Reply.tool("mcp__notebook__create_cell", {"code": "print('proposed in Notebook 7')"}), Reply.text("Proposed.")
    )
    notebook7.create_notebook("propose.ipynb", "python3", ["%load_ext claude_kernel", "%%claude\npropose a cell"])
    notebook = Notebook(page, notebook7, "propose.ipynb")
    notebook.wait_done(notebook.run_existing(0))
    asked = notebook.run_existing(1)
    notebook.wait_done(asked)
    expect(asked).to_contain_text("Added a new cell below")
    expect(notebook.cell(2)).to_contain_text("proposed in Notebook 7")
    shot(page, "notebook7-claude-proposed-a-cell")
