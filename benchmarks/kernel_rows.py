"""Rows 2 to 6: cells through the real kernel (jupyter_client, real CLI, fake Messages API).

2. a cell (execute_request to execute_reply) against the same turn on a raw CLI process and
   against ``claude -p --resume`` per cell, alternating round by round;
3. the first cell after the kernel starts against a warm cell, on fresh kernels;
4. interrupt_request to execute_reply while an answer streams;
5. the kernel's memory and open files over many cells, the CLI's memory beside it;
6. iopub bytes against the final output for a 1 MB answer and for 50 tool calls, with freezing
   off (``CLAUDE_KERNEL_FREEZE_AT=off``: whole-turn redraws, as before) and on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
from jupyter_client.manager import KernelManager

from claude_kernel.install import install
from claude_kernel.session import SessionOptions
from claude_kernel.session._options import build_argv, build_env
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, Text, Thinking
from claude_kernel.testing.long_answer import long_answer, long_code_block, long_list, long_table
from tests.kernel_client import Execution, KernelDriver

from .common import Check, Measure, Row, percentile, spread


@contextlib.contextmanager
def kernelspec() -> Iterator[None]:
    """The Claude kernelspec installed the way users install it, in a private prefix."""
    with tempfile.TemporaryDirectory(prefix="claude-bench-prefix-") as prefix:
        install(prefix=prefix)
        previous = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = str(Path(prefix, "share", "jupyter"))
        try:
            yield
        finally:
            if previous is None:
                del os.environ["JUPYTER_PATH"]
            else:
                os.environ["JUPYTER_PATH"] = previous


@contextlib.contextmanager
def claude_kernel(env: dict[str, str], work: Path, *, name: str = "claude", **extra: str) -> Iterator[KernelDriver]:
    sockets = tempfile.mkdtemp(prefix="ckb-")
    manager = KernelManager(kernel_name=name, transport="ipc", ip=os.path.join(sockets, "k"))
    manager.start_kernel(env={**os.environ, **env, **extra}, cwd=str(work))
    client = manager.blocking_client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield KernelDriver(manager, client)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
        shutil.rmtree(sockets, ignore_errors=True)


def wait_for_reply(driver: KernelDriver, execution: Execution, timeout: float) -> None:
    """Block on the shell channel alone until the cell's execute_reply: no polling delay in the timing."""
    deadline = time.monotonic() + timeout
    while execution.reply is None:
        reply = driver.client.get_shell_msg(timeout=max(0.0, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == execution.msg_id:
            execution.reply = reply["content"]


def timed_cell(
    driver: KernelDriver, code: str, *, timeout: float = 120, cell_id: str | None = None
) -> tuple[float, Execution]:
    """Seconds from execute_request to execute_reply; then the cell's iopub messages are read, untimed."""
    start = time.perf_counter()
    execution = driver.start(code, cell_id=cell_id)
    wait_for_reply(driver, execution, timeout)
    elapsed = time.perf_counter() - start
    driver.pump(execution, timeout=timeout)
    if execution.reply is None or execution.reply["status"] != "ok":
        raise RuntimeError(f"the cell failed: {execution.reply}")
    return elapsed, execution


class RawCLI:
    """The CLI with the session's own flags, driven by hand: a user line in, lines out until the result."""

    def __init__(self, cli: str, env: dict[str, str], work: Path) -> None:
        options = SessionOptions(cli_path=cli, cwd=str(work), env=env)
        self.process = subprocess.Popen(
            build_argv(cli, options),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=build_env(options),
            cwd=work,
        )
        self._send({"type": "control_request", "request_id": "init", "request": {"subtype": "initialize"}})
        self._until(lambda message: message.get("type") == "control_response")

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def _until(self, done: Callable[[dict[str, Any]], bool]) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(b"{") and done(json.loads(line)):
                return
        raise RuntimeError("the CLI ended its output")

    def turn(self, text: str) -> float:
        start = time.perf_counter()
        self._send({"type": "user", "message": {"role": "user", "content": text}, "parent_tool_use_id": None})
        self._until(lambda message: message.get("type") == "result")
        return time.perf_counter() - start

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


def resumed_turn(cli: str, env: dict[str, str], work: Path, text: str, session_id: str | None) -> tuple[float, str]:
    """``claude -p TEXT --resume ID``: a new process for one turn; its time and the session id."""
    argv = [cli, "-p", text, "--output-format", "json"] + ([f"--resume={session_id}"] if session_id else [])
    start = time.perf_counter()
    done = subprocess.run(argv, env={**os.environ, **env}, cwd=work, capture_output=True, check=True)
    elapsed = time.perf_counter() - start
    return elapsed, json.loads(done.stdout)["session_id"]


def cell_vs_raw_vs_resume(cli: str, env: dict[str, str], work: Path, *, rounds: int, cells: int) -> Row:
    kernel: list[float] = []
    raw: list[float] = []
    resume: list[float] = []
    excess: list[float] = []
    ratios: list[tuple[float, float]] = []  # per round: kernel / raw, resume / kernel (medians of the round)
    with claude_kernel(env, work) as driver:
        for _ in range(3):  # warm: the CLI started, caches filled
            timed_cell(driver, "warm up")
        process = RawCLI(cli, env, work)
        _, session_id = resumed_turn(cli, env, work, "first", None)
        try:
            process.turn("warm up")
            for number in range(rounds):
                steps: list[Callable[[], None]] = [
                    lambda: kernel.extend(timed_cell(driver, f"cell {n}")[0] for n in range(cells)),
                    lambda: raw.extend(process.turn(f"raw {n}") for n in range(cells)),
                    lambda: resume.append(resumed_turn(cli, env, work, "resumed", session_id)[0]),
                ]
                for step in steps if number % 2 == 0 else steps[::-1]:
                    step()
                k, r = spread(kernel[-cells:])[0], spread(raw[-cells:])[0]
                ratios.append((k / r, resume[-1] / k))
                excess.append(k - r)
        finally:
            process.close()
    with claude_kernel(env, work, name="python3") as driver:  # Jupyter's own round trip, for scale
        floor = [timed_cell(driver, "pass")[0] for _ in range(25)][5:]
    row = Row(2, "A cell: kernel (execute_request to execute_reply) vs raw CLI process vs `claude -p --resume`")
    row.measures = [
        Measure("cell through the kernel", kernel, "ms", 1000),
        Measure("same turn on the raw CLI process", raw, "ms", 1000),
        Measure("`claude -p --resume` per cell", resume, "ms", 1000),
        Measure("for scale: an empty cell (`pass`) in a stock IPython kernel", floor, "ms", 1000),
        Measure("kernel cell minus raw CLI turn (per round)", excess, "ms", 1000),
    ]
    over_raw = spread([pair[0] for pair in ratios])[0]
    speedup = spread([pair[1] for pair in ratios])[0]
    row.checks = [
        Check("kernel cell / raw CLI turn (per round)", over_raw, "<= 1.2x", over_raw <= 1.2),
        Check("`--resume` per cell / kernel cell (per round)", speedup, ">= 5x", speedup >= 5),
    ]
    return row


def first_vs_warm(cli: str, env: dict[str, str], work: Path, *, kernels: int) -> Row:
    """The first cell on fresh kernels, and beside it the first turn of fresh raw CLI processes."""
    first, warm, ratios, raw_ratios = [], [], [], []
    for _ in range(kernels):
        with claude_kernel(env, work) as driver:
            elapsed, _ = timed_cell(driver, "first cell")
            warmed = [timed_cell(driver, f"warm {n}")[0] for n in range(5)]
        first.append(elapsed)
        warm += warmed
        ratios.append(elapsed / spread(warmed)[0])
        process = RawCLI(cli, env, work)
        try:
            turns = [process.turn(f"turn {n}") for n in range(6)]
        finally:
            process.close()
        raw_ratios.append(turns[0] / spread(turns[1:])[0])
    row = Row(3, "First cell after kernel start vs a warm cell (fresh kernel each time)")
    row.measures = [
        Measure("first cell", first, "ms", 1000),
        Measure("warm cell", warm, "ms", 1000),
        Measure("first / warm, per kernel", ratios, "x"),
        Measure("raw CLI process: first turn / warm turn", raw_ratios, "x"),
    ]
    ratio = spread(ratios)[0]
    row.checks = [Check("first cell / warm cell (median of kernels)", ratio, "<= 1.5x", ratio <= 1.5)]
    return row


def interrupts(api: FakeMessagesAPI, env: dict[str, str], work: Path, *, times: int) -> Row:
    latencies = []
    with claude_kernel(env, work) as driver:
        timed_cell(driver, "warm up")
        for _ in range(times):
            api.enqueue(Reply.text("streaming on and on " * 2000, chunk=8, delay=0.005))
            execution = driver.start("Talk for a long time")
            driver.pump(execution, until=lambda e: e.count("display_data") + e.count("update_display_data") >= 2)
            start = time.perf_counter()
            driver.manager.interrupt_kernel()
            wait_for_reply(driver, execution, 30)
            latencies.append(time.perf_counter() - start)
            driver.pump(execution)
    row = Row(4, f"Interrupt request to execute_reply while an answer streams ({times} times)")
    row.measures = [Measure("interrupt to reply", latencies, "ms", 1000)]
    p95 = percentile(latencies, 0.95)
    row.checks = [Check("p95", p95 * 1000, "< 250 ms", p95 < 0.25, unit="ms")]
    return row


def memory(env: dict[str, str], work: Path, *, cells: int) -> Row:
    with claude_kernel(env, work) as driver:
        pid = driver.manager.provisioner.pid  # type: ignore[union-attr]
        kernel = psutil.Process(pid)

        def cli_rss() -> int:
            clis = [p for p in kernel.children(recursive=True) if "claude" in " ".join(p.cmdline())]
            return max((p.memory_info().rss for p in clis), default=0)

        for n in range(20):  # warm: imports, caches, the CLI's first turns
            timed_cell(driver, f"warm {n}")
        start = (kernel.memory_info().rss, kernel.num_fds(), cli_rss())
        for n in range(cells):
            timed_cell(driver, f"cell {n}")
        end = (kernel.memory_info().rss, kernel.num_fds(), cli_rss())
    row = Row(5, f"Memory over {cells} cells (after 20 warm-up cells)")
    row.measures = [
        Measure("kernel RSS, start / end", [start[0] / 1e6, end[0] / 1e6], "MB"),
        Measure("kernel open fds, start / end", [start[1], end[1]], "fds"),
        Measure("CLI RSS, start / end", [start[2] / 1e6, end[2] / 1e6], "MB"),
    ]
    growth = (end[0] - start[0]) / 1e6
    row.checks = [
        Check("kernel RSS growth", growth, "< 10 MB", growth < 10, unit="MB"),
        Check("kernel fds growth", end[1] - start[1], "0 (flat)", end[1] <= start[1], unit="fds"),
        Check("CLI RSS growth (for scale)", (end[2] - start[2]) / 1e6, "-", True, unit="MB"),
    ]
    row.note = f"the CLI's memory grows with the conversation: {start[2] / 1e6:.0f} to {end[2] / 1e6:.0f} MB"
    return row


def iopub_cost(execution: Execution) -> tuple[int, int, int]:
    """(data bytes sent, whole messages' bytes, data bytes kept): display messages only."""
    displays = [m for m in execution.outputs if m["msg_type"] in ("display_data", "update_display_data")]
    data = sum(len(json.dumps(m["content"]["data"])) for m in displays)
    whole = sum(len(json.dumps(m, default=str)) for m in displays)
    kept = sum(len(json.dumps(bundle)) for bundle in execution.displays().values())
    return data, whole, kept


def paced(answer: str) -> Reply:
    """``answer`` streamed at about 50 KB/s in 32-character deltas: 1 MB in some 20 s, so redraws happen."""
    return Reply.text(answer, chunk=32, delay=0.0006)


def _size(characters: int) -> str:
    return f"{characters / 1e6:.0f} MB" if characters >= 1e6 else f"{characters / 1e3:.0f} KB"


def long_output(api: FakeMessagesAPI, env: dict[str, str], work: Path, *, tools: int) -> Row:
    """Before (freezing off) and after, on a 250 KB answer and 50 tool calls; after only on 1 MB.

    Before freezing, the kernel re-renders the whole answer for every redraw: 1 MB takes it more
    than ten minutes (measured once, then stopped), so "before" stops at 250 KB.
    """
    for n in range(tools):
        (work / f"file{n}.txt").write_text(f"contents of file {n}\n")
    cases = [("off", 250_000), ("on", 250_000), ("on", 1_000_000)]
    row = Row(6, f"Long output: iopub display bytes / final output, long answers and {tools} tool calls")
    for mode, size in cases:
        extra = {"CLAUDE_KERNEL_FREEZE_AT": "off"} if mode == "off" else {}
        when = "before (freezing off)" if mode == "off" else "after"
        with claude_kernel(env, work, **extra) as driver:
            api.enqueue(paced(long_answer(size)))
            elapsed, execution = timed_cell(driver, "Write the long report", timeout=900)
            data, whole, kept = iopub_cost(execution)
            row.measures.append(Measure(f"{_size(size)} answer, {when}: data sent / kept", [data / kept], "x"))
            row.measures.append(Measure(f"{_size(size)} answer, {when}: cell time", [elapsed], "s"))
            if mode == "on" and size >= 1_000_000:
                ratio = data / kept
                row.checks.append(Check("1 MB answer: data sent / final output", ratio, "<= 3x", ratio <= 3))
                row.checks.append(Check("1 MB answer: whole messages / final output", whole / kept, "-", True))
                row.note = f"final output of the 1 MB answer: {kept / 1e6:.1f} MB of HTML and text"
            if size >= 1_000_000:
                continue
            api.enqueue(
                *(Reply.tool("Read", {"file_path": str(work / f"file{n}.txt")}) for n in range(tools)),
                Reply.text("Read them all."),
            )
            elapsed, execution = timed_cell(driver, "Read the files", timeout=900)
            data, whole, kept = iopub_cost(execution)
            row.measures.append(Measure(f"{tools} tool calls, {when}: data sent / kept", [data / kept], "x"))
            if mode == "on":
                label = f"{tools} tool calls"
                row.checks.append(Check(f"{label}: data sent / final output", data / kept, "<= 3x", data / kept <= 3))
                row.checks.append(Check(f"{label}: whole messages / final output", whole / kept, "-", True))
    # One long block each: cut inside as it streams (a code block, a list), or shown by its tail
    # until it is complete (a table).
    thinking = Reply((Thinking(long_answer(100_000), 32), Text(long_answer(100_000), 32)), delay=0.0006)
    shapes = [
        ("one code block", paced(long_code_block(250_000)), "<= 3x"),
        ("one list", paced(long_list(250_000)), "<= 3x"),
        ("100 KB of thinking, then a 100 KB answer", thinking, "<= 3x"),
        ("one table", paced(long_table(250_000)), "<= 3x"),
    ]
    for label, reply, target in shapes:
        with claude_kernel(env, work) as driver:
            api.enqueue(reply)
            _, execution = timed_cell(driver, "Write it", timeout=900)
        data, _, kept = iopub_cost(execution)
        name = label if label.startswith("100 KB") else f"250 KB answer in {label}"
        row.checks.append(
            Check(f"{name}: data sent / final output", data / kept, target, target == "-" or data / kept <= 3)
        )
    return row
