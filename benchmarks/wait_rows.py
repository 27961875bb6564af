"""Rows 8 to 11: the moments people wait for (issue 21), each measured beside its reference.

8. first token: execute_request to the first iopub message showing the answer's first word,
   beside a raw CLI process's user line to its first ``text_delta`` (same reply, same run);
9. Restart Kernel to the first answer, beside a stock IPython kernel's restart to ``pass``;
10. re-running an earlier cell (a rewind) and the last one (a retry) against a warm cell, at 20
    and 300 turns, and the transcripts' bytes before and after the rewinds;
11. the memory of 1, 4 and 8 idle notebooks before and after the idle stop.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any

import psutil

from benchmarks.common import Check, Measure, Row, spread
from benchmarks.kernel_rows import RawCLI, claude_kernel, timed_cell
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply
from tests.kernel_client import KernelDriver

FIRST = "Firstword"


def _first_reply() -> Reply:
    # The first word at once, then a slow rest: the row times the first word, not the stream.
    return Reply.text(FIRST + " and then" + " more" * 40, chunk=9, delay=0.01)


def _kernel_first_token(driver: KernelDriver) -> float:
    """execute_request to the first iopub display holding the first word; then the cell is read to its end."""
    start = time.perf_counter()
    execution = driver.start("say something")
    first: float | None = None
    while first is None:
        try:
            msg = driver.client.get_iopub_msg(timeout=30)
        except Empty:
            raise RuntimeError("no answer on iopub") from None
        if msg["parent_header"].get("msg_id") != execution.msg_id:
            continue
        if msg["msg_type"] in ("display_data", "update_display_data") and FIRST in json.dumps(msg["content"]["data"]):
            first = time.perf_counter() - start
    driver.pump(execution)
    return first


def _raw_first_token(process: RawCLI) -> float:
    start = time.perf_counter()
    process._send({"type": "user", "message": {"role": "user", "content": "say something"}, "parent_tool_use_id": None})
    first: float | None = None

    def done(message: dict[str, Any]) -> bool:
        nonlocal first
        delta = (message.get("event") or {}).get("delta") or {}
        if first is None and message.get("type") == "stream_event" and delta.get("type") == "text_delta":
            first = time.perf_counter() - start
        return message.get("type") == "result"

    process._until(done)
    assert first is not None
    return first


def first_token(api: FakeMessagesAPI, cli: str, env: dict[str, str], work: Path, *, times: int) -> Row:
    kernel, raw = [], []
    with claude_kernel(env, work) as driver:
        timed_cell(driver, "warm up")
        process = RawCLI(cli, env, work)
        try:
            process.turn("warm up")
            for _ in range(times):  # interleaved, so both see the same machine
                api.enqueue(_first_reply())
                kernel.append(_kernel_first_token(driver))
                api.enqueue(_first_reply())
                raw.append(_raw_first_token(process))
        finally:
            process.close()
    excess = [k - r for k, r in zip(kernel, raw, strict=True)]
    row = Row(8, "First token: execute_request to the first iopub text vs a raw CLI's first text_delta")
    row.measures = [
        Measure("kernel: first text on iopub", kernel, "ms", 1000),
        Measure("raw CLI: first text_delta on stdout", raw, "ms", 1000),
        Measure("kernel minus raw CLI (per pair)", excess, "ms", 1000),
    ]
    median = spread(excess)[0]
    p90 = sorted(excess)[int(0.9 * (len(excess) - 1))]
    row.checks = [
        Check("added by the kernel, median", median * 1000, "< 100 ms", median < 0.1, unit="ms"),
        Check("added by the kernel, p90", p90 * 1000, "< 100 ms", p90 < 0.1, unit="ms"),
    ]
    row.note = "before: the status redraw opened the 0.25 s throttle, and the first words waited for it (about 250 ms)"
    return row


def _restart_to_answer(driver: KernelDriver, code: str) -> tuple[float, float]:
    """Restart Kernel (as JupyterLab: shutdown with restart, then start) to the first cell's reply."""
    start = time.perf_counter()
    driver.manager.restart_kernel(now=False)
    restarted = time.perf_counter() - start
    driver.client.wait_for_ready(timeout=60)
    execution = driver.run(code, timeout=120)
    if execution.reply is None or execution.reply["status"] != "ok":
        raise RuntimeError(f"the cell failed after the restart: {execution.reply}")
    return time.perf_counter() - start, restarted


def restart(env: dict[str, str], work: Path, *, times: int) -> Row:
    notebook = {"JPY_SESSION_NAME": str(work / f"restart-{uuid.uuid4().hex[:8]}.ipynb")}
    claude, claude_shutdown, python, python_shutdown = [], [], [], []
    with claude_kernel(env, work, **notebook) as ours, claude_kernel(env, work, name="python3") as stock:
        timed_cell(ours, "a conversation to continue")
        for _ in range(times):
            total, down = _restart_to_answer(ours, "hello again")
            claude.append(total)
            claude_shutdown.append(down)
            total, down = _restart_to_answer(stock, "pass")
            python.append(total)
            python_shutdown.append(down)
    ratio = spread(claude)[0] / spread(python)[0]
    row = Row(9, "Restart Kernel to the first answer vs a stock IPython kernel's restart to `pass`")
    row.measures = [
        Measure("Claude kernel: restart to first answer", claude, "s"),
        Measure("  of which restart_kernel() (shutdown, then start)", claude_shutdown, "s"),
        Measure("IPython kernel: restart to `pass`", python, "s"),
        Measure("  of which restart_kernel()", python_shutdown, "s"),
    ]
    row.checks = [Check("Claude / IPython (medians)", ratio, "<= 2x", ratio <= 2)]
    row.note = "before: 4.6-5.7 s (the CLI got SIGTERM at 2 s, the kernel SIGTERM at 2.5 s) vs 0.8-0.9 s"
    return row


def _transcript_bytes(env: dict[str, str]) -> tuple[int, int]:
    files = list(Path(env["HOME"], ".claude", "projects").glob("*/*.jsonl"))
    return sum(path.stat().st_size for path in files), len(files)


def rewinds(env: dict[str, str], work: Path, *, turns_list: tuple[int, ...], times: int) -> Row:
    row = Row(10, "Re-running an earlier cell (rewind) and the last (retry) vs a warm cell, by conversation length")
    for turns in turns_list:
        home = Path(env["HOME"]).parent / f"home-rewind-{turns}-{uuid.uuid4().hex[:6]}"
        home.mkdir()
        local = {**env, "HOME": str(home)}
        notebook = {"JPY_SESSION_NAME": str(work / f"rewind-{turns}.ipynb")}
        warm, rewind, retry = [], [], []
        with claude_kernel(local, work, **notebook) as driver:
            for n in range(turns):
                timed_cell(driver, f"cell {n}", cell_id=f"c{n}")
            bytes_before, files_before = _transcript_bytes(local)
            last = turns - 1
            for _ in range(times):
                warm.append(timed_cell(driver, "a new cell", cell_id=f"w{uuid.uuid4().hex}")[0])
                last -= 2  # re-running c(last) drops it and the cells after it (the warm one among them)
                rewind.append(timed_cell(driver, f"cell {last} again", cell_id=f"c{last}")[0])
                retry.append(timed_cell(driver, f"cell {last} once more", cell_id=f"c{last}")[0])
            bytes_after, files_after = _transcript_bytes(local)
        w = spread(warm)[0]
        row.measures += [
            Measure(f"{turns} turns: warm cell", warm, "ms", 1000),
            Measure(f"{turns} turns: rewind (an earlier cell again)", rewind, "ms", 1000),
            Measure(f"{turns} turns: retry (the last cell again)", retry, "ms", 1000),
            Measure(f"{turns} turns: transcripts before the rewinds", [bytes_before / 1e3], "KB"),
            Measure(f"{turns} turns: transcripts after {times} rewinds and {times} retries", [bytes_after / 1e3], "KB"),
        ]
        growth = bytes_after / bytes_before
        row.checks += [
            Check(f"{turns} turns: rewind / warm", spread(rewind)[0] / w, "<= 3x", spread(rewind)[0] / w <= 3),
            Check(f"{turns} turns: retry / warm", spread(retry)[0] / w, "<= 3x", spread(retry)[0] / w <= 3),
            Check(
                f"{turns} turns: transcript bytes after / before ({files_before} then {files_after} files)",
                growth,
                "< 1.5x",
                growth < 1.5,
            ),
        ]
    row.note = (
        "before: a rewind or retry restarted the CLI on a fork, 12-16x a warm cell, and copied the transcript "
        "(3 rewinds at 20 turns: 259 KB to 767 KB)"
    )
    return row


def _rss_mb(kernel: psutil.Process) -> tuple[float, float]:
    """The kernel's RSS and its children's (the CLI and what it started), in MB."""
    children = kernel.children(recursive=True)
    alive = []
    for child in children:
        try:
            alive.append(child.memory_info().rss)
        except psutil.NoSuchProcess:
            continue
    return kernel.memory_info().rss / 1e6, sum(alive) / 1e6


def idle_memory(env: dict[str, str], work: Path, *, counts: tuple[int, ...], idle_s: float = 15.0) -> Row:
    row = Row(11, f"Idle notebooks: RSS before and after the idle stop (CLAUDE_KERNEL_IDLE_STOP_S={idle_s:g})")
    kernel_after: list[float] = []
    for count in counts:
        drivers, contexts = [], []
        try:
            for n in range(count):
                context = claude_kernel(
                    env,
                    work,
                    JPY_SESSION_NAME=str(work / f"idle-{count}-{n}.ipynb"),
                    CLAUDE_KERNEL_IDLE_STOP_S=str(idle_s),
                )
                drivers.append(context.__enter__())
                contexts.append(context)
            kernels = [psutil.Process(d.manager.provisioner.pid) for d in drivers]  # type: ignore[union-attr]
            for driver in drivers:
                timed_cell(driver, "hello")
            before = [_rss_mb(k) for k in kernels]
            deadline = time.monotonic() + 120
            while any(k.children(recursive=True) for k in kernels) and time.monotonic() < deadline:
                time.sleep(0.2)
            after = [_rss_mb(k) for k in kernels]
        finally:
            for context in reversed(contexts):
                context.__exit__(None, None, None)
        total_before = sum(k + c for k, c in before)
        total_after = sum(k + c for k, c in after)
        kernel_after += [k for k, _ in after]
        label = f"{count} notebook{'s' if count > 1 else ''}: total RSS (kernels and CLIs)"
        row.measures += [
            Measure(f"{label}, idle, before the stop", [total_before], "MB"),
            Measure(f"{label}, after the stop", [total_after], "MB"),
        ]
    row.measures.append(Measure("one kernel after the idle stop", kernel_after, "MB"))
    largest = max(kernel_after)
    row.checks = [Check("largest kernel after the idle stop", largest, "< 100 MB", largest < 100, unit="MB")]
    return row
