"""A restart or shutdown ends the CLI on end of input, and the kernel exits on its own."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psutil
from jupyter_client.manager import KernelManager

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .conftest import wait_until_dead
from .kernel_client import KernelDriver


def test_a_restart_leaves_no_cli_and_sends_no_signal(
    kernelspec_path: str, cli_env: dict[str, str], workdir: Path, tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    sockets = tempfile.mkdtemp(prefix="ck-")
    manager = KernelManager(kernel_name="claude", transport="ipc", ip=os.path.join(sockets, "k"))
    log = tmp_path / "kernel.log"
    with log.open("w") as stderr:
        manager.start_kernel(env={**os.environ, **cli_env}, cwd=str(workdir), stderr=stderr)
    client = manager.blocking_client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        driver = KernelDriver(manager, client)
        fake_api.enqueue(Reply.text("Noted."))
        reply = driver.run("Remember OTTER").reply
        assert reply is not None and reply["status"] == "ok"
        kernel = manager.provisioner.process  # type: ignore[union-attr]
        clis = psutil.Process(kernel.pid).children(recursive=True)
        assert clis
        # What JupyterLab's Restart Kernel does: a shutdown request with restart=True, then a start.
        manager.shutdown_kernel(now=False, restart=True)
        # The kernel exited by itself (0), not by the manager's SIGTERM or SIGKILL after its wait.
        assert kernel.returncode == 0
        assert all(wait_until_dead(cli.pid) for cli in clis)
        text = log.read_text()
        # The CLI exited on end of input: a signal or a failure would be logged with its exit code.
        assert "exited with code" not in text and "did not close the claude CLI" not in text, text
    finally:
        client.stop_channels()
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
        shutil.rmtree(sockets, ignore_errors=True)
