"""A long table, quote or loose list still streaming: the renderer's CPU for it must grow with its size.

The answer streams in deltas of about one row (or line, or item) into a ``TurnView`` redrawn every
2,000 new characters (four redraws a second at 8 KB/s). Each redraw used to parse the whole block
again, so a block's cost grew with its square: 5,000 table rows took 21.8 s of CPU in a kernel.
This times the renderer alone (``time.process_time``) for 2,000 and 5,000 rows (lines, items) and
checks that 2.5 times the size costs about 2.5 times the CPU, not 6.

Run alone: ``.venv/bin/python benchmarks/preview_rows.py``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the tests' helpers too

from benchmarks.common import Check, Measure, Row, own_heap
from claude_kernel.render import TurnView
from tests.test_render import message_end, stream

REDRAW_EVERY = 2000


def _table(rows: int) -> list[str]:
    rows_ = (f"| {n} | row {n} | {n * 7 % 1000} |\n" for n in range(rows))
    return ["| n | name | value |\n", "|---|---|---|\n", *rows_]


def _quote(rows: int) -> list[str]:
    return [f"> line {n} of a long quotation, with *emphasis*\n" for n in range(rows)]


def _loose_list(rows: int) -> list[str]:
    return [f"- item {n}, a loose list\n\n" for n in range(rows)]


KINDS: dict[str, Callable[[int], list[str]]] = {"table": _table, "quote": _quote, "loose list": _loose_list}


def cpu_seconds(pieces: list[str]) -> float:
    """CPU to stream ``pieces`` into a view redrawn every REDRAW_EVERY characters, and finish it."""
    view = TurnView()
    began = time.process_time()
    pending = 0
    for piece, event in zip(pieces, stream("m1", *pieces), strict=True):
        view.apply(event)
        pending += len(piece)
        if pending >= REDRAW_EVERY:
            view.bundles()
            pending = 0
    view.apply(message_end("m1"))
    view.bundles()
    return time.process_time() - began


def preview_cost(*, repeats: int) -> Row:
    row = Row(13, "A long table, quote or loose list still streaming: renderer CPU by size")
    for kind, make in KINDS.items():
        with own_heap():
            small = [cpu_seconds(make(2000)) for _ in range(repeats)]
            large = [cpu_seconds(make(5000)) for _ in range(repeats)]
        row.measures.append(Measure(f"{kind}, 2,000 rows", small, "s"))
        row.measures.append(Measure(f"{kind}, 5,000 rows", large, "s"))
        ratio = min(large) / min(small)
        label = f"{kind}: CPU at 5,000 / at 2,000 rows (2.5 = linear)"
        row.checks.append(Check(label, ratio, "<= 3.5x", ratio <= 3.5))
    row.note = (
        "before (each redraw parsed the whole block), same script: table 1.16 s / 7.89 s (6.8x), "
        "quote 0.46 / 2.41 s (5.3x), loose list 0.65 / 4.43 s (6.8x)"
    )
    return row


if __name__ == "__main__":
    from benchmarks.run import table

    print(table([preview_cost(repeats=1)]))
