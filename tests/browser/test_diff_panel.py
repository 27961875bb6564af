"""The approval panel of a file edit in JupyterLab, light and dark: a readable, coloured, folded diff."""

from __future__ import annotations

import re
from typing import Any

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .conftest import SHOTS, JupyterServer, playwright
from .test_jupyterlab import _open, _set_theme, button

expect = playwright.expect

pytestmark = [pytest.mark.browser, pytest.mark.real_cli]

STATS = '''"""Small statistics helpers for the sales notebook."""

import math


def mean(values):
    return sum(values) / len(values)


def stdev(values):
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def summary(values):
    return {"mean": mean(values), "stdev": stdev(values)}
'''

# A settings file that a Write rewrites in six places: six hunks, more than 40 lines of diff.
SETTINGS = "".join(f"option_{i:03d} = {i}\n" for i in range(120))
REWRITTEN = "".join(f"option_{i:03d} = {i * 10 if i % 20 == 5 else i}\n" for i in range(120))

# The colour of each kind of row and of its text, as the browser computed them.
_COLOURS = """panel => Object.fromEntries(['add', 'del', 'ctx'].map(kind => {
    const row = panel.querySelector(`table.claude-diff tr.${kind}`);
    const cell = row.querySelector('td.c');
    return [kind, [getComputedStyle(row).backgroundColor, getComputedStyle(cell).color]];
}))"""


def _luminance(colour: str) -> float:
    """Relative brightness (0..1) of a computed ``rgb()`` / ``rgba()`` / ``color(srgb ...)`` value."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", colour)[:3]]
    scale = 1.0 if colour.startswith("color(") else 255.0
    red, green, blue = (n / scale for n in numbers)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _check_colours(panel: Any, *, dark: bool) -> None:
    colours = panel.evaluate(_COLOURS)
    added, removed, context = (colours[kind][0] for kind in ("add", "del", "ctx"))
    assert len({added, removed, context}) == 3, colours  # tinted rows, each its own
    green, red = ([float(n) for n in re.findall(r"[\d.]+", c)[:3]] for c in (added, removed))
    assert green[1] > green[0] and red[0] > red[1], colours  # green for added, red for removed
    for kind in ("add", "del", "ctx"):
        text = _luminance(colours[kind][1])
        assert (text > 0.6) if dark else (text < 0.4), (kind, colours)  # readable on the theme


def _cell_shot(cell: Any, name: str) -> None:
    """One cell, from its input to the approval buttons (the README shows two of these)."""
    cell.evaluate("cell => cell.scrollIntoView({block: 'start'})")
    cell.screenshot(path=str(SHOTS / f"{name}.png"))


def test_diff_panel_in_light_and_dark(
    page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest
) -> None:
    stats, settings = lab.root / "stats.py", lab.root / "settings.toml"
    stats.write_text(STATS)
    settings.write_text(SETTINGS)
    model.enqueue(
        Reply.tool("Read", {"file_path": str(stats)}),
        Reply.tool(
            "Edit",
            {
                "file_path": str(stats),
                "old_string": "    return sum(values) / len(values)\n",
                "new_string": '    if not values:\n        raise ValueError("mean of no values")\n'
                "    return math.fsum(values) / len(values)\n",
            },
            say="I will make `mean` refuse an empty list.",
        ),
        Reply.text("`mean` now refuses an empty list."),
        Reply.tool("Read", {"file_path": str(settings)}),
        Reply.tool("Write", {"file_path": str(settings), "content": REWRITTEN}),
        Reply.text("Rewrote the settings."),
    )
    page.set_viewport_size({"width": 1100, "height": 1600})  # room for a whole cell in the screenshots
    notebook = _open(page, lab, request)

    edit = notebook.run(0, "Make mean() safe for empty input")
    panel = edit.locator(".claude-diff-panel")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("@@ -4,7 +4,9 @@")
    expect(panel.locator("tr.del")).to_have_count(1)
    expect(panel.locator("tr.add")).to_have_count(3)
    expect(panel.locator("tr.ctx").nth(2)).to_contain_text("def mean(values):")
    _check_colours(panel, dark=False)
    _cell_shot(edit, "lab-diff-light")
    button(edit, "Allow").click()
    notebook.wait_done(edit)
    assert "mean of no values" in stats.read_text()

    _set_theme(page, "JupyterLab Dark")
    try:
        expect(page.locator("body[data-jp-theme-light='false']")).to_be_attached()
        write = notebook.run(1, "Scale the fifth option of every twenty")
        panel = write.locator(".claude-diff-panel")
        expect(panel).to_be_visible()
        expect(panel).to_contain_text("overwrite")
        _check_colours(panel, dark=True)
        # Six hunks of 9 rows: the first 40 rows show, the rest wait behind "Show ... more lines".
        more = panel.locator("details.claude-diff-more")
        expect(more.locator("summary")).to_have_text("Show 14 more lines")
        expect(panel.locator("tr:visible")).to_have_count(40)
        expect(panel.locator("tr.hunk").first).to_have_text("@@ -3,7 +3,7 @@")
        _cell_shot(write, "lab-diff-dark")
        more.locator("summary").click()
        expect(panel.locator("tr:visible")).to_have_count(54)
        expect(panel.locator("tr.hunk")).to_have_count(6)
        button(write, "Allow").click()
        notebook.wait_done(write)
        assert settings.read_text() == REWRITTEN
    finally:
        _set_theme(page, "JupyterLab Light")  # the server is shared with later tests
