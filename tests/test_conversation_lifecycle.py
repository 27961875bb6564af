"""The conversation's life across starts of the CLI: guests, identity, trust, rewinds, branches, ledgers.

Most tests run the replay fake CLI (``fake_cli.py``), whose argv log tells how often and how the
CLI was started; the CLI's own turns need the real one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from claude_kernel.conversation import Conversation
from claude_kernel.notebook_state import Branch, CellTurn, StateStore

pytestmark = pytest.mark.anyio


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
