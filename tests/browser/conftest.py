"""Real JupyterLab and Notebook 7 in headless Chromium, with the Claude kernel on the real CLI.

One Jupyter server per app and one browser per test session; each test opens a fresh notebook in a
fresh page. The model is the fake Messages API (one per session: the server's environment points
the kernels at it), and each test scripts its replies. Screenshots go to
``test-artifacts/screenshots`` on every run; when a test fails its last page is saved there too.
Skipped when Chromium or Playwright is missing (``.ci/run`` installs Chromium).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.demo import scripted_model
from claude_kernel.install import install
from claude_kernel.testing.fake_api import FakeMessagesAPI

CHROMIUM = os.environ.get("CLAUDE_KERNEL_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TOKEN = "browser-test-token"
DONE = re.compile(r"^\[\d+\]:$")

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api")
#: How long a kernel may take to start or become idle: a loaded 2-core machine (a second suite beside
#: this one) needs seconds, and Playwright's assertions give up after 5 s unless told otherwise.
KERNEL_WAIT_MS = 60_000
# Every assertion waits at least 30 s: none of them is a timing check.
playwright.expect.set_options(timeout=30_000)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class JupyterServer:
    """``jupyter lab`` or ``jupyter notebook`` with private config, data, settings and root folders."""

    def __init__(self, app: str, env: dict[str, str]) -> None:
        self.app = app
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"claude-browser-{app}-"))
        self.root = self.tmp / "root"
        self.root.mkdir()
        install(prefix=str(self.tmp / "prefix"))
        settings = self.tmp / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        # The news toast can cover the widgets under test.
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        app_class = "LabApp" if app == "lab" else "JupyterNotebookApp"
        command = [
            sys.executable,
            "-m",
            "jupyterlab" if app == "lab" else "notebook",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={self.root}",
            f"--{app_class}.user_settings_dir={self.tmp / 'settings'}",
            f"--{app_class}.workspaces_dir={self.tmp / 'workspaces'}",
        ]
        if app == "lab":
            command += [
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly",
            ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        server_env = {
            **os.environ,
            **env,
            "JUPYTER_PATH": str(self.tmp / "prefix" / "share" / "jupyter"),
            "JUPYTER_CONFIG_DIR": str(self.tmp / "config"),
            "JUPYTER_RUNTIME_DIR": str(self.tmp / "runtime"),
            "IPYTHONDIR": str(self.tmp / "ipython"),
        }
        self.log_path = self.tmp / "server.log"
        log = self.log_path.open("w")
        # Own session: a last-resort killpg takes the kernels too. SIGTERM (not SIGINT) stops it.
        self.process = subprocess.Popen(
            command, env=server_env, cwd=self.root, stdout=log, stderr=log, start_new_session=True
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the Jupyter server did not start; log:\n{self.log_path.read_text()[-3000:]}")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            data = response.read()
        return json.loads(data) if data else None

    def create_notebook(self, name: str, kernel: str, cells: list[str] = ()) -> str:  # type: ignore[assignment]
        display = {"claude": "Claude", "python3": "Python 3 (ipykernel)"}[kernel]
        language = "markdown" if kernel == "claude" else "python"
        content = {
            "cells": [
                {"cell_type": "code", "source": c, "metadata": {}, "outputs": [], "execution_count": None}
                for c in cells
            ]
            or [{"cell_type": "code", "source": "", "metadata": {}, "outputs": [], "execution_count": None}],
            "metadata": {"kernelspec": {"name": kernel, "display_name": display, "language": language}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        self.api("PUT", f"/api/contents/{name}", {"type": "notebook", "content": content})
        return name

    def shutdown_kernels(self) -> None:
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def browser_api() -> Iterator[FakeMessagesAPI]:
    """The offline demo's scripted model answers whatever a test did not script itself."""
    with FakeMessagesAPI(fallback=scripted_model) as api:
        yield api


@pytest.fixture(scope="session")
def browser_env(browser_api: FakeMessagesAPI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("browser-home")
    return {**browser_api.environment(), "HOME": str(home)}


@pytest.fixture
def model(browser_api: FakeMessagesAPI) -> FakeMessagesAPI:
    """The session's fake API, emptied of any reply an earlier test left queued."""
    browser_api._queue.clear()
    return browser_api


@pytest.fixture(scope="session")
def lab(browser_env: dict[str, str]) -> Iterator[JupyterServer]:
    server = JupyterServer("lab", browser_env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def notebook7(browser_env: dict[str, str]) -> Iterator[JupyterServer]:
    server = JupyterServer("notebook", browser_env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped: Playwright's sync API keeps an event loop running while it is open, which
    would stop every later anyio test from starting its own."""
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        page.screenshot(path=str(SHOTS / f"FAILED-{_safe(request.node.name)}.png"), full_page=True)
    context.close()
    for server_fixture in ("lab", "notebook7"):
        if server_fixture in request.fixturenames:
            request.getfixturevalue(server_fixture).shutdown_kernels()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{_safe(name)}.png"))
