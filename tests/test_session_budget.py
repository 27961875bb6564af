"""A spending cap that holds across CLI processes (``SessionOptions.max_budget_usd``).

The fake API reports the same usage for every reply of the same length, and the CLI prices it
with its default model, so each one-word turn below costs the same known amount.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest

from claude_kernel.session import BudgetExceededError, Result, Session, SessionOptions
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .helpers import collect_turn, of_type

pytestmark = pytest.mark.anyio

SAME = Reply.text("ok")


async def _ask(session: Session, text: str) -> Result:
    await session.send_message(text)
    return of_type(await collect_turn(session), Result)[0]


def _budget_arg(pid: int) -> str:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return next(a.split("=", 1)[1] for a in argv if a.startswith("--max-budget-usd="))


@pytest.fixture
async def turn_cost(fake_api: FakeMessagesAPI, make_options: Any) -> float:
    """What one turn costs with the fake API's usage and the CLI's pricing."""
    fake_api.enqueue(SAME)
    async with await Session.spawn(make_options()) as session:
        cost = (await _ask(session, "price")).cost_usd
    assert cost > 0
    return cost


@pytest.mark.real_cli
async def test_budget_stops_a_turn_then_refuses_to_send(
    fake_api: FakeMessagesAPI, make_options: Any, turn_cost: float
) -> None:
    fake_api.enqueue(SAME, SAME, SAME, SAME)
    async with await Session.spawn(make_options(max_budget_usd=2.5 * turn_cost)) as session:
        assert not (await _ask(session, "one")).is_error
        assert not (await _ask(session, "two")).is_error
        third = await _ask(session, "three")  # the CLI checks after spending: this one goes over
        assert third.budget_exceeded and third.is_error
        requests = len(fake_api.requests)
        with pytest.raises(BudgetExceededError, match="budget") as refused:
            await session.send_message("four")
        assert refused.value.budget_usd == pytest.approx(2.5 * turn_cost)
        assert refused.value.spent_usd == pytest.approx(3 * turn_cost)
        assert len(fake_api.requests) == requests and session.is_finished()


@pytest.mark.real_cli
async def test_budget_holds_across_a_restart(fake_api: FakeMessagesAPI, make_options: Any, turn_cost: float) -> None:
    """Each process gets what is left: a fresh CLI cap would have let the third turn through."""
    fake_api.enqueue(SAME, SAME, SAME)
    async with await Session.spawn(make_options(max_budget_usd=2.5 * turn_cost)) as session:
        assert session.pid is not None
        assert float(_budget_arg(session.pid)) == pytest.approx(2.5 * turn_cost)
        assert not (await _ask(session, "one")).is_error
        os.kill(session.pid, signal.SIGKILL)
        await anyio.sleep(0.2)
        assert not (await _ask(session, "two")).is_error
        assert session.restarts == 1 and session.pid is not None
        assert float(_budget_arg(session.pid)) == pytest.approx(1.5 * turn_cost)
        assert (await _ask(session, "three")).budget_exceeded
        with pytest.raises(BudgetExceededError):
            await session.send_message("four")


@pytest.mark.real_cli
async def test_budget_holds_across_a_rewind(fake_api: FakeMessagesAPI, make_options: Any, turn_cost: float) -> None:
    fake_api.enqueue(SAME, SAME)
    async with await Session.spawn(make_options(max_budget_usd=1.5 * turn_cost)) as session:
        first = await _ask(session, "one")
        assert first.last_message_uuid is not None
        await session.rewind(first.last_message_uuid)
        assert session.pid is not None
        assert float(_budget_arg(session.pid)) == pytest.approx(0.5 * turn_cost)
        assert (await _ask(session, "two")).budget_exceeded


def test_bad_budget_and_rewind_options_are_refused() -> None:
    with pytest.raises(ValueError, match="max_budget_usd must be a positive"):
        SessionOptions(max_budget_usd=0)
    with pytest.raises(ValueError, match="need resume"):
        SessionOptions(resume_session_at="some-uuid")
    with pytest.raises(ValueError, match="need resume"):
        SessionOptions(fork_session=True)
    with pytest.raises(ValueError, match="needs resume_session_at"):
        SessionOptions(resume="id", resume_drops_turn="prompt-uuid")
