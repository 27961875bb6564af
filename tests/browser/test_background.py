"""JupyterLab: a background agent's report lands in the cell that started it, after that cell ended."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from claude_kernel.testing.agents import DelegatingModel
from claude_kernel.testing.fake_api import FakeMessagesAPI

from .conftest import JupyterServer, playwright, shot
from .test_jupyterlab import _open

expect = playwright.expect

pytestmark = [pytest.mark.browser, pytest.mark.real_cli]


@pytest.fixture
def delegating(model: FakeMessagesAPI) -> Iterator[DelegatingModel]:
    """The session's model, delegating to a background agent that reports when the test says."""
    scripted, model.fallback = model.fallback, DelegatingModel(hold=True)
    assert isinstance(model.fallback, DelegatingModel)
    yield model.fallback
    model.fallback = scripted


def test_an_agents_report_lands_in_its_cell(
    page: Any, lab: JupyterServer, delegating: DelegatingModel, request: pytest.FixtureRequest
) -> None:
    notebook = _open(page, lab, request)
    first = notebook.run(0, "delegate")
    notebook.wait_done(first)
    output = first.locator(".jp-OutputArea")
    expect(output).to_contain_text("Left running by this cell")
    expect(output).to_contain_text("running in the background")
    expect(output).not_to_contain_text("internal metadata")
    second = notebook.run(1, "one")
    notebook.wait_done(second)
    expect(second.locator(".jp-OutputArea")).to_contain_text("You said: one")
    shot(page, "lab-background-running")
    delegating.release.set()  # the agent reports now, while no cell runs
    expect(output).to_contain_text("The agent reported: The answer is 42.", timeout=60_000)
    expect(output).to_contain_text("completed")
    expect(second.locator(".jp-OutputArea")).not_to_contain_text("The agent reported")
    third = notebook.run(2, "two")
    notebook.wait_done(third)
    expect(third.locator(".jp-OutputArea")).to_contain_text("You said: two")
    expect(third.locator(".jp-OutputArea")).not_to_contain_text("The agent reported")
    first.scroll_into_view_if_needed()
    shot(page, "lab-background-reported")
