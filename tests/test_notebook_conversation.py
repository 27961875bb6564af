"""The notebook is the conversation: restarts continue it, re-runs rewind it, Undo restores files.

Driven as JupyterLab drives a kernel: cell ids in each execute_request's metadata, the notebook's
path in ``JPY_SESSION_NAME``; the fake model's request bodies show what Claude remembers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .conftest import _running_kernel

pytestmark = pytest.mark.real_cli


def remembered(request: dict[str, Any]) -> list[str]:
    """The user's own words in every user message of a request to the model (what Claude sees)."""
    texts = []
    for message in request.get("messages", []):
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if message.get("role") != "user":
            continue
        texts += [
            b["text"]
            for b in blocks
            if b.get("type") == "text" and not b["text"].lstrip().startswith("<system-reminder>")
        ]
    return texts


def restart(kernel: Any) -> None:
    kernel.manager.restart_kernel(now=False)
    kernel.client.wait_for_ready(timeout=60)


def test_a_restart_continues_the_notebooks_conversation(
    lab_kernel: Any, fake_api: FakeMessagesAPI, kernelspec_path: str, cli_env: dict[str, str], workdir: Path
) -> None:
    fake_api.enqueue(Reply.text("Noted: HERON."), Reply.text("HERON."))
    assert lab_kernel.run("Remember HERON", cell_id="c1").reply["status"] == "ok"
    restart(lab_kernel)
    after = lab_kernel.run("Which bird?", cell_id="c2")
    assert after.reply["status"] == "ok", after.outputs
    assert remembered(fake_api.requests[-1]) == ["Remember HERON", "Which bird?"]
    assert "Continuing this notebook's conversation" in after.plain() and "1 turns" in after.plain()
    again = lab_kernel.run("And now?", cell_id="c3")
    assert "Continuing" not in again.plain()  # said once

    # Another notebook has its own conversation.
    other_env = {**cli_env, "JPY_SESSION_NAME": str(workdir / "other.ipynb")}
    for other in _running_kernel("claude", other_env, workdir):
        fake_api.enqueue(Reply.text("No idea."))
        other.run("Which bird?", cell_id="c1")
        assert remembered(fake_api.requests[-1]) == ["Which bird?"]


def test_rerunning_an_earlier_cell_rewinds_the_conversation(lab_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    for cell, text in (("c1", "one: ANT"), ("c2", "two: BEE"), ("c3", "three: CAT")):
        fake_api.enqueue(Reply.text(f"ok {text}"))
        assert lab_kernel.run(text, cell_id=cell).reply["status"] == "ok"
    fake_api.enqueue(Reply.text("ok edited"))
    rerun = lab_kernel.run("two, edited: DOG", cell_id="c2")
    assert rerun.reply["status"] == "ok", rerun.outputs
    assert remembered(fake_api.requests[-1]) == ["one: ANT", "two, edited: DOG"]
    assert "1 later cell no longer in the conversation" in rerun.plain()
    assert "could not rewind in place" not in rerun.plain()  # the running CLI rewound, no fork
    fake_api.enqueue(Reply.text("ok four"))
    lab_kernel.run("four: EEL", cell_id="c4")
    assert remembered(fake_api.requests[-1]) == ["one: ANT", "two, edited: DOG", "four: EEL"]

    # Re-running the last cell replaces its exchange (a retry).
    fake_api.enqueue(Reply.text("ok retried"))
    retry = lab_kernel.run("four, again: FOX", cell_id="c4")
    assert remembered(fake_api.requests[-1]) == ["one: ANT", "two, edited: DOG", "four, again: FOX"]
    assert "replaces its earlier exchange" in retry.plain()

    # The first cell again: nothing before it, a fresh start; the history shows the branches.
    fake_api.enqueue(Reply.text("ok again"))
    lab_kernel.run("one again: GNU", cell_id="c1")
    assert remembered(fake_api.requests[-1]) == ["one again: GNU"]
    history = lab_kernel.run("%history")
    text = history.streamed()
    assert "one again: GNU" in text and "earlier branches" in text and "dropped in place" in text


def test_append_mode_and_cells_without_ids_append(lab_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.text("a"), Reply.text("b"), Reply.text("c"))
    lab_kernel.run("first", cell_id="c1")
    lab_kernel.run("%rerun append")
    lab_kernel.run("first again", cell_id="c1")
    assert remembered(fake_api.requests[-1]) == ["first", "first again"]
    lab_kernel.run("no id")
    assert remembered(fake_api.requests[-1]) == ["first", "first again", "no id"]


def test_undo_restores_the_files_a_cell_changed(lab_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path) -> None:
    target = workdir / "notes.txt"
    target.write_text("original\n")
    fake_api.enqueue(
        Reply.tool("Write", {"file_path": str(target), "content": "rewritten\n"}),
        Reply.tool("Edit", {"file_path": str(target), "old_string": "rewritten", "new_string": "edited"}),
        Reply.text("Changed it."),
    )
    assert lab_kernel.run("%permissions allow Write Edit").reply["status"] == "ok"
    run = lab_kernel.run("rewrite the notes", cell_id="c1")
    assert target.read_text() == "edited\n"
    assert "This cell changed" in run.plain() and "notes.txt" in run.plain()
    lab_kernel.click(run.button("Undo file changes"))
    lab_kernel.pump(run, until=lambda e: target.read_text() == "original\n", timeout=30)
    assert target.read_text() == "original\n"


def test_undo_magic_and_a_rewind_offers_to_undo_dropped_changes(
    lab_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    target = workdir / "data.csv"
    target.write_text("a,b\n")
    lab_kernel.run("%permissions allow Write")
    fake_api.enqueue(Reply.text("Looked."))
    lab_kernel.run("look at the data", cell_id="c1")
    fake_api.enqueue(Reply.tool("Write", {"file_path": str(target), "content": "x,y\n"}), Reply.text("Wrote."))
    lab_kernel.run("rewrite the data", cell_id="c2")
    assert target.read_text() == "x,y\n"
    fake_api.enqueue(Reply.text("Looked again."))
    rewound = lab_kernel.run("look again", cell_id="c1")
    assert target.read_text() == "x,y\n"  # never restored silently
    assert rewound.button("Undo file changes")
    undone = lab_kernel.run("%undo")
    assert undone.reply["status"] == "error"  # the chain no longer holds the cell that wrote
    lab_kernel.click(rewound.button("Undo file changes"))
    lab_kernel.pump(rewound, until=lambda e: target.read_text() == "a,b\n", timeout=30)


def test_a_headless_run_starts_fresh_and_can_resume_explicitly(lab_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.text("Noted."))
    lab_kernel.run("Remember OWL", cell_id="c1")
    restart(lab_kernel)
    fake_api.enqueue(Reply.text("Fresh."))
    fresh = lab_kernel.run("Which bird?", allow_stdin=False)
    assert remembered(fake_api.requests[-1]) == ["Which bird?"]
    assert "Headless run: a fresh conversation" in fresh.plain()
    fake_api.enqueue(Reply.text("OWL."))
    lab_kernel.run("%resume last\nWhich bird, really?", allow_stdin=False)
    assert remembered(fake_api.requests[-1]) == ["Remember OWL", "Which bird, really?"]


def test_magic_keeps_the_notebooks_conversation_across_restarts(
    kernelspec_path: str, notebook_env: dict[str, str], workdir: Path, fake_api: FakeMessagesAPI
) -> None:
    for kernel in _running_kernel("python3", notebook_env, workdir):
        kernel.run("%load_ext claude_kernel")
        fake_api.enqueue(Reply.text("Noted."), Reply.text("a"), Reply.text("b"), Reply.text("KIWI."))
        kernel.run("%%claude\nRemember KIWI", cell_id="m1")
        kernel.run("%%claude\nsecond", cell_id="m2")
        kernel.run("%%claude\nsecond, edited", cell_id="m2")
        assert remembered(fake_api.requests[-1]) == ["Remember KIWI", "second, edited"]
        restart(kernel)
        kernel.run("%load_ext claude_kernel")
        after = kernel.run("%%claude\nWhich bird?", cell_id="m3")
        assert after.reply["status"] == "ok", after.outputs
        assert remembered(fake_api.requests[-1]) == ["Remember KIWI", "second, edited", "Which bird?"]


def test_the_budget_stops_a_turn_and_holds_across_restarts(lab_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.text("ok"))
    first = lab_kernel.run("price one turn", cell_id="c1")
    cost = float(first.plain().rsplit("$", 2)[-2].split()[0])  # "... · $0.0005 (session $0.0005)"
    assert cost > 0
    budget = 2.5 * cost
    assert lab_kernel.run(f"%budget {budget}").reply["status"] == "ok"
    assert lab_kernel.run("%permissions allow Read").reply["status"] == "ok"  # a CLI restart
    fake_api.enqueue(Reply.text("ok"), Reply.text("ok"), Reply.text("ok"))
    second = lab_kernel.run("two", cell_id="c2")
    assert second.reply["status"] == "ok" and " of $" in second.plain()  # spent of budget
    restart(lab_kernel)  # the kernel too: the notebook keeps its budget and what it spent
    third = lab_kernel.run("three", cell_id="c3")  # the CLI checks after spending: this one goes over
    assert third.reply["status"] == "error" and third.reply["ename"] == "BudgetExceededError", third.outputs
    assert "budget of" in third.reply["evalue"] and "%budget" in third.reply["evalue"]
    requests = len(fake_api.requests)
    refused = lab_kernel.run("four", cell_id="c4")
    assert refused.reply["ename"] == "BudgetExceededError" and len(fake_api.requests) == requests
    assert lab_kernel.run("%budget 5").reply["status"] == "ok"
    fake_api.enqueue(Reply.text("ok again"))
    assert lab_kernel.run("five", cell_id="c5").reply["status"] == "ok"
