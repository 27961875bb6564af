"""Benchmark: throttled display updates versus one update per streamed delta.

Why this exists: the kernel redraws a turn's whole display (HTML plus plain text) on every
update, because Jupyter's ``update_display_data`` replaces an output rather than appending to it.
Sent for every text delta, a long answer would cost a quadratic number of bytes on the wire and
in the browser (and VS Code flickers on each update). ``run_turn`` throttles to one update per
``interval``; this script measures what that saves, side by side in one run.

The model side is a stub session that replays a fixed answer as ``TextDelta`` events at a steady
pace (no CLI, no network), so only rendering and sending are measured. The two settings alternate
round by round so machine noise hits both alike. Run with ``./dev bench`` or
``.venv/bin/python benchmarks/rendering.py --rounds 3``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import anyio

from claude_kernel.session import Result, TextDelta
from claude_kernel.turn import HeadlessResponder, run_turn

ANSWER_WORDS = 2000  # about 12 KB of text, a long but ordinary answer
DELTA_WORDS = 2  # words per delta, close to what the API streams
PACE = 0.002  # seconds between deltas (500 deltas/s: faster than a real model, so a fair stress)


class _ReplaySession:
    """Just enough of a Session for run_turn: a turn made of text deltas and a result."""

    def __init__(self) -> None:
        words = [f"word{i}" for i in range(ANSWER_WORDS)]
        chunks = [" ".join(words[i : i + DELTA_WORDS]) + " " for i in range(0, len(words), DELTA_WORDS)]
        self._events: list[Any] = [TextDelta(chunk, index=0, message_id="msg_bench") for chunk in chunks]
        text = "".join(chunks)
        self._events.append(
            Result("success", False, "s", text, [], 0.0, 0.0, {}, 1, 1, 1, "end_turn", "completed", None, [], {})
        )
        self.init = None
        self.total_cost_usd = 0.0

    async def send_message(self, text: str) -> str:
        return "uuid"

    async def next_event(self) -> Any:
        if not self._events:
            return None
        await anyio.sleep(PACE)
        return self._events.pop(0)

    async def interrupt(self) -> None:
        pass


class _CountingSink:
    def __init__(self) -> None:
        self.updates = 0
        self.bytes = 0

    def update(self, bundles: list[dict[str, str]]) -> None:
        self.updates += 1
        self.bytes += sum(len(value.encode()) for bundle in bundles for value in bundle.values())

    def image(self, media_type: str, data: str) -> None:
        pass


async def _one_turn(interval: float) -> tuple[_CountingSink, float]:
    """One streamed turn; the sink's counts and the CPU seconds it took (rendering dominates)."""
    sink = _CountingSink()
    cpu = time.process_time()
    await run_turn(
        _ReplaySession(),
        "go",
        sink=sink,
        responder=HeadlessResponder(),  # type: ignore[arg-type]
        interval=interval,
    )
    return sink, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setting, alternating (default 3)")
    args = parser.parse_args(argv)
    settings = {"every delta (interval 0)": 0.0, "throttled (interval 0.25 s)": 0.25}
    results: dict[str, list[tuple[_CountingSink, float]]] = {name: [] for name in settings}
    for round_index in range(args.rounds):
        order = list(settings.items()) if round_index % 2 == 0 else list(reversed(settings.items()))
        for name, interval in order:
            results[name].append(anyio.run(_one_turn, interval))

    deltas = ANSWER_WORDS // DELTA_WORDS
    print(
        f"claude-kernel bench: display updates for one {deltas}-delta answer ({ANSWER_WORDS} words), "
        f"{args.rounds} rounds, settings alternating"
    )
    print()
    width = 30
    print(f"{'setting':<{width}}  {'updates':>8}  {'MB sent':>8}  {'CPU s (median, min..max)':>26}")
    print("-" * (width + 48))
    medians: dict[str, tuple[float, float, float]] = {}
    for name, runs in results.items():
        updates = statistics.median(sink.updates for sink, _ in runs)
        megabytes = statistics.median(sink.bytes for sink, _ in runs) / 1e6
        cpu = [c for _, c in runs]
        medians[name] = (updates, megabytes, statistics.median(cpu))
        band = f"{statistics.median(cpu):.2f} ({min(cpu):.2f}..{max(cpu):.2f})"
        print(f"{name:<{width}}  {updates:>8.0f}  {megabytes:>8.2f}  {band:>26}")
    print("-" * (width + 48))
    every, throttled = medians["every delta (interval 0)"], medians["throttled (interval 0.25 s)"]
    print(
        f"{'ratio every / throttled':<{width}}  {every[0] / throttled[0]:>7.0f}x  {every[1] / throttled[1]:>7.0f}x"
        f"  {every[2] / throttled[2]:>25.1f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
