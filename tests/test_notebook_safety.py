"""The notebook's saved conversation can never stop the kernel or withhold a reply.

Kernels started through their kernelspec on the real CLI and the fake Messages API, with the
notebook's path in ``JPY_SESSION_NAME`` as jupyter_server sets it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.notebook_state import StateStore
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .conftest import _running_kernel
from .test_notebook_conversation import remembered, restart
from .test_notebook_state import DAMAGED

pytestmark = pytest.mark.real_cli


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "jupyter-data"


@pytest.fixture
def notebook(workdir: Path) -> str:
    return str(workdir / "analysis.ipynb")


@pytest.fixture
def notebook_env(cli_env: dict[str, str], notebook: str, data_dir: Path) -> dict[str, str]:
    return {**cli_env, "JPY_SESSION_NAME": notebook, "JUPYTER_DATA_DIR": str(data_dir)}


def store_of(notebook: str, data_dir: Path) -> StateStore:
    return StateStore(notebook, root=data_dir / "claude_kernel" / "notebooks")


KERNEL_DAMAGE = ("a list", "wrong types", "not UTF-8", "deep nesting", "truncated", "huge numbers")


@pytest.mark.parametrize("kind", KERNEL_DAMAGE)
def test_a_damaged_state_file_is_set_aside_and_the_notebook_starts_afresh(
    kind: str,
    kernelspec_path: str,
    notebook_env: dict[str, str],
    notebook: str,
    data_dir: Path,
    workdir: Path,
    fake_api: FakeMessagesAPI,
) -> None:
    store = store_of(notebook, data_dir)
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(DAMAGED[kind])
    for kernel in _running_kernel("claude", notebook_env, workdir):  # it starts: kernel_info answered
        fake_api.enqueue(Reply.text("Hello."))
        first = kernel.run("Hello", cell_id="c1")
        assert first.reply is not None and first.reply["status"] == "ok", first.outputs
        assert "was damaged" in first.plain() and "fresh conversation" in first.plain()
        assert remembered(fake_api.requests[-1]) == ["Hello"]
        aside = list(store.path.parent.glob("*.damaged-*.jsonl"))
        assert len(aside) == 1 and aside[0].read_bytes() == DAMAGED[kind]
        # The fresh conversation is saved again, and the note is said once.
        fake_api.enqueue(Reply.text("Again."))
        second = kernel.run("Again", cell_id="c2")
        assert "damaged" not in second.plain()
        assert store.load().session_id is not None and len(store.load().cells) == 2


def test_a_non_utf8_locale_saves_and_answers(
    kernelspec_path: str,
    notebook_env: dict[str, str],
    notebook: str,
    data_dir: Path,
    workdir: Path,
    fake_api: FakeMessagesAPI,
) -> None:
    # LC_ALL=C alone puts Python in UTF-8 mode (PEP 540); PYTHONUTF8=0 makes the locale's ASCII win,
    # as on a host whose locale encoding is not UTF-8.
    env = {**notebook_env, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    for kernel in _running_kernel("claude", env, workdir):
        fake_api.enqueue(Reply.text("Noted: café."), Reply.text("café"))
        first = kernel.run("Remember café", cell_id="c1")
        assert first.reply is not None and first.reply["status"] == "ok", first.outputs
        assert "Could not save" not in first.streamed()
        assert store_of(notebook, data_dir).load().cells[0].first_line == "Remember café"
        restart(kernel)
        after = kernel.run("Which word?", cell_id="c2")
        assert after.reply is not None and after.reply["status"] == "ok", after.outputs
        assert remembered(fake_api.requests[-1]) == ["Remember café", "Which word?"]


def test_a_state_that_cannot_be_saved_is_reported_and_the_reply_still_comes(
    kernelspec_path: str,
    notebook_env: dict[str, str],
    data_dir: Path,
    workdir: Path,
    fake_api: FakeMessagesAPI,
) -> None:
    (data_dir / "claude_kernel").mkdir(parents=True)
    (data_dir / "claude_kernel" / "notebooks").write_text("a file where the folder belongs")
    for kernel in _running_kernel("claude", notebook_env, workdir):
        fake_api.enqueue(Reply.text("One."), Reply.text("Two."))
        first = kernel.run("one", cell_id="c1")
        assert first.reply is not None and first.reply["status"] == "ok", first.outputs
        assert "Could not save this notebook's conversation" in first.streamed()
        second = kernel.run("two", cell_id="c2")
        assert second.reply is not None and second.reply["status"] == "ok", second.outputs
        assert remembered(fake_api.requests[-1]) == ["one", "two"]


def write_notebook(path: Path, cell_ids: list[str]) -> None:
    """A notebook file as jupyter_server saves it (in place), holding cells with these ids."""
    cells = [{"id": i, "cell_type": "markdown", "metadata": {}, "source": "x"} for i in cell_ids]
    content = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    with open(path, "w", encoding="utf-8") as out:
        json.dump(content, out)


def test_a_new_notebook_at_an_old_path_starts_afresh(
    kernelspec_path: str,
    notebook_env: dict[str, str],
    notebook: str,
    data_dir: Path,
    workdir: Path,
    fake_api: FakeMessagesAPI,
) -> None:
    write_notebook(Path(notebook), [])
    for kernel in _running_kernel("claude", notebook_env, workdir):
        fake_api.enqueue(Reply.text("Noted."))
        assert kernel.run("The secret is PUMA", cell_id="old-1").reply["status"] == "ok"
        assert kernel.run("%budget 1").reply["status"] == "ok"
    Path(notebook).unlink()
    keep_inode_busy = workdir / "other.txt"
    keep_inode_busy.write_text("so the new notebook cannot reuse the old one's inode")
    write_notebook(Path(notebook), [])  # Untitled.ipynb again: another notebook, the same name
    for kernel in _running_kernel("claude", notebook_env, workdir):
        fake_api.enqueue(Reply.text("No secret here."))
        fresh = kernel.run("What is the secret?", cell_id="new-1")
        assert fresh.reply is not None and fresh.reply["status"] == "ok", fresh.outputs
        assert remembered(fake_api.requests[-1]) == ["What is the secret?"]
        assert "starts its own" in fresh.plain() and "set aside" in fresh.plain()
        state = store_of(notebook, data_dir).load()
        assert state.budget_usd is None and [c.cell_id for c in state.cells] == ["new-1"]
        assert len(list(store_of(notebook, data_dir).path.parent.glob("*.set-aside-*.jsonl"))) == 1


@pytest.mark.parametrize("saved", [True, False], ids=["saved", "never saved"])
def test_the_same_notebook_continues_when_a_new_cell_runs_first_after_a_restart(
    saved: bool,
    kernelspec_path: str,
    notebook_env: dict[str, str],
    notebook: str,
    workdir: Path,
    fake_api: FakeMessagesAPI,
) -> None:
    write_notebook(Path(notebook), [])
    for kernel in _running_kernel("claude", notebook_env, workdir):
        fake_api.enqueue(Reply.text("Noted: HERON."), Reply.text("HERON."))
        assert kernel.run("Remember HERON", cell_id="c1").reply["status"] == "ok"
        if saved:
            write_notebook(Path(notebook), ["c1", "c2"])
        restart(kernel)
        after = kernel.run("Which bird?", cell_id="c2")
        assert after.reply is not None and after.reply["status"] == "ok", after.outputs
        assert remembered(fake_api.requests[-1]) == ["Remember HERON", "Which bird?"]
        assert "Continuing this notebook's conversation" in after.plain()


def test_a_renamed_notebook_keeps_its_conversation(
    kernelspec_path: str,
    notebook_env: dict[str, str],
    notebook: str,
    data_dir: Path,
    workdir: Path,
    fake_api: FakeMessagesAPI,
) -> None:
    write_notebook(Path(notebook), [])
    for kernel in _running_kernel("claude", notebook_env, workdir):
        fake_api.enqueue(Reply.text("Noted: LYNX."))
        assert kernel.run("Remember LYNX", cell_id="c1").reply["status"] == "ok"
    renamed = workdir / "renamed.ipynb"
    Path(notebook).rename(renamed)
    for kernel in _running_kernel("claude", {**notebook_env, "JPY_SESSION_NAME": str(renamed)}, workdir):
        fake_api.enqueue(Reply.text("LYNX."))
        after = kernel.run("Which animal?", cell_id="c2")
        assert after.reply is not None and after.reply["status"] == "ok", after.outputs
        assert remembered(fake_api.requests[-1]) == ["Remember LYNX", "Which animal?"]
        assert "was " + notebook + " before" in after.plain()
    assert not store_of(notebook, data_dir).path.exists()
    assert store_of(str(renamed), data_dir).load().notebook == str(renamed)


def _a_second_kernel_on_the_notebook(
    notebook_env: dict[str, str], workdir: Path, fake_api: FakeMessagesAPI, word: str
) -> Iterator[tuple[Any, Any]]:
    """The notebook's kernel, which has been told to remember ``word``, and a second kernel on it."""
    for first in _running_kernel("claude", notebook_env, workdir):
        fake_api.enqueue(Reply.text(f"Noted: {word}."))
        assert first.run(f"Remember {word}", cell_id="c1").reply["status"] == "ok"
        for second in _running_kernel("claude", notebook_env, workdir):
            yield first, second


def test_a_second_kernel_on_the_notebook_forks_and_the_budget_counts_both(
    kernelspec_path: str,
    notebook_env: dict[str, str],
    notebook: str,
    data_dir: Path,
    workdir: Path,
    fake_api: FakeMessagesAPI,
) -> None:
    for first, second in _a_second_kernel_on_the_notebook(notebook_env, workdir, fake_api, "OWL"):
        fake_api.enqueue(Reply.text("OWL."))
        forked = second.run("Which bird?", cell_id="c2")
        assert forked.reply is not None and forked.reply["status"] == "ok", forked.outputs
        assert "Another kernel is running this notebook's conversation" in forked.plain()
        assert remembered(fake_api.requests[-1]) == ["Remember OWL", "Which bird?"]
        # A budget that one more turn of the first kernel crosses, counting what the fork spent.
        state = store_of(notebook, data_dir).load()
        [fork_cost] = state.guest_costs.values()
        assert first.run(f"%budget {1.5 * state.cost_usd + fork_cost}").reply["status"] == "ok"

        fake_api.enqueue(Reply.text("Next."))
        own = first.run("next", cell_id="c3")
        assert own.reply is not None and own.reply["status"] == "ok", own.outputs
        assert remembered(fake_api.requests[-1]) == ["Remember OWL", "next"]  # nothing of the fork

        # Both kernels' spending together is past the budget: the fork is refused before sending.
        requests = len(fake_api.requests)
        refused = second.run("more", cell_id="c4")
        assert refused.reply is not None and refused.reply["ename"] == "BudgetExceededError", refused.outputs
        assert len(fake_api.requests) == requests
    for again in _running_kernel("claude", notebook_env, workdir):
        again.run("%budget off")
        fake_api.enqueue(Reply.text("Still OWL."))
        after = again.run("and now?", cell_id="c5")
        assert after.reply is not None and after.reply["status"] == "ok", after.outputs
        assert remembered(fake_api.requests[-1]) == ["Remember OWL", "next", "and now?"]
        history = again.run("%history").streamed()
        assert "a second kernel on this notebook" in history


def test_a_transcript_gone_is_explained_once_and_a_fresh_conversation_starts(
    kernelspec_path: str,
    notebook_env: dict[str, str],
    cli_env: dict[str, str],
    notebook: str,
    data_dir: Path,
    workdir: Path,
    fake_api: FakeMessagesAPI,
) -> None:
    for kernel in _running_kernel("claude", notebook_env, workdir):
        fake_api.enqueue(Reply.text("Noted: WREN."))
        assert kernel.run("Remember WREN", cell_id="c1").reply["status"] == "ok"
        session_id = store_of(notebook, data_dir).load().session_id
        spent = store_of(notebook, data_dir).load().cost_usd
    # What the CLI's cleanup (cleanupPeriodDays) or another host leaves: no transcript.
    transcripts = list(Path(cli_env["HOME"], ".claude", "projects").rglob(f"{session_id}.jsonl"))
    assert transcripts
    for transcript in transcripts:
        transcript.unlink()
    for kernel in _running_kernel("claude", notebook_env, workdir):
        fake_api.enqueue(Reply.text("No idea."), Reply.text("Still none."))
        fresh = kernel.run("Which bird?", cell_id="c2")
        assert fresh.reply is not None and fresh.reply["status"] == "ok", fresh.outputs
        assert remembered(fake_api.requests[-1]) == ["Which bird?"]
        assert "could not be continued" in fresh.plain() and "cleanupPeriodDays" in fresh.plain()
        later = kernel.run("And now?", cell_id="c3")
        assert "could not be continued" not in later.plain()
        assert remembered(fake_api.requests[-1]) == ["Which bird?", "And now?"]
        said = kernel.run("%session").streamed()
        assert f"session {session_id} could not be continued" in said
        assert store_of(notebook, data_dir).load().cost_usd > spent  # what it cost still counts


def test_a_second_kernel_restarting_its_cli_before_its_first_cell_keeps_the_notebooks_context(
    kernelspec_path: str,
    notebook_env: dict[str, str],
    notebook: str,
    workdir: Path,
    fake_api: FakeMessagesAPI,
) -> None:
    """Its fork has no transcript before a turn: a restart forks the notebook again, not nothing."""
    for _, second in _a_second_kernel_on_the_notebook(notebook_env, workdir, fake_api, "WREN"):
        moved = second.run(f"%cwd {workdir}")  # restarts the CLI, conversation kept
        assert moved.reply is not None and moved.reply["status"] == "ok", moved.outputs
        fake_api.enqueue(Reply.text("WREN."))
        forked = second.run("Which bird?", cell_id="c2")
        assert forked.reply is not None and forked.reply["status"] == "ok", forked.outputs
        assert "could not be continued" not in forked.plain()
        assert remembered(fake_api.requests[-1]) == ["Remember WREN", "Which bird?"]
