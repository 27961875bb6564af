"""The per-notebook state file: a readable log, checked line by line, appended to, compacted on load."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from claude_kernel.notebook_state import Branch, CellTurn, StateFileDamaged, StateStore, notebook_name


def test_the_notebook_is_named_by_the_override_then_by_jupyter_server() -> None:
    assert notebook_name({"JPY_SESSION_NAME": "/a/b.ipynb"}) == "/a/b.ipynb"
    assert notebook_name({"JPY_SESSION_NAME": "/a/b.ipynb", "CLAUDE_KERNEL_NOTEBOOK": "x"}) == "x"
    assert notebook_name({}) is None


def test_round_trip_in_a_readable_file(tmp_path: Path) -> None:
    store = StateStore("/home/me/analysis one café.ipynb", root=tmp_path)
    state = store.load()
    state.set_session("s1")
    state.append_cell(CellTurn("c1", "u1", "l1", first_line="Load the café data", cost_usd=0.01))
    store.save(state)
    assert store.path.name.startswith("analysis_one_café.ipynb-") and store.path.suffix == ".jsonl"
    lines = [json.loads(line) for line in store.path.read_text(encoding="utf-8").splitlines()]
    assert [line["op"] for line in lines] == ["notebook", "session", "cell"]
    assert lines[0]["notebook"] == "/home/me/analysis one café.ipynb"
    assert lines[2]["first_line"] == "Load the café data"
    loaded = store.load()
    assert loaded.session_id == "s1" and loaded.index_of("c1") == 0 and loaded.index_of("c9") is None
    assert loaded.cells == state.cells


def test_saving_appends_only_what_changed(tmp_path: Path) -> None:
    store = StateStore("nb", root=tmp_path)
    state = store.load()
    state.set_session("s1")
    store.save(state)
    size = store.path.stat().st_size
    store.save(state)  # nothing changed: nothing written
    assert store.path.stat().st_size == size
    state.append_cell(CellTurn("c1", "u1", "l1"))
    state.set_cost(0.5)
    store.save(state)
    added = store.path.read_text(encoding="utf-8")[size:].splitlines()
    assert [json.loads(line)["op"] for line in added] == ["cell", "cost"]


def test_every_change_replays_to_the_same_state(tmp_path: Path) -> None:
    store = StateStore("nb", root=tmp_path)
    state = store.load()
    for index in range(3):
        state.append_cell(CellTurn(f"c{index}", f"u{index}", f"l{index}", files_changed=["a.txt"]))
    state.add_branch(Branch("s0", 3, "rewound at cell 2"))
    state.keep_cells(1)
    state.mark_undone("u0")
    state.set_session("s1")
    state.set_cost(1.25)
    state.set_budget(5.0)
    store.save(state)
    loaded = store.load()
    assert (loaded.cells, loaded.branches, loaded.session_id, loaded.cost_usd, loaded.budget_usd) == (
        state.cells,
        state.branches,
        "s1",
        1.25,
        5.0,
    )
    assert loaded.cells[0].files_undone
    loaded.reset()
    store.save(loaded)
    assert store.load().cells == [] and store.load().session_id is None


def test_a_long_log_is_compacted_on_load_by_its_owner(tmp_path: Path) -> None:
    store = StateStore("nb", root=tmp_path)
    assert store.claim()
    assert StateStore("nb", root=tmp_path).claim()  # the same process: still the one owner
    state = store.load()
    for index in range(200):  # 200 cost updates for one turn: the log outgrows the state
        state.set_cost(index + 1.0)
        store.save(state)
    state.append_cell(CellTurn("c1", "u1", "l1"))
    store.save(state)
    assert len(store.path.read_text(encoding="utf-8").splitlines()) > 200
    loaded = store.load()
    assert len(store.path.read_text(encoding="utf-8").splitlines()) < 10
    assert store.load() == loaded and loaded.cost_usd == 200.0 and len(loaded.cells) == 1


DAMAGED: dict[str, bytes] = {
    "a list": b"[]\n",
    "wrong types": (
        b'{"op": "notebook", "format": 2, "notebook": "nb"}\n{"op": "budget", "budget_usd": "5"}\n'
        b'{"op": "session", "session_id": 5}\n'
    ),
    "not UTF-8": b'{"op": "notebook", "format": 2, "notebook": "caf\xe9"}\n',
    "deep nesting": b'{"op": "notebook", "format": 2, "notebook": "nb", "x": '
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}\n",
    "truncated": b'{"op": "notebook", "format": 2, "notebook": "nb"}\n{"op": "session", "sess',
    "huge numbers": b'{"op": "notebook", "format": 2, "notebook": "nb"}\n{"op": "cost", "cost_usd": 1e999}\n',
    "a huge integer": b'{"op": "notebook", "format": 2, "notebook": "nb"}\n{"op": "cost", "cost_usd": '
    + b"9" * 5000
    + b"}\n",
    "a negative cost": b'{"op": "notebook", "format": 2, "notebook": "nb"}\n{"op": "cost", "cost_usd": -1}\n',
    "a cut beyond the chain": b'{"op": "notebook", "format": 2, "notebook": "nb"}\n{"op": "keep", "cells": 3}\n',
    "no header": b'{"op": "session", "session_id": "s"}\n',
    "an unknown operation": b'{"op": "notebook", "format": 2, "notebook": "nb"}\n{"op": "explode"}\n',
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_file_is_moved_aside_and_the_notebook_starts_afresh(tmp_path: Path, content: bytes) -> None:
    store = StateStore("nb", root=tmp_path)
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_bytes(content)
    with pytest.raises(StateFileDamaged) as raised:
        store.load()
    assert raised.value.aside.read_bytes() == content
    assert "damaged" in str(raised.value) and str(raised.value.aside) in str(raised.value)
    assert not store.path.exists()
    fresh = store.load()
    fresh.set_session("fresh")
    store.save(fresh)
    assert store.load().session_id == "fresh"


def _append_cells(root: str, writer: int, count: int) -> None:
    store = StateStore("shared.ipynb", root=Path(root))
    state = store.load()
    for index in range(count):
        state.append_cell(CellTurn(f"w{writer}-{index}", "u", None))
        store.save(state)


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


def test_the_notebooks_identity_survives_compaction(tmp_path: Path) -> None:
    store = StateStore("nb", root=tmp_path)
    state = store.load()
    state.append_cell(CellTurn("c1", "u1", "l1"))
    state.append_cell(CellTurn("c2", "u2", "l2"))
    state.keep_cells(1)  # c2 rewound away: still one of the notebook's cells
    state.set_file_stamp((1, 2, 3, 4))
    state.set_session("s1")
    store.save(state)
    state.notebook = "nb"
    store._rewrite(state)
    loaded = store.load()
    assert loaded.known_cells == {"c1", "c2"} and loaded.file_stamp == (1, 2, 3, 4)
    assert [c.cell_id for c in loaded.cells] == ["c1"]


def test_a_state_file_of_the_first_format_is_taken_over(tmp_path: Path) -> None:
    store = StateStore("nb", root=tmp_path)
    tmp_path.mkdir(exist_ok=True)
    old = {
        "notebook": "nb",
        "session_id": "s1",
        "cells": [{"cell_id": "c1", "prompt_uuid": "u1", "last_uuid": "l1", "files_changed": ["a.txt"]}],
        "branches": [{"session_id": "s0", "turns": 2, "reason": "%new"}],
        "cost_usd": 0.5,
        "budget_usd": 3.0,
    }
    store.path.with_suffix(".json").write_text(json.dumps(old, indent=2), encoding="utf-8")
    state = store.load()
    assert (state.session_id, state.cost_usd, state.budget_usd) == ("s1", 0.5, 3.0)
    assert state.cells[0].files_changed == ["a.txt"] and state.branches[0].session_id == "s0"
    assert store.path.exists() and not store.path.with_suffix(".json").exists()
    assert store.load() == state


def test_a_damaged_file_of_the_first_format_is_moved_aside(tmp_path: Path) -> None:
    store = StateStore("nb", root=tmp_path)
    store.path.with_suffix(".json").write_text('{"session_id": 5}', encoding="utf-8")
    with pytest.raises(StateFileDamaged) as raised:
        store.load()
    assert raised.value.aside.read_text(encoding="utf-8") == '{"session_id": 5}'
    assert store.load().session_id is None


def _claim(root: str) -> bool:
    return StateStore("nb", root=Path(root)).claim()


def test_one_process_owns_a_notebook(tmp_path: Path) -> None:
    assert StateStore("nb", root=tmp_path).claim()
    with multiprocessing.get_context("spawn").Pool(1) as other:
        assert other.apply(_claim, (str(tmp_path),)) is False
