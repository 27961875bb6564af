"""Hundreds of cells through nbclient on the real CLI and the fake Messages API, with faults mixed in.

Each cell is planned up front (its kind, its text, what it must show) and the fake model answers by
the cell number written in the message, never by queue order, so a fault in one cell cannot shift
the script of the next. Kinds: plain answers, Bash calls the headless policy allows (they really
run) or denies, ``ask_user`` calls nobody can answer, interrupts while a slow answer streams, API
errors (401, 429, 500, 529), a SIGKILL of the CLI every ``kill_every`` cells (mid-answer and
between cells, in turn), a Write followed by ``%undo force`` (the file must be gone, and the next
undo must not bring it back), and a kernel restart before a cell that continues the notebook's
conversation with ``%resume last`` (nbclient's runs are headless: they start fresh otherwise).

What is checked, per cell: a reply within the timeout (else a hang), the reply's status and error
name, and the cell's scripted text in its output (else a lost reply); per model request: that it
carries the previous answered cell's message and answer (the conversation survived interrupts,
errors and kills). Across the run: the kernel's RSS and open fds, how many CLI processes were alive
at once, and, after shutdown, any process left that carries the run's marker variable (the kernel,
the CLI and the tools' children all inherit it).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

from claude_kernel.install import install
from claude_kernel.testing.fake_api import ErrorReply, FakeMessagesAPI, Reply, ToolUse, tool_results, user_text

__all__ = ["Plan", "SoakReport", "plan_cells", "run_soak"]

MARKER = "CLAUDE_KERNEL_SOAK"
INTERRUPTED = "Interrupted; the conversation continues in the next cell."
CRASHED = "The claude CLI stopped during this cell; the next cell resumes the conversation."
RESUMED = "The CLI had stopped; resumed session"
API_ERRORS = (
    (401, "authentication_error", "ANTHROPIC_API_KEY"),
    (429, "rate_limit_error", "rate limited"),
    (500, "api_error", "soak server error"),
    (529, "overloaded_error", "overloaded"),
)
# About 8 s of text if nobody stops it.
SLOW = Reply.text("word " * 400, delay=0.02, chunk=5)
WORDS = ("otter", "lynx", "moose", "heron", "marten", "badger", "ibis", "stoat", "vole", "wren")


@dataclass(frozen=True)
class Plan:
    """One cell: what it sends and what it must show."""

    number: int
    kind: str
    source: str
    #: The status and error name the execute_reply must have.
    status: str = "ok"
    ename: str = ""
    #: Text that must appear in the cell's output (displays, streams, the error).
    expect: str = ""
    #: The line the fake model answers with (for answered cells).
    answer: str = ""
    #: API errors: the scripted error.
    error: tuple[int, str, str] | None = None

    @property
    def tag(self) -> str:
        return f"[cell {self.number}]"


def plan_cells(cells: int, *, kill_every: int = 50, seed: int = 9) -> list[Plan]:
    """A reproducible mix of cell kinds; every ``kill_every``-th cell kills the CLI."""
    rng = random.Random(seed)
    kinds = [
        *["answer"] * 8,
        *["allowed"] * 3,
        *["denied"] * 3,
        "question",
        *["interrupt"] * 2,
        "interrupt_tool",
        "interrupt_early",
        *["api_error"] * 2,
        "write",
        "restart",
    ]
    plans: list[Plan] = []
    for number in range(1, cells + 1):
        if number % kill_every == 0:
            kind = "kill_mid" if (number // kill_every) % 2 else "kill_idle"
        elif number <= 2:
            kind = "answer"  # the CLI is warm before the faults start
        elif plans and plans[-1].kind == "write":
            kind = "undo"  # a write is undone by the very next cell
        else:
            kind = rng.choice(kinds)
            if kind == "write" and ((number + 1) % kill_every == 0 or number == cells):
                kind = "answer"  # no room for its undo before a kill or the end
        plans.append(_plan(number, kind, rng))
    return plans


def written(number: int) -> str:
    """The file a ``write`` cell has Claude create (in the working folder)."""
    return f"soak-{number}.txt"


def _plan(number: int, kind: str, rng: random.Random) -> Plan:
    tag = f"[cell {number}]"
    answer = f"Answer {number}: {rng.choice(WORDS)}."
    if kind == "write":
        source = f"%permissions headless allow\n{tag} Write the file."
        return Plan(number, kind, source, expect=answer, answer=answer)
    if kind == "undo":
        # %history after it: the cell is marked undone, so no later %undo re-applies it.
        expect = f"deleted (the cell had created them): {written(number - 1)}"
        return Plan(number, kind, "%undo force\n%history", expect=expect)
    if kind == "restart":
        return Plan(number, kind, f"%resume last\n{tag} Say something.", expect=answer, answer=answer)
    if kind in ("answer", "kill_idle"):
        expect = f"{answer}\n" if kind == "answer" else answer
        return Plan(number, kind, f"{tag} Say something.", expect=expect.strip(), answer=answer)
    if kind == "allowed":
        source = f"%permissions headless allow\n{tag} Run the command."
        return Plan(number, kind, source, expect=answer, answer=answer)
    if kind == "denied":
        source = f"%permissions headless deny\n{tag} Run the command."
        return Plan(number, kind, source, expect=answer, answer=answer)
    if kind == "question":
        return Plan(number, kind, f"{tag} Ask me something.", expect=answer, answer=answer)
    if kind == "interrupt":
        return Plan(number, kind, f"{tag} Talk for a long time.", "error", "KeyboardInterrupt", INTERRUPTED)
    if kind == "interrupt_tool":
        source = f"%permissions headless allow\n{tag} Run the slow command."
        return Plan(number, kind, source, "error", "KeyboardInterrupt", INTERRUPTED)
    if kind == "interrupt_early":
        # Interrupted within a few ms of the request: before, during or after the turn, so either
        # an interrupted cell or its answer (checked in _check).
        return Plan(number, kind, f"{tag} Say something.", "error", "KeyboardInterrupt", answer=answer)
    if kind == "kill_mid":
        return Plan(number, kind, f"{tag} Talk for a long time.", "error", "ProcessDiedError", CRASHED)
    if kind == "api_error":
        status, kind_name, expect = rng.choice(API_ERRORS)
        message = f"soak server error {number}" if status == 500 else f"soak {kind_name} {number}"
        return Plan(
            number, kind, f"{tag} Say something.", "error", "ClaudeError", expect, error=(status, kind_name, message)
        )
    raise ValueError(kind)


@dataclass
class CellResult:
    plan: Plan
    seconds: float
    hung: bool = False
    status: str = ""
    ename: str = ""
    output: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class SoakReport:
    cells: list[CellResult]
    seconds: float
    rss_kb: list[int]
    fds: list[int]
    most_clis_at_once: int
    left_after_shutdown: list[str]
    request_problems: list[str]
    kills: int = 0
    restarts: int = 0

    @property
    def hangs(self) -> int:
        return sum(c.hung for c in self.cells)

    @property
    def lost(self) -> list[CellResult]:
        return [c for c in self.cells if c.problems and not c.hung]

    @property
    def ok(self) -> bool:
        return not (self.hangs or self.lost or self.request_problems or self.left_after_shutdown)

    def table(self) -> str:
        kinds = Counter(c.plan.kind for c in self.cells)
        durations = sorted(c.seconds for c in self.cells)
        warm = min(len(self.rss_kb) - 1, 2)  # after two cells: the CLI and the widgets are loaded
        rows = [
            ("cells", f"{len(self.cells)} ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})"),
            ("wall time", f"{self.seconds:.0f} s ({self.seconds / max(len(self.cells), 1):.2f} s per cell)"),
            ("slowest cell", f"{durations[-1]:.1f} s; median {durations[len(durations) // 2]:.2f} s"),
            ("hangs (no reply in time)", str(self.hangs)),
            ("lost or wrong replies", str(len(self.lost))),
            ("requests missing earlier turns", str(len(self.request_problems))),
            ("CLI kills (SIGKILL)", str(self.kills)),
            ("kernel restarts", str(self.restarts)),
            ("most CLI processes at once", str(self.most_clis_at_once)),
            (
                "kernel RSS",
                f"{self.rss_kb[warm] / 1024:.1f} MB after cell {warm} -> {self.rss_kb[-1] / 1024:.1f} MB at the end "
                f"(max {max(self.rss_kb) / 1024:.1f} MB)",
            ),
            (
                "kernel open fds",
                f"{self.fds[warm]} after cell {warm} -> {self.fds[-1]} at the end (max {max(self.fds)})",
            ),
            ("processes left after shutdown", str(len(self.left_after_shutdown))),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        for cell in self.cells:
            for problem in cell.problems:
                lines.append(f"  cell {cell.plan.number} ({cell.plan.kind}): {problem}")
        lines += [f"  {problem}" for problem in self.request_problems[:20]]
        lines += [f"  left: {left}" for left in self.left_after_shutdown]
        return "\n".join(lines)


class _Model:
    """The fake model's script: it answers each request by the cell number in it."""

    def __init__(self, plans: list[Plan], marker: str, work: Path) -> None:
        self.plans = {p.number: p for p in plans}
        self.marker = marker
        self.work = work
        #: Set when a cell's first model request arrives (interrupts and kills wait for it).
        self.arrived: dict[int, threading.Event] = {p.number: threading.Event() for p in plans}
        #: Cells that ended with their answer shown (their turns must be in every later request).
        self.confirmed: list[int] = []
        self.problems: list[str] = []

    def __call__(self, request: dict[str, Any]) -> Reply | ErrorReply:
        # After a turn that got no answer (an API error, an interrupted tool) the CLI sends the next
        # message together with what is left of that turn, in one user message: the cell is the
        # last tag, and a tool result is the current turn's only when no message came with it.
        tags = re.findall(r"\[cell (\d+)\]", user_text(request))
        results = tool_results(request)
        if results and not tags:
            return self._after_tool(results[-1])
        if not tags:
            self.problems.append(f"a request with no cell tag: {user_text(request)[:200]!r}")
            return Reply.text("Unplanned request.")
        plan = self.plans[int(tags[-1])]
        self._check_history(plan, request)
        self.arrived[plan.number].set()
        if plan.kind in ("interrupt", "kill_mid"):
            return SLOW
        if plan.kind == "api_error":
            assert plan.error is not None
            return ErrorReply(*plan.error)
        if plan.kind in ("allowed", "denied"):
            command = f"echo soak-{plan.number} ${MARKER}"
            return Reply((ToolUse("Bash", {"command": command, "description": "Echo"}, f"toolu_soak_{plan.number}"),))
        if plan.kind == "interrupt_tool":
            # Named in its argv, so the interrupt can wait for it and the check can find it after.
            command = f"python3 -c 'import time; time.sleep(60)' {_sleeper(plan)}"
            return Reply((ToolUse("Bash", {"command": command, "description": "Wait"}, f"toolu_soak_{plan.number}"),))
        if plan.kind == "question":
            return Reply((ToolUse("mcp__notebook__ask_user", {"question": "Which?"}, f"toolu_soak_{plan.number}"),))
        if plan.kind == "write":
            change = {"file_path": str(self.work / written(plan.number)), "content": f"{plan.answer}\n"}
            return Reply((ToolUse("Write", change, f"toolu_soak_{plan.number}"),))
        return self._answer(plan)

    def _answer(self, plan: Plan) -> Reply:
        return Reply.text(plan.answer)

    def _after_tool(self, result: dict[str, Any]) -> Reply:
        plan = self.plans[int(result["tool_use_id"].rsplit("_", 1)[1])]
        content = json.dumps(result.get("content"))
        is_error = bool(result.get("is_error"))
        if plan.kind == "write":
            good = not is_error and (self.work / written(plan.number)).exists()
        elif plan.kind == "allowed":
            # The command ran, in an environment inherited from the kernel (the marker is there).
            good = not is_error and f"soak-{plan.number} {self.marker}" in content
        elif plan.kind == "denied":
            good = is_error and "headless run" in content
        else:
            good = is_error and "No one is at the notebook" in content
        if not good:
            return Reply.text(f"Unexpected tool result for {plan.tag}: {content[:300]}")
        return self._answer(plan)

    def _check_history(self, plan: Plan, request: dict[str, Any]) -> None:
        """The request carries the latest answered cell's message and answer: nothing was lost."""
        if not self.confirmed:
            return
        previous = self.plans[self.confirmed[-1]]
        history = json.dumps(request.get("messages", []))
        for needed in (previous.tag, previous.answer):
            if needed not in history:
                self.problems.append(f"the request of {plan.tag} lacks {needed!r} (cell {previous.number})")


def _proc_status(pid: int) -> tuple[int, int]:
    """RSS in kB and the number of open fds of a process."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def _marked_processes(marker: str) -> dict[int, tuple[int, str]]:
    """Live processes (zombies excluded) whose environment carries the run's marker: pid -> (ppid, command)."""
    found = {}
    needle = f"{MARKER}={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes():
                continue
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        if state != "Z":
            found[int(entry.name)] = (int(ppid), command)
    return found


def _clis(marker: str, kernel_pid: int) -> list[int]:
    """The kernel's CLI processes: its only children."""
    return [pid for pid, (ppid, _) in _marked_processes(marker).items() if ppid == kernel_pid]


def _output_text(cell: Any) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type in ("display_data", "execute_result"):
            parts.append(output.data.get("text/plain", ""))
        elif output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
    return "\n".join(parts)


def _sleeper(plan: Plan) -> str:
    return f"soak-sleeper-{plan.number}"


def _check(plan: Plan, result: CellResult) -> None:
    if plan.kind == "interrupt_early" and result.status == "ok":
        plan = Plan(plan.number, plan.kind, plan.source, expect=plan.answer)  # the turn beat the interrupt
    if result.status != plan.status or result.ename != plan.ename:
        result.problems.append(f"replied {result.status} {result.ename}, expected {plan.status} {plan.ename}")
    if plan.expect.lower() not in result.output.lower():
        result.problems.append(f"{plan.expect!r} not in the output: {result.output[-400:]!r}")
    if "Unexpected tool result" in result.output:
        result.problems.append("the tool result was not what the policy says")
    if plan.kind == "interrupt_early" and result.status != "ok" and "Interrupted" not in result.output:
        result.problems.append("an interrupted cell that does not say so")
    if plan.kind == "undo" and f"{written(plan.number - 1)} (undone)" not in result.output:
        result.problems.append("%history does not show the undone cell as undone")
    if plan.kind == "kill_idle" and RESUMED not in result.output:
        result.problems.append("no 'resumed' note after the CLI was killed between cells")


async def run_soak(
    cells: int = 300,
    *,
    kill_every: int = 50,
    cell_timeout: float = 60.0,
    seed: int = 9,
    progress: Callable[[CellResult], None] | None = None,
) -> SoakReport:
    """Run the soak in a private HOME, kernelspec prefix and working folder; report what happened."""
    plans = plan_cells(cells, kill_every=kill_every, seed=seed)
    marker = uuid.uuid4().hex
    scratch = Path(tempfile.mkdtemp(prefix="claude-soak-"))
    model = _Model(plans, marker, scratch / "work")
    try:
        with FakeMessagesAPI(fallback=model) as api:
            return await _drive(plans, model, api, scratch, marker, cell_timeout, progress)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def _drive(
    plans: list[Plan],
    model: _Model,
    api: FakeMessagesAPI,
    scratch: Path,
    marker: str,
    cell_timeout: float,
    progress: Callable[[CellResult], None] | None,
) -> SoakReport:
    home, work = scratch / "home", scratch / "work"
    home.mkdir()
    work.mkdir()
    install(prefix=str(scratch / "prefix"))
    env = {
        **os.environ,
        **api.environment(),
        "HOME": str(home),
        "JUPYTER_PATH": str(scratch / "prefix" / "share" / "jupyter"),
        "JUPYTER_DATA_DIR": str(scratch / "jupyter-data"),
        # nbclient names no notebook: this one has the state file that %resume last reads after a restart.
        "CLAUDE_KERNEL_NOTEBOOK": str(work / "soak.ipynb"),
        MARKER: marker,
    }
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(plan.source) for plan in plans]
    replies: dict[int, dict[str, Any]] = {}

    def on_executed(cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        replies[cell_index] = execute_reply["content"]

    client = NotebookClient(
        nb,
        kernel_name="claude",
        timeout=cell_timeout,
        allow_errors=True,
        interrupt_on_timeout=True,
        on_cell_executed=on_executed,
        resources={"metadata": {"path": str(work)}},
    )
    # The kernelspec lives in the private prefix: nbclient's kernel manager must look there.
    saved_path = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]
    results: list[CellResult] = []
    rss: list[int] = []
    fds: list[int] = []
    most_clis = kills = restarts = 0
    started = time.monotonic()
    try:
        async with client.async_setup_kernel(env=env):
            manager: Any = client.km  # nbclient's AsyncKernelManager, typed as its base class
            kernel_pid = manager.provisioner.process.pid
            sample = _proc_status(kernel_pid)
            rss.append(sample[0])
            fds.append(sample[1])
            for index, plan in enumerate(plans):
                if plan.kind == "kill_idle":
                    kills += _kill_cli(marker, kernel_pid)
                    await asyncio.sleep(0.5)  # it died while the notebook was idle, not as the cell began
                if plan.kind == "restart":
                    await manager.restart_kernel(now=False)
                    channels: Any = client.kc  # nbclient's async client, typed as optional
                    await channels.wait_for_ready(timeout=60)
                    kernel_pid = manager.provisioner.process.pid
                    restarts += 1
                fault = None
                if plan.kind in ("interrupt", "interrupt_tool", "interrupt_early", "kill_mid"):
                    fault = asyncio.ensure_future(_fault(plan, model, client, marker, kernel_pid))
                result = await _run_cell(client, nb.cells[index], index, plan, replies)
                if fault is not None:
                    kills += await fault
                _check(plan, result)
                if plan.kind == "write" and not (work / written(plan.number)).exists():
                    result.problems.append(f"{written(plan.number)} was not written")
                if plan.kind == "undo" and (work / written(plan.number - 1)).exists():
                    result.problems.append(f"{written(plan.number - 1)} is still there after the undo")
                if result.status == "ok" and not result.problems and plan.answer:
                    model.confirmed.append(plan.number)
                if plan.kind == "interrupt_tool" and not _gone(_sleeper(plan), marker):
                    result.problems.append("the interrupted command is still running")
                results.append(result)
                most_clis = max(most_clis, len(_clis(marker, kernel_pid)))
                sample = _proc_status(kernel_pid)
                rss.append(sample[0])
                fds.append(sample[1])
                api.requests.clear()  # the bodies are checked as they arrive; keep the runner small
                if progress is not None:
                    progress(result)
    finally:
        if saved_path is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = saved_path
    left = _left_after_shutdown(marker)
    return SoakReport(results, time.monotonic() - started, rss, fds, most_clis, left, model.problems, kills, restarts)


async def _run_cell(
    client: NotebookClient, cell: Any, index: int, plan: Plan, replies: dict[int, dict[str, Any]]
) -> CellResult:
    began = time.monotonic()
    try:
        await client.async_execute_cell(cell, index)
    except CellTimeoutError:
        return CellResult(plan, time.monotonic() - began, hung=True, problems=["no reply within the timeout"])
    reply = replies.get(index, {})
    return CellResult(
        plan,
        time.monotonic() - began,
        status=reply.get("status", ""),
        ename=reply.get("ename", ""),
        output=_output_text(cell),
    )


async def _fault(plan: Plan, model: _Model, client: NotebookClient, marker: str, kernel_pid: int) -> int:
    """Interrupt the kernel or SIGKILL the CLI at the cell's planned moment; how many CLIs were killed."""
    manager: Any = client.km
    if plan.kind == "interrupt_early":
        await asyncio.sleep((plan.number % 10) / 200)  # 0 to 45 ms after the request went out
    elif plan.kind == "interrupt_tool":
        deadline = time.monotonic() + 30
        while not any(_sleeper(plan) in command for _, command in _marked_processes(marker).values()):
            if time.monotonic() > deadline:
                return 0
            await asyncio.sleep(0.05)
    else:
        if not await asyncio.to_thread(model.arrived[plan.number].wait, 30):
            return 0
        await asyncio.sleep(0.3 + (plan.number % 7) / 10)  # a different moment of the stream each time
        if plan.kind == "kill_mid":
            return _kill_cli(marker, kernel_pid)
    await manager.interrupt_kernel()
    return 0


def _kill_cli(marker: str, kernel_pid: int) -> int:
    """SIGKILL the kernel's CLI (only the CLI: its children are left to the kernel); how many died."""
    clis = _clis(marker, kernel_pid)
    for pid in clis:
        os.kill(pid, signal.SIGKILL)
    return len(clis)


def _gone(name: str, marker: str, wait: float = 5.0) -> bool:
    """Whether no process of the run has ``name`` in its command line (given ``wait`` s to go)."""
    deadline = time.monotonic() + wait
    while any(name in command for _, command in _marked_processes(marker).values()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _left_after_shutdown(marker: str, wait: float = 5.0) -> list[str]:
    """Processes of the run still alive after the kernel shut down (given ``wait`` s to go)."""
    deadline = time.monotonic() + wait
    while (left := _marked_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [f"{pid} {command[:120]}" for pid, (_, command) in left.items()]
