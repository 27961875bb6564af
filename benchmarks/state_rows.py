"""The notebook's bookkeeping after each cell, by notebook size: saving must not grow with the notebook.

After every cell the kernel records the cell's turn, the session and the cost in the notebook's
state file (``claude_kernel.notebook_state``). This times exactly that save (the changes a cell
makes, then ``StateStore.save``) on a state file already holding 10, 300 and 3,000 turns, and
loading such a file (a kernel start), which replays the log and compacts it when it has grown.

Run alone: ``.venv/bin/python benchmarks/state_rows.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script

from benchmarks.common import Check, Measure, Row, own_heap, spread
from claude_kernel.notebook_state import CellTurn, NotebookState, StateStore

SIZES = (10, 300, 3000)


def _turn(index: int) -> CellTurn:
    return CellTurn(
        f"cell-{index:05d}",
        f"prompt-{index:08d}-0000-0000-0000-000000000000",
        f"last-{index:08d}-0000-0000-0000-000000000000",
        first_line=f"Plot the results of experiment {index} against the baseline",
        cost_usd=0.0123,
        files_changed=["analysis/plot.py"] if index % 5 == 0 else [],
        cwd="/home/me/project",
    )


def _one_cell(store: StateStore, state: NotebookState, index: int) -> float:
    """The seconds one cell's bookkeeping takes: what ``Conversation.after_turn`` changes, then the save."""
    began = time.perf_counter()
    state.append_cell(_turn(index))
    state.set_session("0b8e2f4c-0000-0000-0000-000000000000")
    state.set_cost(state.cost_usd + 0.0123)
    store.save(state)
    return time.perf_counter() - began


def save_cost(*, saves: int) -> Row:
    row = Row(12, "The notebook's bookkeeping after each cell, by notebook size")
    medians: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="claude-bench-state-") as tmp:
        for size in SIZES:
            store = StateStore(f"/home/me/notebook-{size}.ipynb", root=Path(tmp))
            state = store.load()
            for index in range(size):
                state.append_cell(_turn(index))
                state.set_cost(state.cost_usd + 0.0123)
            store.save(state)
            with own_heap():
                began = time.perf_counter()
                state = store.load()  # a kernel start: replay, and compaction of the grown log
                loaded = time.perf_counter() - began
                samples = [_one_cell(store, state, size + n) for n in range(saves)]
            medians[size] = spread(samples)[0]
            row.measures.append(Measure(f"save after a cell, {size:,} cells", samples, "ms", scale=1e3))
            row.measures.append(Measure(f"load at kernel start, {size:,} cells", [loaded], "ms", scale=1e3))
    ratio = medians[SIZES[-1]] / medians[SIZES[0]]
    row.checks = [Check(f"save at {SIZES[-1]:,} cells / at {SIZES[0]}", ratio, "<= 1.5x", ratio <= 1.5)]
    row.note = "before (whole file reloaded and rewritten per cell): 0.7 ms at 10 cells, 8.4 ms at 300, 65 ms at 3,000"
    return row


if __name__ == "__main__":
    from benchmarks.run import table

    print(table([save_cost(saves=200)]))
