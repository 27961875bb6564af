"""A user who keeps pressing stop: twenty interrupted cells in a row, then a cell hammered with interrupts."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, user_text

from .test_kernel import _cli_pid

pytestmark = pytest.mark.real_cli

SLOW = Reply.text("word " * 400, delay=0.02, chunk=5)  # about 8 s if nobody stops it


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_twenty_interrupted_cells_in_a_row(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    kernel_pid = claude_kernel.manager.provisioner.process.pid
    fake_api.enqueue(Reply.text("Noted: IBIS."))
    assert claude_kernel.run("Remember IBIS").reply["status"] == "ok"
    cli, fds = _cli_pid(kernel_pid), _fds(kernel_pid)
    for number in range(20):
        fake_api.enqueue(SLOW)
        run = claude_kernel.start(f"talk {number}")
        claude_kernel.pump(run, until=lambda e: "word" in e.plain())
        claude_kernel.manager.interrupt_kernel()
        claude_kernel.pump(run, timeout=15)
        assert run.reply["ename"] == "KeyboardInterrupt", run.outputs
    fake_api.enqueue(Reply.text("IBIS."))
    after = claude_kernel.run("Which bird?")
    assert after.reply["status"] == "ok" and "IBIS." in after.plain()
    assert "Remember IBIS" in str(fake_api.requests[-1]["messages"])
    # The same CLI all along (a control-protocol interrupt keeps it), and no fd left behind.
    assert _cli_pid(kernel_pid) == cli
    assert _fds(kernel_pid) <= fds + 2


def test_one_cell_hammered_with_interrupts(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(SLOW)
    run = claude_kernel.start("talk")
    claude_kernel.pump(run, until=lambda e: "word" in e.plain())
    for _ in range(20):
        claude_kernel.manager.interrupt_kernel()
        time.sleep(0.02)
    claude_kernel.pump(run, timeout=15)
    assert run.reply["ename"] == "KeyboardInterrupt"
    assert claude_kernel.manager.is_alive()
    # Interrupts that arrive after the cell ended are harmless too.
    for _ in range(5):
        claude_kernel.manager.interrupt_kernel()
    time.sleep(0.3)
    fake_api.enqueue(Reply.text("Still here."))
    after = claude_kernel.run("next")
    assert after.reply["status"] == "ok" and "Still here." in after.plain()
    assert user_text(fake_api.requests[-1]).endswith("next")  # after the CLI's own "[Request interrupted by user]"
