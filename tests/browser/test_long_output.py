"""A long answer, frozen into many displays, reads as one answer in JupyterLab: no seams between the displays.

Geometry, not timing (the page's responsiveness while 1 MB streams is measured by ``./dev bench``):
the vertical gap between two consecutive blocks of the answer that sit in different outputs is the
gap the same two kinds of block have inside one output.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from playwright.sync_api import expect

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply
from claude_kernel.testing.long_answer import long_answer

from .conftest import JupyterServer, shot
from .test_jupyterlab import _open

pytestmark = [pytest.mark.browser, pytest.mark.real_cli]

# Every top-level block of the answer in every output of the cell, in order, with the output it is
# in and the gap (in CSS pixels) from the bottom of the block before it, margins included.
_BLOCKS = """cell => {
  const blocks = [];
  cell.querySelectorAll('.jp-OutputArea-child').forEach((child, output) => {
    child.querySelectorAll('.claude-text > *').forEach(block => {
      const box = block.getBoundingClientRect();
      blocks.push({output, tag: block.tagName, top: box.top, bottom: box.bottom,
                   marginTop: parseFloat(getComputedStyle(block).marginTop),
                   marginBottom: parseFloat(getComputedStyle(block).marginBottom)});
    });
  });
  return blocks;
}"""


def _answered(page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest, text: str) -> Any:
    """The cell of a new notebook once ``text`` has streamed into it, 16 characters a millisecond:
    long enough a stream for several freezes."""
    model.enqueue(Reply.text(text, chunk=16, delay=0.001))
    notebook = _open(page, lab, request)
    cell = notebook.run(0, "Go on")
    notebook.wait_done(cell)
    return cell


def test_a_frozen_answer_has_no_seams(
    page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest
) -> None:
    cell = _answered(page, lab, model, request, long_answer(20_000))
    blocks = cell.evaluate(_BLOCKS)
    assert len({block["output"] for block in blocks}) > 3, "the answer was never frozen"
    inside: dict[tuple[str, str], set[int]] = {}
    seams: list[tuple[str, str, int]] = []
    for before, after in itertools.pairwise(blocks):
        pair, gap = (before["tag"], after["tag"]), round(after["top"] - before["bottom"])
        if before["output"] == after["output"]:
            inside.setdefault(pair, set()).add(gap)
        else:
            seams.append((*pair, gap))
    compared = [(a, b, gap, inside[a, b]) for a, b, gap in seams if (a, b) in inside]
    assert compared, (seams, inside)
    shot(page, "lab-long-answer")
    for a, b, gap, gaps in compared:
        assert any(abs(gap - usual) <= 1 for usual in gaps), f"a seam between {a} and {b}: {gap}px, inside {gaps}"


def test_a_long_code_block_cut_as_it_streams_reads_as_one_block(
    page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest
) -> None:
    code = "\n".join(f"total_{n} = sum(row[{n}] for row in table)  # column {n}" for n in range(300))
    cell = _answered(page, lab, model, request, f"The script:\n\n```python\n{code}\n```\n\nDone.")
    blocks = [block for block in cell.evaluate(_BLOCKS) if block["tag"] == "PRE"]
    assert len({block["output"] for block in blocks}) > 3, "the code block was never cut"
    for above, below in itertools.pairwise(blocks):
        assert abs(below["top"] - above["bottom"]) <= 1, f"a gap inside the code block: {above}, {below}"
    shown = cell.evaluate("cell => [...cell.querySelectorAll('.claude-text pre')].map(pre => pre.innerText).join('')")
    assert shown.rstrip("\n") == code
    shot(page, "lab-long-code-block")


def test_a_long_list_cut_as_it_streams_reads_as_one_list(
    page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest
) -> None:
    items = "\n".join(f"{n + 1}. the value in row {n} is **{n * 7}**, above the threshold" for n in range(300))
    cell = _answered(page, lab, model, request, f"Findings:\n\n{items}\n\nDone.")
    rows = cell.evaluate("""cell => {
      const rows = [];
      cell.querySelectorAll('.jp-OutputArea-child').forEach((child, output) => {
        child.querySelectorAll('.claude-text > ol > li').forEach(li => {
          const box = li.getBoundingClientRect();
          rows.push({output, top: box.top, bottom: box.bottom, left: box.left, text: li.innerText});
        });
      });
      return rows;
    }""")
    assert [row["text"] for row in rows] == [
        f"the value in row {n} is {n * 7}, above the threshold" for n in range(300)
    ]
    assert len({row["output"] for row in rows}) > 3, "the list was never cut"
    inside = {round(b["top"] - a["bottom"]) for a, b in itertools.pairwise(rows) if a["output"] == b["output"]}
    for above, below in itertools.pairwise(rows):
        gap = round(below["top"] - above["bottom"])
        assert any(abs(gap - usual) <= 1 for usual in inside), f"a seam in the list: {gap}px, inside {inside}"
        assert below["left"] == above["left"]
    # The numbers go on across the cuts (each piece is its own <ol>, started where the one above ended).
    starts = cell.evaluate("cell => [...cell.querySelectorAll('.claude-text > ol')].map(ol => ol.start)")
    assert starts[0] == 1 and all(later > earlier for earlier, later in itertools.pairwise(starts))
    shot(page, "lab-long-list")


def test_a_long_table_is_shown_by_its_last_rows_while_it_streams_and_whole_once_complete(
    page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest
) -> None:
    rows = "\n".join(f"| {n} | item {n} | {n * 3.5} |" for n in range(1500))
    model.enqueue(
        Reply.text(f"The data:\n\n| id | name | value |\n|---|---|--:|\n{rows}\n\nDone.", chunk=16, delay=0.002)
    )
    notebook = _open(page, lab, request)
    cell = notebook.run(0, "Show the data")
    note = cell.locator(".claude-text div", has_text="characters so far")
    expect(note).to_be_visible(timeout=30_000)
    shown = cell.evaluate("cell => [...cell.querySelectorAll('.claude-text tbody tr')].length")
    assert 3 < shown < 200  # the header and the last rows, not the whole table
    assert cell.locator(".claude-text thead").count() == 1
    shot(page, "lab-long-table-streaming")
    notebook.wait_done(cell)
    assert note.count() == 0
    rows_shown = cell.evaluate(
        "cell => [...cell.querySelectorAll('.claude-text tbody tr')].map(tr => tr.cells[0].innerText)"
    )
    assert rows_shown == [str(n) for n in range(1500)]  # one table, every row, in order
