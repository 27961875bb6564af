"""Row 1, the event pipeline: 100,000 partial-delta events through ``Session.next_event``, a bare loop, the SDK.

The same replayed turn (benchmarks/replay_cli.py writes it as fast as the pipe takes it) is read
three ways, the readers alternating round by round; each time runs from sending the message to
the turn's ``result``, after the process has started and answered its first control request:

* a bare loop: ``readline`` and ``json.loads`` on the process's stdout, nothing else (the floor);
* ``Session.next_event`` (typed events, control requests answered, the turn's end detected);
* ``claude-agent-sdk``'s ``ClaudeSDKClient`` (``receive_response``), with ``cli_path`` set to the
  same replay and partial messages on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio

from claude_kernel.session import Session, SessionOptions

from .common import Check, Measure, Row, spread

REPLAY_CLI = str(Path(__file__).with_name("replay_cli.py"))
SESSION_ID = "00000000-0000-4000-8000-000000000001"


def write_replay(path: Path, events: int) -> None:
    """A turn of ``events`` text deltas, shaped as the CLI writes them, then its assistant and result lines."""
    message_id = "msg_bench"
    lines: list[dict[str, Any]] = [
        {"type": "system", "subtype": "init", "session_id": SESSION_ID, "model": "bench", "tools": []}
    ]
    for n in range(events):
        lines.append(
            {
                "type": "stream_event",
                "event": {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"w{n} "}},
                "session_id": SESSION_ID,
                "parent_tool_use_id": None,
                "uuid": str(uuid.UUID(int=n)),
                "api_message_id": message_id,
            }
        )
    body = {"id": message_id, "model": "bench", "role": "assistant", "content": [{"type": "text", "text": "done"}]}
    lines.append({"type": "assistant", "message": body, "session_id": SESSION_ID, "parent_tool_use_id": None})
    lines.append(
        {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "session_id": SESSION_ID,
            "result": "done",
            "total_cost_usd": 0.0,
            "usage": {},
            "duration_ms": 1,
            "duration_api_ms": 1,
            "num_turns": 1,
            "uuid": str(uuid.UUID(int=events + 1)),
        }
    )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _user_line(text: str) -> bytes:
    message = {"type": "user", "message": {"role": "user", "content": text}, "parent_tool_use_id": None}
    return json.dumps(message).encode() + b"\n"


def bare_loop(env: dict[str, str]) -> tuple[float, int]:
    process = subprocess.Popen(
        [sys.executable, REPLAY_CLI], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, bufsize=1 << 16
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        probe = {"type": "control_request", "request_id": "r1", "request": {"subtype": "initialize"}}
        process.stdin.write(json.dumps(probe).encode() + b"\n")
        process.stdin.flush()
        json.loads(process.stdout.readline())  # started and answering: the timed part begins
        start = time.perf_counter()
        process.stdin.write(_user_line("go"))
        process.stdin.flush()
        count = 0
        for line in process.stdout:
            message = json.loads(line)
            count += 1
            if message["type"] == "result":
                break
        return time.perf_counter() - start, count
    finally:
        process.stdin.close()
        process.wait()


async def session_reader(env: dict[str, str]) -> tuple[float, int]:
    options = SessionOptions(cli_path=REPLAY_CLI, env=env)
    count = 0
    async with await Session.spawn(options) as session:
        start = time.perf_counter()
        await session.send_message("go")
        while await session.next_event() is not None:
            count += 1
        elapsed = time.perf_counter() - start
    return elapsed, count


async def sdk_reader(env: dict[str, str]) -> tuple[float, int]:
    from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient

    options = ClaudeAgentOptions(
        cli_path=REPLAY_CLI, include_partial_messages=True, env=env, max_buffer_size=16 * 1024 * 1024
    )
    count = 0
    async with ClaudeSDKClient(options=options) as client:
        start = time.perf_counter()
        await client.query("go")
        async for _ in client.receive_response():
            count += 1
        elapsed = time.perf_counter() - start
    return elapsed, count


def run(*, rounds: int, events: int = 100_000) -> Row:
    times: dict[str, list[float]] = {"bare": [], "session": [], "sdk": []}
    with tempfile.TemporaryDirectory(prefix="claude-bench-replay-") as tmp:
        replay = Path(tmp, "turn.jsonl")
        write_replay(replay, events)
        env = {**os.environ, "BENCH_REPLAY": str(replay), "CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK": "1"}
        readers = {
            "bare": lambda: bare_loop(env),
            "session": lambda: anyio.run(session_reader, env),
            "sdk": lambda: anyio.run(sdk_reader, env),
        }
        for name in readers:  # untimed warm-up: disk caches, imports
            readers[name]()
        for number in range(rounds):
            order = list(readers) if number % 2 == 0 else list(reversed(readers))
            for name in order:
                elapsed, count = readers[name]()
                if count < events:
                    raise RuntimeError(f"{name} read {count} of {events} events")
                times[name].append(elapsed)
    rate = [events / t / 1000 for t in times["bare"]]
    row = Row(1, f"Event pipeline: {events:,} partial-delta events, replayed")
    row.measures = [
        Measure("bare loop (readline + json.loads)", rate, "k events/s"),
        Measure("Session.next_event", [events / t / 1000 for t in times["session"]], "k events/s"),
        Measure("claude-agent-sdk ClaudeSDKClient", [events / t / 1000 for t in times["sdk"]], "k events/s"),
    ]
    # Ratios per round (the three readers ran back to back), then their median: load drifts between rounds.
    session_vs_bare = spread([s / b for s, b in zip(times["session"], times["bare"], strict=True)])[0]
    sdk_vs_session = spread([k / s for k, s in zip(times["sdk"], times["session"], strict=True)])[0]
    row.checks = [
        Check("Session time / bare loop time (per round)", session_vs_bare, "<= 1.5x", session_vs_bare <= 1.5),
        Check("Session throughput / SDK throughput (per round)", sdk_vs_session, ">= 2.8x", sdk_vs_session >= 2.8),
    ]
    return row
