"""The conversation's life across starts of the CLI: guests, identity, trust, rewinds, branches, ledgers.

Most tests run the replay fake CLI (``fake_cli.py``), whose argv log tells how often and how the
CLI was started; the CLI's own turns need the real one.
"""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from claude_kernel.conversation import Conversation
from claude_kernel.notebook_state import Branch, CellTurn, StateStore
from claude_kernel.session import OwnTurnStarted, Result, Session, SessionError
from claude_kernel.session import _session as session_module
from claude_kernel.testing.agents import DelegatingModel
from claude_kernel.testing.fake_api import FakeMessagesAPI

from .conftest import wait_until_dead
from .helpers import collect_turn, of_type

pytestmark = pytest.mark.anyio


async def _ask(session: Session, text: str) -> Result:
    await session.send_message(text)
    return of_type(await collect_turn(session), Result)[0]


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    return tmp_path / "state"


def _save(state_root: Path, notebook: str, session_id: str, cells: list[CellTurn]) -> StateStore:
    store = StateStore(notebook, root=state_root)
    state = store.load()
    state.set_session(session_id)
    for cell in cells:
        state.append_cell(cell)
    store.save(state)
    return store


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
