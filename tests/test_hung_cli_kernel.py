"""A CLI that stops writing (SIGSTOP) under the kernel: an interrupt recovers the cell, shutdown ends it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any, cast

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .conftest import _running_kernel, wait_until_dead
from .test_kernel import _cli_pid

pytestmark = pytest.mark.real_cli

SLOW = Reply.text("word " * 400, delay=0.02, chunk=5)


def _kernel_cli(kernel: Any) -> int:
    return _cli_pid(kernel.manager.provisioner.process.pid)


@pytest.mark.parametrize("moment", ["mid-answer", "before the message"])
def test_a_stopped_cli_is_recovered_by_an_interrupt(claude_kernel: Any, fake_api: FakeMessagesAPI, moment: str) -> None:
    fake_api.enqueue(Reply.text("Noted: STOAT."))
    assert claude_kernel.run("Remember STOAT").reply["status"] == "ok"
    cli = _kernel_cli(claude_kernel)
    if moment == "mid-answer":
        fake_api.enqueue(SLOW)
        run = claude_kernel.start("talk a lot")
        claude_kernel.pump(run, until=lambda e: "word" in e.plain())
        os.kill(cli, signal.SIGSTOP)
    else:
        os.kill(cli, signal.SIGSTOP)  # stopped between cells: the next cell waits on it
        run = claude_kernel.start("hello")
        time.sleep(1)
    started = time.monotonic()
    claude_kernel.manager.interrupt_kernel()
    claude_kernel.pump(run, timeout=20)
    assert run.reply["ename"] == "KeyboardInterrupt", run.outputs
    assert time.monotonic() - started < 12  # the grace for the interrupt, then SIGINT (with SIGCONT)
    assert wait_until_dead(cli)
    fake_api.enqueue(Reply.text("STOAT."))
    after = claude_kernel.run("Which animal?", timeout=60)
    assert after.reply["status"] == "ok" and "STOAT." in after.plain()
    assert "Remember STOAT" in str(fake_api.requests[-1]["messages"])


def test_a_stopped_cli_does_not_outlive_a_kernel_restart(claude_kernel: Any) -> None:
    assert claude_kernel.run("hello").reply["status"] == "ok"
    cli = _kernel_cli(claude_kernel)
    os.kill(cli, signal.SIGSTOP)
    claude_kernel.manager.restart_kernel(now=False)
    assert wait_until_dead(cli)


def test_a_stopped_cli_does_not_outlive_a_kernel_shutdown(
    kernelspec_path: str, cli_env: dict[str, str], workdir: Path
) -> None:
    kernels = cast(Generator[Any, None, None], _running_kernel("claude", cli_env, workdir))
    kernel = next(kernels)
    assert kernel.run("hello").reply["status"] == "ok"
    cli = _kernel_cli(kernel)
    os.kill(cli, signal.SIGSTOP)
    kernels.close()  # a shutdown_request, as JupyterLab sends it, within the manager's wait
    assert wait_until_dead(cli)
