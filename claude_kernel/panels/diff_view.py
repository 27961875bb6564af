"""A proposed file change in an approval panel, readable in full before Allow.

A diff longer than ``diff.MAX_LINES`` rows is drawn up to there (drawing thousands of rows on every
panel costs the page), with a button that draws the rest on demand: a payload on line 1,401 of a
new file can be read before it is allowed.
"""

from __future__ import annotations

import ipywidgets as w

from ..diff import MAX_LINES, Change, diff_html, diff_rows

__all__ = ["diff_view"]


def diff_view(change: Change) -> list[w.Widget]:
    view = w.HTML(diff_html(change), layout=w.Layout(width="100%"))
    view.add_class("claude-diff-panel")
    total = diff_rows(change)
    if total <= MAX_LINES:
        return [view]
    more = w.Button(
        description=f"Show all {total:,} lines",
        icon="expand",
        tooltip="Draw the whole diff here, before you decide",
        layout=w.Layout(width="auto"),
    )

    def show_all(_: w.Button) -> None:
        view.value = diff_html(change, limit=total)
        more.layout.display = "none"

    more.on_click(show_all)
    return [view, more]
