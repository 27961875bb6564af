"""SIGTERM and SIGHUP end the kernel's CLI and the tools it runs, in any order, at any moment.

Enterprise Gateway's remote proxies stop a kernel with SIGINT, then SIGTERM about 1 ms later; ssh
hang-ups send SIGHUP. The CLI lives in its own process group, so only the kernel can end it.
Every process the kernel starts inherits a tag variable, so leftovers are found even after they
were reparented.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .kernel_client import KernelDriver
from .process_scan import new_tag, tagged, wait_for_none

pytestmark = pytest.mark.real_cli

# The CLI refuses a bare long `sleep`, so the slow tool is a Python one that leaves its pid.
SLOW_TOOL = 'python3 -c \'import os, time; open("slow.pid", "w").write(str(os.getpid())); time.sleep(60)\''


class _Kernel:
    def __init__(self, driver: KernelDriver, tag: dict[str, str]) -> None:
        self.driver = driver
        self.tag = tag

    @property
    def pid(self) -> int:
        pid: int = self.driver.manager.provisioner.process.pid  # type: ignore[union-attr]
        return pid

    def signal(self, *signums: int, gap: float = 0.001) -> None:
        """Signal the kernel's own pid, as a gateway does (not jupyter_client's process group)."""
        for index, signum in enumerate(signums):
            if index:
                time.sleep(gap)
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                return  # the first signal already ended it

    def exit_code(self, timeout: float = 15) -> int:
        code: int = self.driver.manager.provisioner.process.wait(timeout)  # type: ignore[union-attr]
        return code

    def children(self) -> dict[int, str]:
        return {pid: cmd for pid, cmd in tagged(self.tag).items() if pid != self.pid}


@pytest.fixture
def kernel(kernelspec_path: str, cli_env: dict[str, str], workdir: Path) -> Iterator[_Kernel]:
    tag = new_tag()
    manager = KernelManager(kernel_name="claude")
    manager.start_kernel(env={**os.environ, **cli_env, **tag}, cwd=str(workdir))
    client = manager.blocking_client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield _Kernel(KernelDriver(manager, client), tag)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        # Whatever the test saw, leave nothing running for the next one.
        for pid in tagged(tag):
            os.kill(pid, signal.SIGKILL)


def _run_slow_tool(kernel: _Kernel, fake_api: FakeMessagesAPI, workdir: Path) -> int:
    """Start a cell whose pre-allowed Bash tool runs for a minute; the tool's pid once it runs."""
    setup = kernel.driver.run("%permissions allow Bash")
    assert setup.reply is not None and setup.reply["status"] == "ok", setup.outputs
    fake_api.enqueue(Reply.tool("Bash", {"command": SLOW_TOOL, "description": "wait"}))
    kernel.driver.start("wait a minute")
    pid_file = workdir / "slow.pid"
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline, "the Bash tool never started"
        time.sleep(0.05)
    return int(pid_file.read_text())


@pytest.mark.parametrize(
    "signums",
    [
        pytest.param((signal.SIGINT, signal.SIGTERM), id="gateway-SIGINT-then-SIGTERM"),
        pytest.param((signal.SIGTERM, signal.SIGINT), id="SIGTERM-then-SIGINT"),
        pytest.param((signal.SIGHUP,), id="SIGHUP"),
    ],
)
def test_signals_end_the_cli_and_a_running_tool(
    signums: tuple[int, ...], kernel: _Kernel, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    tool = _run_slow_tool(kernel, fake_api, workdir)
    running = kernel.children()
    assert tool in running and any("claude" in cmd for cmd in running.values()), running
    kernel.signal(*signums)
    ending = next(s for s in signums if s != signal.SIGINT)
    assert kernel.exit_code() == -ending  # the signal still ends the kernel, as before
    assert wait_for_none(kernel.tag, timeout=5) == {}


def test_sigterm_while_the_cli_starts(kernel: _Kernel) -> None:
    """The CLI is spawned when the kernel starts; SIGTERM lands during its start-up and first cell."""
    deadline = time.monotonic() + 10
    while not kernel.children():
        assert time.monotonic() < deadline, "the kernel never started the CLI"
        time.sleep(0.005)
    kernel.driver.start("hello")
    kernel.signal(signal.SIGTERM)
    assert kernel.exit_code() == -signal.SIGTERM
    assert wait_for_none(kernel.tag, timeout=5) == {}


def test_an_ignored_sighup_stays_ignored() -> None:
    """Under nohup the host wants to outlive a hang-up, so the handler leaves SIGHUP alone."""
    code = (
        "import signal\n"
        "from claude_kernel.session._signals import end_groups_on_signals\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "end_groups_on_signals()\n"
        "print(signal.getsignal(signal.SIGHUP) == signal.SIG_IGN,\n"
        "      signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]


def test_a_previous_handler_still_runs() -> None:
    code = (
        "import os, signal, sys\n"
        "from claude_kernel.session._signals import end_groups_on_signals\n"
        "signal.signal(signal.SIGTERM, lambda s, f: (print('previous ran'), sys.exit(3)))\n"
        "end_groups_on_signals()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 3 and "previous ran" in done.stdout
