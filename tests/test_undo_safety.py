"""Undo never destroys work and never claims what it did not do (real CLI, kernel by kernelspec).

The CLI restores to before a message whatever happened since; these tests are the cases where
that loses work or silently does nothing: a hand edit, a ``%cwd``, two cells on one file, a file
deleted since.
"""

from __future__ import annotations

import time
from pathlib import Path
from queue import Empty
from typing import Any

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

pytestmark = pytest.mark.real_cli


def wait_for_comm_text(kernel: Any, text: str, timeout: float = 60) -> None:
    """Read iopub until a widget update carries ``text`` (a panel's status after a click)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kernel.client.get_iopub_msg(timeout=0.2)
        except Empty:
            continue
        if msg["msg_type"] == "comm_msg" and text in str(msg["content"]):
            return
    raise TimeoutError(f"no widget update with {text!r}")


def write_cell(kernel: Any, fake_api: FakeMessagesAPI, cell_id: str, path: Path, content: str) -> Any:
    fake_api.enqueue(Reply.tool("Write", {"file_path": str(path), "content": content}), Reply.text("Wrote it."))
    run = kernel.run(f"write {path.name}", cell_id=cell_id)
    assert run.reply["status"] == "ok", run.outputs
    assert path.read_text() == content
    return run


def test_a_hand_edit_is_never_lost_silently(lab_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path) -> None:
    notes = workdir / "notes.txt"
    lab_kernel.run("%permissions allow Write")
    run = write_cell(lab_kernel, fake_api, "c1", notes, "from Claude\n")
    notes.write_text("from Claude\nmy own line\n")

    refused = lab_kernel.run("%undo")
    assert refused.reply["status"] == "error" and "Nothing was changed yet" in refused.reply["evalue"]
    said = refused.reply["evalue"]
    assert "notes.txt" in said and "changed since" in said and "deletes" in said and "%undo force" in said
    assert notes.read_text() == "from Claude\nmy own line\n"

    # The panel asks the same way, then goes ahead only on the second, explicit click.
    button = run.button("Undo file changes")
    lab_kernel.click(button)
    wait_for_comm_text(lab_kernel, "changed since")
    assert notes.read_text() == "from Claude\nmy own line\n"
    lab_kernel.click(button)
    wait_for_comm_text(lab_kernel, "deleted (the cell had created them): notes.txt")
    assert not notes.exists()
    assert lab_kernel.run("%undo").reply["status"] == "error"  # nothing left to undo


def test_undo_after_cwd_restores_in_the_turns_own_folder(
    lab_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    target, elsewhere = workdir / "f.txt", workdir / "B"
    target.write_text("original\n")
    elsewhere.mkdir()
    lab_kernel.run("%permissions allow Write Read")
    fake_api.enqueue(
        Reply.tool("Read", {"file_path": str(target)}),
        Reply.tool("Write", {"file_path": str(target), "content": "changed\n"}),
        Reply.text("Changed."),
    )
    assert lab_kernel.run("change f", cell_id="c1").reply["status"] == "ok"
    assert target.read_text() == "changed\n"
    assert lab_kernel.run(f"%cwd {elsewhere}").reply["status"] == "ok"
    undone = lab_kernel.run("%undo")
    assert undone.reply["status"] == "ok", undone.outputs
    assert "restored as before the cell: " in undone.streamed() and "f.txt" in undone.streamed()
    assert target.read_text() == "original\n"
    assert not (elsewhere / "f.txt").exists()


def test_undoing_an_older_cell_undoes_the_later_ones_after_confirmation_and_never_reapplies(
    lab_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    target = workdir / "a.txt"
    target.write_text("zero\n")
    lab_kernel.run("%permissions allow Write Read")
    fake_api.enqueue(
        Reply.tool("Read", {"file_path": str(target)}),
        Reply.tool("Write", {"file_path": str(target), "content": "one\n"}),
        Reply.text("One."),
    )
    first = lab_kernel.run("one", cell_id="c1")
    fake_api.enqueue(Reply.tool("Write", {"file_path": str(target), "content": "two\n"}), Reply.text("Two."))
    lab_kernel.run("two", cell_id="c2")
    assert target.read_text() == "two\n"

    button = first.button("Undo file changes")
    lab_kernel.click(button)
    wait_for_comm_text(lab_kernel, "also undoes what later cells changed")
    assert target.read_text() == "two\n"
    lab_kernel.click(button)
    wait_for_comm_text(lab_kernel, "undone with it: cell 2")
    assert target.read_text() == "zero\n"

    again = lab_kernel.run("%undo")  # cell 2 was undone with cell 1: nothing is re-applied
    assert again.reply["status"] == "error" and "no cell" in again.reply["evalue"]
    assert target.read_text() == "zero\n"
    history = lab_kernel.run("%history").streamed()
    assert history.count("(undone)") == 2


def test_a_file_deleted_since_is_named_and_restored_only_when_confirmed(
    lab_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    target = workdir / "data.txt"
    target.write_text("original\n")
    lab_kernel.run("%permissions allow Write Read")
    fake_api.enqueue(
        Reply.tool("Read", {"file_path": str(target)}),
        Reply.tool("Write", {"file_path": str(target), "content": "changed\n"}),
        Reply.text("Changed."),
    )
    lab_kernel.run("change it", cell_id="c1")
    target.unlink()
    refused = lab_kernel.run("%undo")
    assert "Nothing was changed yet" in refused.reply["evalue"] and "data.txt" in refused.reply["evalue"]
    assert not target.exists()
    forced = lab_kernel.run("%undo force")
    assert forced.reply["status"] == "ok", forced.outputs
    assert target.read_text() == "original\n"
