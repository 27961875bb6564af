"""Shared fixtures: the fake Messages API, a throwaway HOME, and options that point the real CLI at them."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.session import SessionOptions
from claude_kernel.testing.fake_api import FakeMessagesAPI

FAKE_CLI = str(Path(__file__).with_name("fake_cli.py"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: they are the slowest, and quick failures elsewhere should show first."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as api:
        yield api


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


@pytest.fixture
def cli_env(fake_api: FakeMessagesAPI, tmp_path: Path) -> dict[str, str]:
    """Everything the real CLI needs to run offline against the fake API, with a private HOME."""
    home = tmp_path / "home"
    home.mkdir()
    return {**fake_api.environment(), "HOME": str(home)}


@pytest.fixture
def make_options(cli_env: dict[str, str], workdir: Path) -> Any:
    def make(**overrides: Any) -> SessionOptions:
        env = {**cli_env, **overrides.pop("env", {})}
        return SessionOptions(cwd=str(workdir), env=env, **overrides)

    return make


@pytest.fixture
def fake_cli_options(tmp_path: Path) -> Any:
    """Options for the replay fake CLI (fault injection); it logs its argv to ``argv.log``."""

    def make(**overrides: Any) -> SessionOptions:
        env = {"FAKE_CLI_LOG": str(tmp_path / "argv.log"), **overrides.pop("env", {})}
        return SessionOptions(cli_path=FAKE_CLI, cwd=str(tmp_path), env=env, **overrides)

    return make


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until_dead(pid: int, timeout: float = 5.0) -> bool:
    """Signals are delivered asynchronously: give a killed process a moment to go."""
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture(scope="session")
def kernelspec_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Claude kernelspec installed the way users install it, in a private prefix."""
    from claude_kernel.install import install

    prefix = tmp_path_factory.mktemp("jupyter-prefix")
    install(prefix=str(prefix))
    data = str(prefix / "share" / "jupyter")
    previous = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = data
    yield data
    if previous is None:
        del os.environ["JUPYTER_PATH"]
    else:
        os.environ["JUPYTER_PATH"] = previous


def _running_kernel(name: str, cli_env: dict[str, str], workdir: Path) -> Iterator[Any]:
    from jupyter_client.manager import KernelManager

    from claude_kernel.kernel import _COMMS_WAIT_FOR_THE_CELL

    from .kernel_client import KernelDriver

    # Unix sockets, not TCP: a random TCP port can be taken by another process between the
    # manager choosing it and the kernel binding it ("Address already in use").
    # (An absolute, short path: the kernel runs in another folder, and socket paths are limited.)
    sockets = tempfile.mkdtemp(prefix="ck-")
    manager = KernelManager(kernel_name=name, transport="ipc", ip=os.path.join(sockets, "k"))
    manager.start_kernel(env={**os.environ, **cli_env}, cwd=str(workdir))
    client = manager.blocking_client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    driver = KernelDriver(manager, client)
    if name != "claude" and _COMMS_WAIT_FOR_THE_CELL:
        # The stock kernel before 7.4 (Python 3.10) hands a running cell a click only over a
        # subshell, which is how JupyterLab >= 4.4 sends widget messages by default.
        driver.comms_over_subshell()
    try:
        yield driver
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
        shutil.rmtree(sockets, ignore_errors=True)


@pytest.fixture
def claude_kernel(kernelspec_path: str, cli_env: dict[str, str], workdir: Path) -> Iterator[Any]:
    """A running Claude kernel (through its kernelspec) talking to the real CLI and the fake API."""
    yield from _running_kernel("claude", cli_env, workdir)


@pytest.fixture
def notebook_env(cli_env: dict[str, str], workdir: Path) -> dict[str, str]:
    """What jupyter_server gives a kernel it starts for a notebook: the notebook's path."""
    return {**cli_env, "JPY_SESSION_NAME": str(workdir / "analysis.ipynb")}


@pytest.fixture
def lab_kernel(kernelspec_path: str, notebook_env: dict[str, str], workdir: Path) -> Iterator[Any]:
    """A Claude kernel started for a notebook, as jupyter_server starts it."""
    yield from _running_kernel("claude", notebook_env, workdir)


@pytest.fixture
def python_kernel(cli_env: dict[str, str], workdir: Path) -> Iterator[Any]:
    """A stock IPython kernel with ``%load_ext claude_kernel`` done, on the real CLI and the fake API."""
    for driver in _running_kernel("python3", cli_env, workdir):
        loaded = driver.run("%load_ext claude_kernel")
        assert loaded.reply is not None and loaded.reply["status"] == "ok", loaded.outputs
        yield driver
