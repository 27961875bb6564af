"""Claude Code's question and plan panels in JupyterLab: answered and approved by clicks."""

from __future__ import annotations

from typing import Any

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, tool_results

from ..test_claude_panels import QUESTIONS, _write_the_plan
from .conftest import SHOTS, JupyterServer, playwright
from .test_jupyterlab import _open, button

expect = playwright.expect

pytestmark = [pytest.mark.browser, pytest.mark.real_cli]


def test_question_panel(page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest) -> None:
    model.enqueue(Reply.tool("AskUserQuestion", QUESTIONS), Reply.text("PNG and SVG with plotly, then."))
    page.set_viewport_size({"width": 1100, "height": 1400})
    notebook = _open(page, lab, request)
    cell = notebook.run(0, "Make me a chart")
    submit = button(cell, "Submit")
    expect(submit).to_be_visible(timeout=60_000)
    expect(cell).to_contain_text("Which plotting library?")
    expect(cell).to_contain_text("plt.plot(x, y)")  # an option's preview
    cell.get_by_label("plotly — interactive charts").check()
    cell.get_by_label("PNG — raster").check()
    cell.get_by_label("SVG — vector").check()
    cell.evaluate("cell => cell.scrollIntoView({block: 'start'})")
    cell.screenshot(path=str(SHOTS / "lab-question-panel.png"))
    submit.click()
    notebook.wait_done(cell)
    expect(cell).to_contain_text("PNG and SVG with plotly, then.")
    expect(cell).to_contain_text("Which formats? → PNG, SVG")  # the record the notebook keeps
    (result,) = tool_results(model.requests[-1])
    assert '"Which plotting library?"="plotly", "Which formats?"="PNG, SVG"' in str(result["content"])


def test_plan_panel(page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest) -> None:
    page.set_viewport_size({"width": 1100, "height": 1400})
    notebook = _open(page, lab, request)
    notebook.wait_done(notebook.run(0, "%permissions plan"))
    model.enqueue(_write_the_plan, Reply.tool("ExitPlanMode", {}), Reply.text("Starting on the plan."))
    cell = notebook.run(1, "Plan the chart")
    approve = button(cell, "Approve, review each edit")
    expect(approve).to_be_visible(timeout=60_000)
    plan = cell.locator(".claude-plan")
    expect(plan.locator("h1")).to_have_text("Plan")
    expect(plan.locator("strong")).to_have_text("the chart")
    cell.evaluate("cell => cell.scrollIntoView({block: 'start'})")
    cell.screenshot(path=str(SHOTS / "lab-plan-panel.png"))
    approve.click()
    notebook.wait_done(cell)
    expect(cell).to_contain_text("Starting on the plan.")
    mode = notebook.run(2, "%permissions")
    notebook.wait_done(mode)
    expect(mode).to_contain_text("mode: default")
