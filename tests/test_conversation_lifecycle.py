"""The conversation's life across starts of the CLI: guests, identity, trust, rewinds, branches, ledgers.

Most tests run the replay fake CLI (``fake_cli.py``), whose argv log tells how often and how the
CLI was started; the CLI's own turns need the real one.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from claude_kernel.conversation import Conversation, MagicError, UndoOffer
from claude_kernel.notebook_state import Branch, CellTurn, StateStore
from claude_kernel.session import OwnTurnStarted, Result, Session, SessionError
from claude_kernel.session import _session as session_module
from claude_kernel.testing.agents import DelegatingModel
from claude_kernel.testing.fake_api import FakeMessagesAPI
from claude_kernel.trust import OPT_IN, ProjectCommands

from .conftest import wait_until_dead
from .helpers import collect_turn, of_type

pytestmark = pytest.mark.anyio


def _argvs(tmp_path: Path) -> list[list[str]]:
    """The fake CLI's argv, one list per start."""
    return [json.loads(line) for line in (tmp_path / "argv.log").read_text().splitlines()]


async def _ask(session: Session, text: str) -> Result:
    await session.send_message(text)
    return of_type(await collect_turn(session), Result)[0]


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def untrusted_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake CLI's folder with an MCP server in ``.mcp.json``, nobody's answer yet."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.delenv(OPT_IN, raising=False)
    server = {"mcpServers": {"local": {"command": "./serve", "args": []}}}
    (tmp_path / ".mcp.json").write_text(json.dumps(server), encoding="utf-8")
    return tmp_path


def _save(state_root: Path, notebook: str, session_id: str, cells: list[CellTurn]) -> StateStore:
    store = StateStore(notebook, root=state_root)
    state = store.load()
    state.set_session(session_id)
    for cell in cells:
        state.append_cell(cell)
    store.save(state)
    return store


@pytest.fixture
def owned_elsewhere(state_root: Path) -> Iterator[str]:
    """A notebook whose conversation another kernel runs: it holds the owner lock (an flock on
    another open file conflicts even within this process)."""
    store = _save(state_root, "guest.ipynb", "owner-session", [CellTurn("c1", "u1", "l1")])
    holder = os.open(store.path.with_suffix(".owner"), os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield store.notebook
    finally:
        os.close(holder)


async def test_a_guest_forks_once_then_continues_its_own_branch(
    fake_cli_options: Any, tmp_path: Path, state_root: Path, owned_elsewhere: str
) -> None:
    conversation = Conversation(fake_cli_options(), notebook=owned_elsewhere, state_root=state_root)
    try:
        session = await conversation.ensure_session()
        await _ask(session, "hello")
        branch = conversation.current_session_id
        await conversation.restart()  # what %cwd, %tool, a trust answer or an idle stop's restart do
    finally:
        await conversation.close()
    first, second = _argvs(tmp_path)
    assert "--resume=owner-session" in first and "--fork-session" in first
    assert f"--resume={branch}" in second and "--fork-session" not in second


async def test_a_guest_restarted_before_its_first_turn_forks_the_notebook_again(
    fake_cli_options: Any, tmp_path: Path, state_root: Path, owned_elsewhere: str
) -> None:
    """The fork's own id has no transcript until its first turn: resuming it would find nothing."""
    conversation = Conversation(fake_cli_options(), notebook=owned_elsewhere, state_root=state_root)
    try:
        await conversation.ensure_session()
        await conversation.restart()  # a trust answer, %cwd or %tool before the guest's first cell
        assert conversation.current_session_id != "owner-session"
        await _ask(await conversation.ensure_session(), "hello")
        branch = conversation.current_session_id
        await conversation.restart()
    finally:
        await conversation.close()
    first, second, third = _argvs(tmp_path)
    for argv in (first, second):
        assert "--resume=owner-session" in argv and "--fork-session" in argv
    assert f"--resume={branch}" in third and "--fork-session" not in third


async def test_the_notebook_is_decided_before_the_cli_starts(
    fake_cli_options: Any, tmp_path: Path, state_root: Path
) -> None:
    """A conversation saved under the name, for a file not saved since: the first cell decides."""
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text(json.dumps({"cells": []}), encoding="utf-8")
    store = _save(state_root, str(notebook), "saved-session", [CellTurn("c1", "u1", "l1")])
    state = store.load()
    state.set_file_stamp((1, 2, 3, 4))  # another file's stamp: only a cell that ran in it decides
    store.save(state)
    conversation = Conversation(fake_cli_options(), notebook=str(notebook), state_root=state_root)
    conversation.rerun = "append"
    try:
        notes, _ = await conversation.before_turn(cell_id="c1", interactive=True)
    finally:
        await conversation.close()
    assert any("Continuing this notebook's conversation" in note for note in notes)
    [only] = _argvs(tmp_path)  # one start, resuming: not a fresh one thrown away first
    assert "--resume=saved-session" in only


async def test_the_trust_question_comes_before_the_rewind(
    fake_cli_options: Any, tmp_path: Path, state_root: Path, untrusted_folder: Path
) -> None:
    _save(state_root, "nb.ipynb", "s1", [CellTurn("c1", "u1", "l1"), CellTurn("c2", "u2", "l2")])
    conversation = Conversation(fake_cli_options(), notebook="nb.ipynb", state_root=state_root)
    cells_when_asked: list[int] = []

    async def trust(question: ProjectCommands) -> bool:
        assert question.folder == str(untrusted_folder.resolve())
        cells_when_asked.append(len(conversation.state.cells))
        return True

    try:
        notes, _ = await conversation.before_turn(cell_id="c2", interactive=True, ask_trust=trust)
        assert cells_when_asked == [2]  # asked while both cells were still in the conversation
        assert "replaces its earlier exchange" in notes[-1]
        # The rewind is in the process that runs the turn, not in the one the answer replaced.
        assert conversation.session is not None and conversation.session.has_unsaved_rewind
    finally:
        await conversation.close()
    untrusted, trusted = _argvs(tmp_path)
    assert "--setting-sources" in untrusted and "--setting-sources" not in trusted


async def test_an_undo_in_another_folder_leaves_the_trust_question_alone(
    fake_cli_options: Any, tmp_path: Path, untrusted_folder: Path
) -> None:
    conversation = Conversation(fake_cli_options())
    other = tmp_path / "other"
    other.mkdir()
    turn = CellTurn("c1", "u1", "l1", files_changed=["a.txt"], cwd=str(other))
    asked: list[ProjectCommands] = []

    async def trust(question: ProjectCommands) -> bool:
        asked.append(question)
        return False

    try:
        await conversation.ensure_session()
        with pytest.raises(MagicError, match="cannot undo"):  # a short-lived CLI in the other folder
            await conversation.undo(UndoOffer("u1", ("a.txt",), "other-session", (turn,)))
        await conversation.before_turn(cell_id=None, interactive=True, ask_trust=trust)
    finally:
        await conversation.close()
    assert [question.folder for question in asked] == [str(untrusted_folder.resolve())]


async def test_resuming_another_conversation_keeps_the_branches(fake_cli_options: Any, state_root: Path) -> None:
    _save(state_root, "nb.ipynb", "s1", [CellTurn("c1", "u1", "l1")])
    conversation = Conversation(fake_cli_options(), notebook="nb.ipynb", state_root=state_root)
    try:
        await conversation.resume("another-session")
    finally:
        await conversation.close()
    left = Branch("s1", 1, "%resume")
    assert conversation.state.branches == [left]
    saved = StateStore("nb.ipynb", root=state_root).load()
    assert saved.session_id == "another-session" and saved.branches == [left]


def test_setting_a_state_aside_takes_its_ledger_along(state_root: Path) -> None:
    store = StateStore("nb.ipynb", root=state_root)
    state = store.load()
    state.set_cost(3.0)
    state.set_guest_cost("guest-session", 2.0)
    state.set_budget(5.0)
    store.save(state)
    assert store.spent_elsewhere("another-guest") == 5.0
    store.set_aside()
    assert store.spent_elsewhere("another-guest") == 0.0 and store.ledger.budget_usd is None


async def test_a_resumed_cli_that_never_answers_the_rewind_again_still_takes_the_message(
    fake_cli_options: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_module, "_CONTROL_TIMEOUT", 1.0)
    async with await Session.spawn(fake_cli_options()) as session:
        await _ask(session, "ALPHA")
        dropped = await session.send_message("BRAVO")
        await collect_turn(session)
        assert (await session.rewind("after-alpha", first_dropped=dropped)).in_place
        assert session.has_unsaved_rewind
        # The process dies before the rewind reached the transcript; the next one never answers it.
        hung = {**session.options.env, "FAKE_CLI_UNANSWERED": "rewind_conversation"}
        session.options = replace(session.options, env=hung)
        pid = session.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert wait_until_dead(pid)
        await anyio.sleep(0.2)
        answer = await _ask(session, "CHARLIE")
        assert answer.text == "echo: CHARLIE" and session.restarts == 1


@pytest.mark.real_cli
async def test_no_rewind_while_the_cli_runs_a_turn_of_its_own(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    model = DelegatingModel(hold=True)
    fake_api.fallback = model
    conversation = Conversation(make_options())
    try:
        session = await conversation.ensure_session()
        prompt = await session.send_message("delegate")
        launched = of_type(await collect_turn(session), Result)[-1]
        conversation.state.append_cell(CellTurn("c1", prompt, launched.last_message_uuid))
        conversation.state.set_session(session.session_id)
        model.release.set()  # the agent reports: the CLI takes a turn of its own
        with anyio.fail_after(60):
            while not isinstance(event := await session.next_side_event(), OwnTurnStarted):
                assert event is not None
        with pytest.raises(SessionError, match="turn of its own"):
            await session.rewind(None, first_dropped=prompt, latest=prompt)
        # Re-running the cell then keeps the conversation: no fresh one for an error that is no refusal.
        notes, _ = await conversation.before_turn(cell_id="c1", interactive=False)
        assert any(note.startswith("Could not rewind") and "turn of its own" in note for note in notes)
        assert conversation.session is session and [turn.cell_id for turn in conversation.state.cells] == ["c1"]
        with anyio.fail_after(60):
            while not isinstance(event := await session.next_side_event(), Result):
                assert event is not None
        assert event.text == "The agent reported: The answer is 42."
    finally:
        model.release.set()
        await conversation.close()
