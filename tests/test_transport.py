"""Process and stream hygiene, with fault injection from the replay fake CLI (tests/fake_cli.py)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from claude_kernel.session import (
    AssistantMessage,
    ProcessDiedError,
    Result,
    Session,
    SystemMessage,
    UnknownBlock,
    UnknownEvent,
)

from .conftest import process_alive, wait_until_dead
from .helpers import collect_turn, of_type

pytestmark = pytest.mark.anyio


async def _ask(session: Session, text: str) -> list[Any]:
    await session.send_message(text)
    return await collect_turn(session)


async def test_a_10_mb_line_arrives_whole(fake_cli_options: Any) -> None:
    async with await Session.spawn(fake_cli_options()) as session:
        result = of_type(await _ask(session, "HUGE_LINE"), Result)[0]
        assert result.text == "x" * 10_000_000
        assert of_type(await _ask(session, "after"), Result)[0].text == "echo: after"


async def test_10_mb_of_stderr_does_not_stall(fake_cli_options: Any) -> None:
    async with await Session.spawn(fake_cli_options()) as session:
        with anyio.fail_after(20):
            result = of_type(await _ask(session, "HUGE_STDERR"), Result)[0]
        assert result.text == "after stderr"
    _code, stderr = await session.close()
    assert len(stderr) >= 10_000_000


async def test_noise_and_broken_lines_are_skipped(fake_cli_options: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "claude_kernel.session")
    async with await Session.spawn(fake_cli_options()) as session:
        result = of_type(await _ask(session, "NOISE"), Result)[0]
    assert result.text == "clean"
    assert any("unparseable stdout line" in r.message for r in caplog.records)


async def test_unknown_types_never_crash(fake_cli_options: Any) -> None:
    async with await Session.spawn(fake_cli_options()) as session:
        events = await _ask(session, "NEW_TYPES")
    assert [e.type for e in of_type(events, UnknownEvent)] == ["brand_new_type"]
    assert "brand_new_subtype" in [e.subtype for e in of_type(events, SystemMessage)]
    blocks = [b for m in of_type(events, AssistantMessage) for b in m.content]
    assert any(isinstance(b, UnknownBlock) and b.type == "hologram" for b in blocks)
    assert of_type(events, Result)[0].text == "still fine"


async def test_concurrent_writers_never_interleave_lines(fake_cli_options: Any) -> None:
    """Fifty tasks write 100 KB messages at once; one broken line would kill the CLI."""
    results: list[Result] = []

    async def read_results() -> None:
        while len(results) < 50:
            event = await session.next_event()
            if isinstance(event, Result):
                results.append(event)
            elif event is None:
                await anyio.sleep(0.01)

    async with await Session.spawn(fake_cli_options()) as session:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_results)
                for n in range(50):
                    tg.start_soon(session.send_message, f"{n}:" + "y" * 100_000)
    assert {(r.text or "").split(":y")[0] for r in results} == {f"echo: {n}" for n in range(50)}


async def test_crash_reports_stderr_then_resumes(fake_cli_options: Any, tmp_path: Path) -> None:
    async with await Session.spawn(fake_cli_options()) as session:
        await _ask(session, "hello")
        with pytest.raises(ProcessDiedError, match="fatal: boom") as died:
            await _ask(session, "CRASH")
        assert died.value.exit_code == 3
        assert of_type(await _ask(session, "again"), Result)[0].text == "echo: again"
        assert session.restarts == 1
    argvs = [json.loads(line) for line in (tmp_path / "argv.log").read_text().splitlines()]
    assert not any(a.startswith("--resume") for a in argvs[0])
    assert "--resume=fake-session-0001" in argvs[1]


async def test_a_deaf_cli_is_killed_after_sigint_is_ignored(fake_cli_options: Any) -> None:
    session = await Session.spawn(fake_cli_options(), interrupt_grace=0.3)
    async with session:
        await session.send_message("DEAF")
        first = await session.next_event()
        assert first is not None
        pid = session.pid
        started = time.monotonic()
        await session.interrupt()
        # No Result came from the CLI: the session makes one up, so the caller sees the interrupt.
        [ended] = await collect_turn(session)
        assert isinstance(ended, Result) and ended.interrupted and ended.terminal_reason == "aborted_process_exited"
        assert 0.5 < time.monotonic() - started < 5
        assert pid is not None and wait_until_dead(pid)
        assert of_type(await _ask(session, "back?"), Result)[0].text == "echo: back?"


async def test_child_runs_in_its_own_process_group(fake_cli_options: Any) -> None:
    async with await Session.spawn(fake_cli_options()) as session:
        assert session.pid is not None
        assert os.getpgid(session.pid) == session.pid != os.getpgrp()


async def test_close_ends_the_whole_group(fake_cli_options: Any) -> None:
    session = await Session.spawn(fake_cli_options())
    result = of_type(await _ask(session, "SPAWN_CHILD"), Result)[0]
    child = int(result.text or "0")
    assert process_alive(child)
    pid = session.pid
    code, _ = await session.close()
    assert code == 0
    assert pid is not None and wait_until_dead(pid) and wait_until_dead(child)


async def test_cancelled_host_task_leaves_no_process(fake_cli_options: Any) -> None:
    pids: list[int] = []

    async def host() -> None:
        async with await Session.spawn(fake_cli_options()) as session:
            assert session.pid is not None
            pids.append(session.pid)
            await session.send_message("DEAF")
            await collect_turn(session)

    with anyio.move_on_after(1.0):
        await host()
    assert pids and wait_until_dead(pids[0])


@pytest.mark.real_cli
def test_killed_host_process_leaves_no_cli(cli_env: dict[str, str], workdir: Path) -> None:
    """SIGKILL of the Python host: the CLI sees EOF on stdin and exits by itself."""
    script = textwrap.dedent(f"""
        import anyio, json, sys
        from claude_kernel.session import Session, SessionOptions
        async def main():
            s = await Session.spawn(SessionOptions(cwd={str(workdir)!r}, env=json.loads(sys.argv[1])))
            print(s.pid, flush=True)
            await anyio.sleep(60)
        anyio.run(main)
    """)
    host = subprocess.Popen([sys.executable, "-c", script, json.dumps(cli_env)], stdout=subprocess.PIPE, text=True)
    assert host.stdout is not None
    cli_pid = int(host.stdout.readline())
    assert process_alive(cli_pid)
    host.send_signal(signal.SIGKILL)
    host.wait()
    assert wait_until_dead(cli_pid, timeout=10)
