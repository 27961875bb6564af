"""An idle kernel ends its CLI; the next cell resumes the conversation with nothing lost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from claude_kernel.idle_stop import DEFAULT_IDLE_STOP_S, idle_stop_seconds
from claude_kernel.testing.agents import DelegatingModel
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .conftest import _running_kernel
from .test_notebook_conversation import remembered


def _clis(kernel: Any) -> list[psutil.Process]:
    children: list[psutil.Process] = psutil.Process(kernel.manager.provisioner.process.pid).children(recursive=True)
    return children


def _wait_for_no_cli(kernel: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _clis(kernel):
        assert time.monotonic() < deadline, "the idle kernel kept its CLI"
        time.sleep(0.1)


@pytest.fixture
def idle_kernel(kernelspec_path: str, cli_env: dict[str, str], workdir: Path) -> Iterator[Any]:
    env = {**cli_env, "JPY_SESSION_NAME": str(workdir / "idle.ipynb"), "CLAUDE_KERNEL_IDLE_STOP_S": "1"}
    yield from _running_kernel("claude", env, workdir)


@pytest.mark.real_cli
def test_an_idle_stop_then_a_cell_continues_the_conversation(idle_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.text("Noted: OTTER."), Reply.text("Noted: BADGER."))
    assert idle_kernel.run("%budget 5").reply["status"] == "ok"
    assert idle_kernel.run("Remember OTTER", cell_id="c1").reply["status"] == "ok"
    assert idle_kernel.run("Remember BADGER", cell_id="c2").reply["status"] == "ok"
    before = idle_kernel.run("%session").streamed()
    _wait_for_no_cli(idle_kernel)
    session = idle_kernel.run("%session").streamed()
    assert "the CLI is not running, the next cell resumes it" in session
    assert before.split("session id: ")[1].split()[0] == session.split("session id: ")[1].split()[0]
    assert "2 turns in the conversation" in session and "budget" in session

    fake_api.enqueue(Reply.text("It was OTTER and BADGER."))
    run = idle_kernel.run("Which animals?", cell_id="c3")
    assert run.reply["status"] == "ok" and "OTTER and BADGER" in run.plain()
    assert remembered(fake_api.requests[-1]) == ["Remember OTTER", "Remember BADGER", "Which animals?"]

    # Stopped again; re-running an earlier cell still rewinds (in place) on the resumed CLI.
    _wait_for_no_cli(idle_kernel)
    fake_api.enqueue(Reply.text("Noted: STOAT."))
    rerun = idle_kernel.run("Remember STOAT", cell_id="c2")
    assert rerun.reply["status"] == "ok" and "could not rewind in place" not in rerun.plain()
    assert remembered(fake_api.requests[-1]) == ["Remember OTTER", "Remember STOAT"]
    history = idle_kernel.run("%history").streamed()
    assert "Remember OTTER" in history and "Remember STOAT" in history


@pytest.mark.real_cli
def test_no_idle_stop_during_a_turn(idle_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.text("slow " * 60, delay=0.05, chunk=5))  # streams for about 3 s
    run = idle_kernel.run("take your time", cell_id="c1")
    assert run.reply["status"] == "ok" and "slow slow" in run.plain()
    assert "You said" not in run.plain()


def test_the_idle_time_comes_from_the_environment() -> None:
    assert idle_stop_seconds({}) == DEFAULT_IDLE_STOP_S
    assert idle_stop_seconds({"CLAUDE_KERNEL_IDLE_STOP_S": "0"}) == 0
    assert idle_stop_seconds({"CLAUDE_KERNEL_IDLE_STOP_S": "2.5"}) == 2.5
    for bad in ("soon", "-1", "inf"):
        assert idle_stop_seconds({"CLAUDE_KERNEL_IDLE_STOP_S": bad}) == DEFAULT_IDLE_STOP_S


@pytest.mark.real_cli
def test_no_idle_stop_while_an_agent_works_in_the_background(idle_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    model = DelegatingModel(hold=True)
    fake_api.fallback = model
    first = idle_kernel.run("delegate", cell_id="c1")
    assert first.reply["status"] == "ok" and "Left running by this cell" in first.text()
    cli = _clis(idle_kernel)
    time.sleep(4)  # four idle stops' worth: the CLI carries the agent, so it stays
    assert _clis(idle_kernel) == cli
    model.release.set()
    idle_kernel.pump(first, until=lambda e: "The agent reported" in e.text())
    _wait_for_no_cli(idle_kernel)  # once the agent reported, the notebook is idle
