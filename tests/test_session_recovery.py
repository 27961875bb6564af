"""A hung CLI is always recovered, and every message is answered or raises.

Faults the real CLI cannot show on cue come from the replay fake CLI (tests/fake_cli.py); the
SIGSTOP cases also run on the real CLI.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from claude_kernel.session import NotConnectedError, ProcessDiedError, Result, Session, TextDelta
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .conftest import process_alive, wait_until_dead
from .helpers import collect_turn, of_type

pytestmark = pytest.mark.anyio

GRACE = 0.5
SLOW = Reply.text("word " * 400, delay=0.02, chunk=5)  # about 8 s if nobody stops it


async def _ask(session: Session, text: str) -> Result:
    await session.send_message(text)
    return of_type(await collect_turn(session), Result)[0]


def _stop(session: Session) -> int:
    """SIGSTOP the CLI: from now on it neither writes nor reads."""
    pid = session.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    return pid


async def _talk_slowly(session: Session) -> None:
    """Start a long streamed answer from the fake model and wait for its first words."""
    await session.send_message("talk for a long time")
    while not isinstance(await session.next_event(), TextDelta):
        pass


def _argvs(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "argv.log").read_text().splitlines()]


# -- a CLI that stops writing -----------------------------------------------------------------


async def test_a_stopped_cli_is_recovered_by_interrupt(fake_cli_options: Any, tmp_path: Path) -> None:
    """SIGSTOP mid-turn: nothing arrives, yet the interrupt escalates on time and the turn ends."""
    session = await Session.spawn(fake_cli_options(), interrupt_grace=GRACE)
    async with session:
        await session.send_message("SLOW")
        await session.next_event()
        pid = _stop(session)
        started = time.monotonic()
        await session.interrupt()
        with anyio.fail_after(2 * GRACE + 2):
            events = await collect_turn(session)
        assert time.monotonic() - started < 2 * GRACE + 1
        assert of_type(events, Result)[-1].interrupted
        assert wait_until_dead(pid)
        assert (await _ask(session, "back?")).text == "echo: back?"
        assert session.restarts == 1
    assert "--resume=fake-session-0001" in _argvs(tmp_path)[-1]


async def test_interrupt_while_another_task_is_blocked_reading(fake_cli_options: Any) -> None:
    """The reader is already waiting in a read with no deadline when interrupt() comes."""
    session = await Session.spawn(fake_cli_options(), interrupt_grace=GRACE)
    async with session:
        await session.send_message("SLOW")
        await session.next_event()
        _stop(session)
        events: list[Any] = []

        async def read() -> None:
            events.extend(await collect_turn(session))

        with anyio.fail_after(2 * GRACE + 2):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(read)
                await anyio.sleep(0.3)  # the reader is now blocked in read_line
                await session.interrupt()
        assert of_type(events, Result)[-1].interrupted


@pytest.mark.real_cli
async def test_real_cli_stopped_mid_stream_is_recovered_and_resumes(
    fake_api: FakeMessagesAPI, make_options: Any
) -> None:
    fake_api.enqueue(Reply.text("Noted: QUINCE."), SLOW, Reply.text("QUINCE."))
    session = await Session.spawn(make_options(), interrupt_grace=GRACE)
    async with session:
        await _ask(session, "remember quince")
        session_id = session.session_id
        await _talk_slowly(session)
        pid = _stop(session)
        started = time.monotonic()
        await session.interrupt()
        with anyio.fail_after(2 * GRACE + 5):
            result = of_type(await collect_turn(session), Result)[-1]
        assert result.interrupted
        assert time.monotonic() - started < 2 * GRACE + 2
        assert wait_until_dead(pid)
        assert (await _ask(session, "which fruit?")).text == "QUINCE."
        assert session.restarts == 1 and session.session_id == session_id
    assert "remember quince" in str(fake_api.requests[-1]["messages"])


@pytest.mark.real_cli
@pytest.mark.parametrize("mid_turn", [False, True], ids=["idle", "mid-turn"])
async def test_close_ends_a_stopped_real_cli_quickly(
    fake_api: FakeMessagesAPI, make_options: Any, mid_turn: bool
) -> None:
    """SIGTERM is not delivered to a stopped process: close() still ends it within its grace."""
    fake_api.enqueue(Reply.text("Hi."), SLOW)
    session = await Session.spawn(make_options())
    await _ask(session, "hi")
    if mid_turn:
        await _talk_slowly(session)
    pid = _stop(session)
    started = time.monotonic()
    await session.close()
    assert time.monotonic() - started < 3.5
    assert not process_alive(pid)


async def test_close_of_a_deaf_stopped_cli_kills_it(fake_cli_options: Any) -> None:
    """A CLI that ignores everything but SIGKILL: close() still returns within its grace."""
    session = await Session.spawn(fake_cli_options())
    await session.send_message("DEAF")
    await session.next_event()
    pid = _stop(session)
    started = time.monotonic()
    await session.close(grace=1.5)
    assert time.monotonic() - started < 2.5
    assert wait_until_dead(pid)


# -- every message is answered or raises ------------------------------------------------------


async def test_message_after_a_signalled_turn_is_answered(fake_cli_options: Any) -> None:
    """The CLI ignores the interrupt; after SIGINT it writes a Result but exits only later.

    The next message used to go to that dying process and vanish (no events, no Result, no error).
    """
    session = await Session.spawn(fake_cli_options(), interrupt_grace=GRACE)
    async with session:
        await session.send_message("STUBBORN")
        await session.interrupt()
        first = of_type(await collect_turn(session), Result)
        assert [r.interrupted for r in first] == [True]
        signalled = session.pid
        assert (await _ask(session, "still there?")).text == "echo: still there?"
        assert session.pid != signalled and session.restarts == 1


async def test_message_sent_before_the_interrupted_turn_was_read(fake_cli_options: Any) -> None:
    """Sent while the interrupt is under way: it waits for that turn to end, then goes to a new process."""
    session = await Session.spawn(fake_cli_options(), interrupt_grace=GRACE)
    async with session:
        await session.send_message("STUBBORN")
        await session.interrupt()
        with anyio.fail_after(2 * GRACE + 5):
            await session.send_message("next")
            results = of_type(await collect_turn(session), Result)
        assert [(r.interrupted, r.text) for r in results] == [(True, None), (False, "echo: next")]
        assert session.restarts == 1


@pytest.mark.parametrize("noticed", [True, False], ids=["noticed", "racing"])
async def test_process_killed_between_turns(fake_cli_options: Any, noticed: bool) -> None:
    """Once its death is noticed the process is replaced before the write; a message written
    before anyone could notice raises (never a silent turn), and the next one is answered."""
    session = await Session.spawn(fake_cli_options())
    async with session:
        await _ask(session, "one")
        pid = session.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert wait_until_dead(pid)
        if noticed:
            await anyio.sleep(0.2)  # as between two cells
        try:
            answer = await _ask(session, "two")
        except ProcessDiedError:
            assert not noticed
            answer = await _ask(session, "two again")
        assert (answer.text or "").startswith("echo: two") and session.restarts == 1


async def test_queued_turn_behind_an_interrupted_one_raises(fake_cli_options: Any) -> None:
    """Only the turn being interrupted may end quietly when its process dies; others raise."""
    session = await Session.spawn(fake_cli_options(), interrupt_grace=GRACE)
    async with session:
        await session.send_message("DEAF")
        await session.send_message("queued behind it")
        await session.interrupt()
        with pytest.raises(ProcessDiedError):
            await collect_turn(session)
        assert await session.next_event() is None
        assert (await _ask(session, "after")).text == "echo: after"


async def test_after_close_stdin_the_turn_finishes_and_sending_refuses(fake_cli_options: Any) -> None:
    session = await Session.spawn(fake_cli_options())
    async with session:
        await session.send_message("last one")
        await session.close_stdin()
        assert of_type(await collect_turn(session), Result)[0].text == "echo: last one"
        with pytest.raises(NotConnectedError, match="closed"):
            await session.send_message("more")


async def test_crash_after_close_stdin_still_raises(fake_cli_options: Any) -> None:
    """Closing stdin asks the CLI to finish the turn, not to drop it: a crash is an error."""
    session = await Session.spawn(fake_cli_options())
    async with session:
        await session.send_message("CRASH")
        await session.close_stdin()
        with pytest.raises(ProcessDiedError, match="fatal: boom"):
            await collect_turn(session)
