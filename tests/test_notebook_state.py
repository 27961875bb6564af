"""The per-notebook state file: round trip, atomic writes, two kernels writing at once."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from claude_kernel.notebook_state import CellTurn, StateStore, notebook_name


def test_the_notebook_is_named_by_the_override_then_by_jupyter_server() -> None:
    assert notebook_name({"JPY_SESSION_NAME": "/a/b.ipynb"}) == "/a/b.ipynb"
    assert notebook_name({"JPY_SESSION_NAME": "/a/b.ipynb", "CLAUDE_KERNEL_NOTEBOOK": "x"}) == "x"
    assert notebook_name({}) is None


def test_round_trip_in_a_readable_file(tmp_path: Path) -> None:
    store = StateStore("/home/me/analysis one.ipynb", root=tmp_path)
    with store.update() as state:
        state.session_id = "s1"
        state.cells.append(CellTurn("c1", "u1", "l1", first_line="Load the data", cost_usd=0.01))
    assert store.path.name.startswith("analysis_one.ipynb-") and store.path.suffix == ".json"
    raw = json.loads(store.path.read_text())
    assert raw["notebook"] == "/home/me/analysis one.ipynb" and raw["cells"][0]["first_line"] == "Load the data"
    loaded = store.load()
    assert loaded.session_id == "s1" and loaded.index_of("c1") == 0 and loaded.index_of("c9") is None


def test_other_notebooks_have_other_files(tmp_path: Path) -> None:
    assert StateStore("/a/x.ipynb", root=tmp_path).path != StateStore("/b/x.ipynb", root=tmp_path).path


def test_a_damaged_file_is_kept_aside_and_replaced(tmp_path: Path) -> None:
    store = StateStore("nb", root=tmp_path)
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text("{not json")
    with store.update() as state:
        state.session_id = "fresh"
    assert store.load().session_id == "fresh"
    assert store.path.with_suffix(".damaged.json").read_text() == "{not json"


def _append_cells(root: str, writer: int, count: int) -> None:
    store = StateStore("shared.ipynb", root=Path(root))
    for index in range(count):
        with store.update() as state:
            state.cells.append(CellTurn(f"w{writer}-{index}", "u", None))


def test_two_kernels_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_cells, args=(str(tmp_path), w, 40)) for w in range(2)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
    cells = StateStore("shared.ipynb", root=tmp_path).load().cells
    assert len(cells) == 80 and len({c.cell_id for c in cells}) == 80
    assert not list(tmp_path.glob(".tmp-*"))
