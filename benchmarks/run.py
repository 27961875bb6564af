"""Benchmark: one persistent ``claude`` process per notebook versus a new process for every turn.

Why this exists: claude-kernel's design bet is that a notebook keeps ONE long-lived CLI process
(``Session``: stream-json on stdin and stdout, many turns) instead of starting ``claude`` for every
cell and continuing the conversation with ``--resume``, the way one-turn-per-process drivers (such
as the Rust apiari crate) do. The bet only pays if a turn on a warm process is much cheaper than
spawn + handshake + turn + exit. This script measures both, side by side in one run, and prints
the ratio; if a CLI upgrade ever makes start-up cheap, the ratio shows it.

What is measured, with the real pinned CLI and the fake Messages API (instant ``"ok"`` replies on
127.0.0.1, a throwaway HOME), so the numbers are the CLI's and the driver's overhead, not a model's:

* persistent: one ``Session`` per round, ``--turns`` turns on it (``send_message``, then
  ``next_event`` until None). Per-turn latency; the spawn is paid once and reported on its own.
* respawn per turn: per round, a first process starts a new session and answers one turn; then
  every further turn is ``Session.spawn(SessionOptions(resume=<that session id>))``, one turn,
  ``close()``. Per-turn latency is spawn + turn + close, with the three parts reported too.
* ``Session.spawn`` itself (process start plus the ``initialize`` handshake), new and resumed.

The two strategies alternate (round 1 persistent first, round 2 respawn first, ...) so machine noise
hits both equally; one untimed warm-up run comes first. Run with ``./dev bench`` (or
``.venv/bin/python benchmarks/run.py --rounds 5 --turns 8``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from claude_kernel.session import Result, Session, SessionOptions, SystemInit, find_cli
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply


@dataclass
class Samples:
    """Timings in seconds, by measurement name, in the order rows are printed."""

    persistent_turn: list[float] = field(default_factory=list)
    respawn_turn: list[float] = field(default_factory=list)
    respawn_spawn: list[float] = field(default_factory=list)
    respawn_only_turn: list[float] = field(default_factory=list)
    respawn_close: list[float] = field(default_factory=list)
    spawn_new: list[float] = field(default_factory=list)
    cli_version: str = "?"


def ok_responder(request: dict[str, Any]) -> Reply:
    """Every model request gets an instant two-letter answer."""
    return Reply.text("ok")


async def run_turn(session: Session, text: str, samples: Samples) -> None:
    """One turn: send, then read events until the turn is over; fail loudly if it did not succeed."""
    await session.send_message(text)
    result: Result | None = None
    while (event := await session.next_event()) is not None:
        if isinstance(event, Result):
            result = event
        elif isinstance(event, SystemInit):
            samples.cli_version = event.claude_code_version or samples.cli_version
    if result is None or result.is_error:
        raise RuntimeError(f"the turn did not succeed: {result!r}")


async def persistent_round(options: SessionOptions, turns: int, samples: Samples) -> None:
    start = time.perf_counter()
    session = await Session.spawn(options)
    samples.spawn_new.append(time.perf_counter() - start)
    try:
        for turn in range(turns):
            start = time.perf_counter()
            await run_turn(session, f"persistent turn {turn}", samples)
            samples.persistent_turn.append(time.perf_counter() - start)
    finally:
        await session.close()


async def respawn_round(options: SessionOptions, turns: int, samples: Samples) -> None:
    start = time.perf_counter()
    first = await Session.spawn(options)
    samples.spawn_new.append(time.perf_counter() - start)
    try:
        await run_turn(first, "respawn turn 0", samples)
    finally:
        await first.close()
    if first.session_id is None:
        raise RuntimeError("the first process reported no session id")
    resumed = replace(options, resume=first.session_id)
    for turn in range(1, turns):
        t0 = time.perf_counter()
        session = await Session.spawn(resumed)
        t1 = time.perf_counter()
        try:
            await run_turn(session, f"respawn turn {turn}", samples)
            t2 = time.perf_counter()
        finally:
            await session.close()
        t3 = time.perf_counter()
        samples.respawn_spawn.append(t1 - t0)
        samples.respawn_only_turn.append(t2 - t1)
        samples.respawn_close.append(t3 - t2)
        samples.respawn_turn.append(t3 - t0)


async def benchmark(cli: str, rounds: int, turns: int) -> tuple[Samples, int]:
    samples = Samples()
    with FakeMessagesAPI(fallback=ok_responder) as api, tempfile.TemporaryDirectory(prefix="claude-bench-") as tmp:
        home, work = Path(tmp, "home"), Path(tmp, "work")
        home.mkdir()
        work.mkdir()
        options = SessionOptions(cli_path=cli, cwd=str(work), env={**api.environment(), "HOME": str(home)})
        # Untimed warm-up: the first start of node and the CLI pays for cold disk caches.
        await respawn_round(options, 2, Samples())
        strategies: list[Callable[[SessionOptions, int, Samples], Any]] = [persistent_round, respawn_round]
        for number in range(rounds):
            order = strategies if number % 2 == 0 else strategies[::-1]
            for strategy in order:
                await strategy(options, turns, samples)
        return samples, len(api.requests)


def spread(values: list[float]) -> tuple[float, float, float]:
    """Median, p10 and p90 (inclusive deciles; with one value all three are that value)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return statistics.median(values), deciles[0], deciles[-1]


def print_table(samples: Samples, cli: str, rounds: int, turns: int, requests: int, elapsed: float) -> None:
    rows = [
        ("turn, persistent process", samples.persistent_turn),
        ("turn, respawn per turn (spawn+turn+close)", samples.respawn_turn),
        ("  of which Session.spawn --resume", samples.respawn_spawn),
        ("  of which the turn", samples.respawn_only_turn),
        ("  of which close()", samples.respawn_close),
        ("Session.spawn, new session (+ initialize)", samples.spawn_new),
    ]
    print(f"claude-kernel bench: persistent process vs respawn per turn (claude {samples.cli_version})")
    print(f"cli {cli}; fake Messages API on 127.0.0.1 ({requests} model requests)")
    print(
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; {rounds} rounds x {turns} turns, "
        f"strategies alternating; {elapsed:.1f} s in all"
    )
    print()
    width = max(len(name) for name, _ in rows)
    print(f"{'measurement':<{width}}  {'median':>10}  {'p10 .. p90':>21}  {'n':>4}")
    print("-" * (width + 43))
    for name, values in rows:
        median, p10, p90 = spread(values)
        band = f"{p10 * 1000:.1f} .. {p90 * 1000:.1f} ms"
        print(f"{name:<{width}}  {median * 1000:>7.1f} ms  {band:>21}  {len(values):>4}")
    print("-" * (width + 43))
    persistent = statistics.median(samples.persistent_turn)
    respawn = statistics.median(samples.respawn_turn)
    spawn = statistics.median(samples.spawn_new)
    print(f"{'ratio respawn / persistent (median turn)':<{width}}  {respawn / persistent:>8.1f}x")
    print(f"{'ratio spawn / persistent turn (medians)':<{width}}  {spawn / persistent:>8.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per strategy, alternating (default 5)")
    parser.add_argument("--turns", type=int, default=8, help="turns per round, at least 2 (default 8)")
    parser.add_argument("--cli", help="the claude executable (default: find_cli(), the pinned CLI of the cli extra)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.turns < 2:
        parser.error("--rounds must be >= 1 and --turns >= 2 (the first respawn turn starts the session)")
    cli = args.cli or find_cli()
    start = time.perf_counter()
    samples, requests = anyio.run(benchmark, cli, args.rounds, args.turns)
    print_table(samples, cli, args.rounds, args.turns, requests, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
