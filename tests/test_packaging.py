"""The CLI pin and its lookup order; the wheel installs into a new virtualenv and answers a cell."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from claude_kernel.session import CLINotFoundError, find_cli
from claude_kernel.session import _options as options_module
from claude_kernel.session._options import bundled_cli
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .cli_pin import pinned_cli_version, pinned_sdk_version
from .kernel_client import KernelDriver
from .packaging_env import built_wheel, kernel_venv, nodeless_path, oldest_kernel_venv, oldest_python
from .process_scan import new_tag, tagged, wait_for_none


def test_the_installed_cli_is_the_pinned_one() -> None:
    """A stale .venv (pin changed, not reinstalled) fails here rather than in a confusing place."""
    assert importlib.metadata.version("claude-agent-sdk") == pinned_sdk_version()
    cli = bundled_cli()
    assert cli is not None
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, check=True, timeout=60).stdout
    assert version.split()[0] == pinned_cli_version()


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = tmp_path / "bin" / "claude"
    on_path.parent.mkdir()
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    explicit = tmp_path / "my-claude"
    explicit.write_text("#!/bin/sh\n")
    explicit.chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.delenv("CLAUDE_KERNEL_CLI", raising=False)
    # 1. the argument, then $CLAUDE_KERNEL_CLI; 2. the bundled CLI, before 3. PATH.
    assert find_cli(str(explicit)) == str(explicit)
    monkeypatch.setenv("CLAUDE_KERNEL_CLI", str(explicit))
    assert find_cli() == str(explicit)
    monkeypatch.delenv("CLAUDE_KERNEL_CLI")
    assert find_cli() == bundled_cli() != str(on_path)
    monkeypatch.setattr(options_module, "bundled_cli", lambda: None)
    assert find_cli() == str(on_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(CLINotFoundError, match=r"pip install 'claude-kernel\[cli\]'"):
        find_cli()


def test_wheel_carries_the_kernelspec(tmp_path_factory: pytest.TempPathFactory) -> None:
    names = set(zipfile.ZipFile(built_wheel(tmp_path_factory.getbasetemp())).namelist())
    assert {
        "claude_kernel/kernelspec/kernel.json",
        "claude_kernel/kernelspec/logo-32x32.png",
        "claude_kernel/kernelspec/logo-64x64.png",
        "claude_kernel/install.py",
        "claude_kernel/testing/fake_api.py",
    } <= names
    assert not any(name.startswith(("tests/", "kernelspec/", "node_modules/")) for name in names)


@pytest.mark.packaging
@pytest.mark.real_cli
@pytest.mark.timeout(900)
def test_wheel_in_a_new_venv_without_node_answers_a_cell(
    tmp_path_factory: pytest.TempPathFactory, fake_api: FakeMessagesAPI, cli_env: dict[str, str], workdir: Path
) -> None:
    base = tmp_path_factory.getbasetemp()
    venv = kernel_venv(base)
    path = f"{venv / 'bin'}{os.pathsep}{nodeless_path(base)}"
    assert shutil.which("node", path=path) is None and shutil.which("npm", path=path) is None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "JUPYTER"))},
        "PATH": path,
    }
    tag = new_tag()
    with _kernel_in(venv, env, {**cli_env, **tag}, workdir, tmp_path_factory) as driver:
        fake_api.enqueue(Reply.text("Answered from a wheel."))
        run = driver.run("hello from a fresh venv", timeout=120)
        assert run.reply is not None and run.reply["status"] == "ok", run.outputs
        assert "Answered from a wheel." in run.text()
        # The CLI that answered is the one the cli extra put into the new venv.
        running = [cmd for cmd in tagged(tag).values() if "_bundled/claude" in cmd]
        assert running and all(cmd.startswith(str(venv)) for cmd in running), running
    assert wait_for_none(tag) == {}


@pytest.mark.packaging
@pytest.mark.real_cli
@pytest.mark.timeout(900)
def test_wheel_on_python_3_10_hears_a_click_while_the_cell_runs(
    tmp_path_factory: pytest.TempPathFactory, fake_api: FakeMessagesAPI, cli_env: dict[str, str], workdir: Path
) -> None:
    """ipykernel stops at 7.3 on Python 3.10: the kernel itself hands the running cell its click."""
    python = oldest_python()
    if python is None:
        pytest.skip("no Python 3.10 on this machine (python3.10 on PATH, or pyenv's)")
    venv = oldest_kernel_venv(tmp_path_factory.getbasetemp(), python)
    installed = subprocess.run(
        [venv / "bin/python", "-c", "import ipykernel, sys; print(sys.version_info[:2], ipykernel.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert installed.startswith("(3, 10) 7.3"), installed
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "JUPYTER"))}
    with _kernel_in(venv, env, cli_env, workdir, tmp_path_factory) as driver:
        bash = Reply.tool("Bash", {"command": "touch clicked.txt", "description": "Create"})
        fake_api.enqueue(bash, Reply.text("Done."))
        run = driver.start("make a file")
        driver.click(driver.wait_for_button(run, "Allow"))
        driver.pump(run, timeout=120)
        assert run.reply is not None and run.reply["status"] == "ok", run.outputs
        assert (workdir / "clicked.txt").exists() and "Done." in run.text()


@contextmanager
def _kernel_in(
    venv: Path, env: dict[str, str], cli_env: dict[str, str], workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KernelDriver]:
    """The Claude kernel as ``venv``'s own `python -m claude_kernel install` sets it up, running."""
    prefix = tmp_path_factory.mktemp("prefix")
    subprocess.run(
        [venv / "bin/python", "-m", "claude_kernel", "install", "--prefix", prefix, "--env", "CLAUDE_KERNEL_PROBE=1"],
        env=env,
        check=True,
        capture_output=True,
    )
    specs = KernelSpecManager(kernel_dirs=[str(prefix / "share/jupyter/kernels")])
    spec = specs.get_kernel_spec("claude")
    assert spec.argv[0] == str(venv / "bin/python") and spec.env == {"CLAUDE_KERNEL_PROBE": "1"}
    manager = KernelManager(kernel_name="claude", kernel_spec_manager=specs)
    manager.start_kernel(env={**env, **cli_env}, cwd=str(workdir))
    client = manager.blocking_client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield KernelDriver(manager, client)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
