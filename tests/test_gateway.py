"""What a gateway needs from the kernel, and the kernel behind a real Enterprise Gateway.

The gateway test runs the recipe of docs/remote.md on loopback: Enterprise Gateway 3.3.0 in its own
virtualenv, its distributed proxy reaching "another host" (127.0.0.2) over ssh (a private sshd),
the wheel installed in a new virtualenv as the kernel host's environment, and a gateway-mode
jupyter_server in front, driven over REST and its websocket as JupyterLab would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from claude_kernel._gateway import default_cwd
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .packaging_env import gateway_launcher, gateway_venv, kernel_venv
from .process_scan import new_tag, tagged, wait_for_none

DOCS = Path(__file__).resolve().parents[1] / "docs" / "remote.md"
SSHD = "/usr/sbin/sshd"
REMOTE_HOST = "127.0.0.2"  # loopback, but not an address the gateway treats as local: it uses ssh
_SLEEPER = 'python3 -c \'import os, time; open("{}.pid", "w").write(str(os.getpid())); time.sleep(60)\''
# A Bash command that runs for a minute and has started a background process of its own: an
# interrupt of the turn ends the command but not what it put in the background, which is still in
# the CLI's process group. (The CLI refuses a bare long `sleep`, hence Python sleepers.)
SLOW_TOOL = f"{_SLEEPER.format('background')} & {_SLEEPER.format('slow')}"


# -- KERNEL_WORKING_DIR ---------------------------------------------------------------------


def test_default_cwd_follows_kernel_working_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KERNEL_WORKING_DIR", raising=False)
    assert default_cwd() == str(tmp_path)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setenv("KERNEL_WORKING_DIR", str(tmp_path / "notebooks"))
    assert default_cwd() == str(tmp_path / "notebooks")
    # The notebook server's folder need not exist on the kernel's host.
    monkeypatch.setenv("KERNEL_WORKING_DIR", str(tmp_path / "on-another-host"))
    assert default_cwd() == str(tmp_path)


@pytest.mark.real_cli
def test_the_cli_runs_in_kernel_working_dir(
    kernelspec_path: str, cli_env: dict[str, str], workdir: Path, fake_api: FakeMessagesAPI
) -> None:
    from .conftest import _running_kernel

    notebooks = workdir / "notebooks"
    notebooks.mkdir()
    for driver in _running_kernel("claude", {**cli_env, "KERNEL_WORKING_DIR": str(notebooks)}, workdir):
        shown = [m["content"]["text"] for m in driver.run("%cwd").outputs if m["msg_type"] == "stream"]
        assert shown == [f"working directory: {notebooks}\n"]
        driver.run("%permissions allow Bash")
        fake_api.enqueue(Reply.tool("Bash", {"command": "touch here.txt", "description": "Create"}), Reply.text("ok"))
        assert driver.run("make a file").reply["status"] == "ok"
    assert (notebooks / "here.txt").exists() and not (workdir / "here.txt").exists()


# -- Enterprise Gateway ---------------------------------------------------------------------


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{process.args!r} did not listen on {host}:{port}:\n{log.read_text()[-3000:]}"
                ) from None
            time.sleep(0.1)


def _start(argv: list[str | Path], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT, env=env)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class _Sshd:
    port: int
    client_home: Path  # a HOME whose ~/.ssh has the key and the host's entry in known_hosts


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[_Sshd]:
    """A private sshd on 127.0.0.2 that lets this user in with a throwaway key."""
    if not os.access(SSHD, os.X_OK):
        pytest.skip(f"no {SSHD}: install Debian's openssh-server (.ci/run does) to run the gateway test")
    if os.geteuid() != 0:
        pytest.skip("the gateway test's private sshd needs root (privilege separation)")
    folder = tmp_path / "sshd"
    home_ssh = tmp_path / "gateway-home" / ".ssh"
    home_ssh.mkdir(parents=True)
    folder.mkdir()
    for key in (folder / "host_key", home_ssh / "id_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (folder / "authorized_keys").write_text((home_ssh / "id_ed25519.pub").read_text())
    port = _free_port(REMOTE_HOST)
    host_key = (folder / "host_key.pub").read_text().split()[:2]
    (home_ssh / "known_hosts").write_text(f"[{REMOTE_HOST}]:{port} {' '.join(host_key)}\n")
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress {REMOTE_HOST}\nHostKey {folder / 'host_key'}\n"
        f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
    log = folder / "sshd.log"
    process = _start([SSHD, "-D", "-e", "-f", config], log, dict(os.environ))
    try:
        _wait_for_port(REMOTE_HOST, port, process, log)
        yield _Sshd(port, home_ssh.parent)
    finally:
        _stop(process)


def _documented_kernelspec() -> dict[str, Any]:
    """The kernel.json of docs/remote.md, the one JSON block there."""
    (block,) = re.findall(r"```json\n(.*?)```", DOCS.read_text(), re.DOTALL)
    spec: dict[str, Any] = json.loads(block)
    return spec


@dataclass
class _Gateway:
    url: str
    token: str
    root: Path  # the Jupyter server's root folder, where notebooks live
    tag: dict[str, str]
    logs: list[Path]
    kernel_logs: Path  # EG_KERNEL_LOG_DIR: the launcher's output, as kernel-<id>.log

    def logs_tail(self) -> str:
        logs = [*self.logs, *sorted(self.kernel_logs.glob("kernel-*.log"))]
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}" for log in logs)


@pytest.fixture
def gateway(
    sshd: _Sshd, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, fake_api: FakeMessagesAPI
) -> Iterator[_Gateway]:
    base = tmp_path_factory.getbasetemp()
    try:
        gateway_python = gateway_venv(base) / "bin/python"
        launcher = gateway_launcher(base)
        kernel_python = kernel_venv(base) / "bin/python"
        subprocess.run([kernel_python, "-m", "pip", "install", "--quiet", "pycryptodomex"], check=True)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"Enterprise Gateway or the kernel's virtualenv could not be installed: {exc}")

    # The gateway host's kernelspec: the documented one, with this machine's paths.
    fake_env = fake_api.environment()
    tag = new_tag()
    kernel_home = tmp_path / "kernel-home"
    kernel_home.mkdir()
    spec = _documented_kernelspec()
    spec["argv"][:2] = [str(kernel_python), str(launcher)]
    spec["env"] = {
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude-config"),
        "HOME": str(kernel_home),
        **{k: v for k, v in fake_env.items() if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")},
        **tag,
    }
    kernels = tmp_path / "gateway-data" / "kernels" / "claude_remote"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps(spec))

    gateway_port, server_port, token = _free_port(), _free_port(), uuid.uuid4().hex
    quiet = {"JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "ANTHROPIC"))}
    gateway_env = {
        **base_env,
        **quiet,
        "HOME": str(sshd.client_home),  # paramiko's key and known_hosts
        "JUPYTER_PATH": str(tmp_path / "gateway-data"),
        "EG_REMOTE_HOSTS": REMOTE_HOST,
        "EG_SSH_PORT": str(sshd.port),
        "EG_RESPONSE_IP": "127.0.0.1",
        "EG_RESPONSE_PORT": str(_free_port()),
        "EG_KERNEL_LOG_DIR": str(tmp_path),
        # The two routes of docs/remote.md for variables that do not belong in the kernelspec:
        "EG_INHERITED_ENVS": "ANTHROPIC_API_KEY",  # the gateway's own value...
        "ANTHROPIC_API_KEY": fake_env["ANTHROPIC_API_KEY"],
        "EG_CLIENT_ENVS": "ANTHROPIC_BASE_URL",  # ...and one the Jupyter server forwards
    }
    server_env = {
        **base_env,
        **quiet,
        "HOME": str(tmp_path / "server-home"),
        "JUPYTER_GATEWAY_ALLOWED_ENVS": "ANTHROPIC_BASE_URL",
        "KERNEL_USERNAME": "notebook-user",  # the gateway refuses to start kernels for "root"
        "ANTHROPIC_BASE_URL": fake_env["ANTHROPIC_BASE_URL"],
    }
    root = tmp_path / "notebooks"
    (root / "project").mkdir(parents=True)
    gateway_log, server_log = tmp_path / "gateway.log", tmp_path / "server.log"
    eg = _start(
        [
            gateway_python,
            "-m",
            "enterprise_gateway",
            "--ip=127.0.0.1",
            f"--port={gateway_port}",
            "--port_retries=0",
        ],
        gateway_log,
        gateway_env,
    )
    server: subprocess.Popen[bytes] | None = None
    try:
        _wait_for_port("127.0.0.1", gateway_port, eg, gateway_log)
        server = _start(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={server_port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.open_browser=False",
                "--ServerApp.allow_root=True",
                f"--ServerApp.root_dir={root}",
                f"--IdentityProvider.token={token}",
                f"--GatewayClient.url=http://127.0.0.1:{gateway_port}",
            ],
            server_log,
            server_env,
        )
        _wait_for_port("127.0.0.1", server_port, server, server_log)
        yield _Gateway(f"127.0.0.1:{server_port}", token, root, tag, [gateway_log, server_log], tmp_path)
    finally:
        if server is not None:
            _stop(server)
        _stop(eg)
        for pid in tagged(tag):
            os.kill(pid, signal.SIGKILL)


class _Notebook:
    """One notebook's kernel through the Jupyter server: REST for the lifecycle, a websocket for messages."""

    def __init__(self, gateway: _Gateway) -> None:
        self.gateway = gateway
        self.session_id = uuid.uuid4().hex
        self.kernel_id = ""
        self.rest_session = ""
        self.ws: Any = None
        #: Every message read since the current cell started.
        self.seen: list[dict[str, Any]] = []

    async def rest(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        from tornado.httpclient import AsyncHTTPClient

        response = await AsyncHTTPClient().fetch(
            f"http://{self.gateway.url}{path}",
            method=method,
            headers={"Authorization": f"token {self.gateway.token}"},
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=120,
        )
        return json.loads(response.body) if response.body else None

    async def open(self, path: str) -> None:
        model = await self.rest(
            "POST", "/api/sessions", {"path": path, "type": "notebook", "kernel": {"name": "claude_remote"}}
        )
        self.rest_session, self.kernel_id = model["id"], model["kernel"]["id"]
        await self.connect()

    async def connect(self) -> None:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        # One live connection per client: a second one under the same session id makes the server
        # and the gateway replace each other's "stale" connection over and over.
        if self.ws is not None:
            self.ws.close()
        url = f"ws://{self.gateway.url}/api/kernels/{self.kernel_id}/channels?session_id={self.session_id}"
        self.ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {self.gateway.token}"}))
        # Ready when it answers kernel_info (the first requests can be lost while channels connect).
        for _ in range(60):
            asked: str = await self.send("kernel_info_request", {})

            def answers(message: dict[str, Any], asked: str = asked) -> bool:
                return bool(message["parent_header"].get("msg_id") == asked)

            if await self.receive(answers, timeout=2, missing_ok=True):
                return
        raise AssertionError("the kernel never answered kernel_info")

    async def send(self, msg_type: str, content: dict[str, Any]) -> str:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": msg_type, "session": self.session_id, "username": "test"}
        header |= {"date": "", "version": "5.3"}
        message = {"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell"}
        await self.ws.write_message(json.dumps(message | {"buffers": []}))
        return msg_id

    async def receive(
        self, until: Callable[[dict[str, Any]], bool], *, timeout: float = 60, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        import anyio

        with anyio.move_on_after(timeout):
            while True:
                raw = await self.ws.read_message()
                assert raw is not None, "the websocket closed"
                message: dict[str, Any] = json.loads(raw)
                self.seen.append(message)
                if until(message):
                    return message
        assert missing_ok, f"timed out; the last messages: {[m.get('msg_type') for m in self.seen[-10:]]}"
        return None

    async def start_cell(self, code: str) -> str:
        self.seen = []
        return await self.send(
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": True},
        )

    async def finish_cell(self, msg_id: str, timeout: float = 90) -> dict[str, Any]:
        """Read until the cell is done; its execute_reply's content.

        Done means the reply and the kernel's idle status: they travel on different channels, so the
        last display updates can come after the reply.
        """

        def done(message: dict[str, Any]) -> bool:
            ours = [m for m in self.seen if m["parent_header"].get("msg_id") == msg_id]
            idle = any(m.get("msg_type") == "status" and m["content"]["execution_state"] == "idle" for m in ours)
            return idle and any(m.get("msg_type") == "execute_reply" for m in ours)

        await self.receive(done, timeout=timeout)
        (reply,) = [
            m for m in self.seen if m.get("msg_type") == "execute_reply" and m["parent_header"].get("msg_id") == msg_id
        ]
        content: dict[str, Any] = reply["content"]
        return content

    def text(self) -> str:
        """The plain text of every display, at its latest update."""
        latest: dict[str, str] = {}
        for m in self.seen:
            if m.get("msg_type") in ("display_data", "update_display_data"):
                display_id = m["content"].get("transient", {}).get("display_id")
                if display_id:
                    latest[display_id] = m["content"]["data"].get("text/plain", "")
        return "\n".join(latest.values())

    async def click(self, description: str) -> None:
        """Wait for a button labelled ``description`` in the running cell, and click it."""
        opened = await self.receive(
            lambda m: (
                m.get("msg_type") == "comm_open"
                and m["content"]["data"].get("state", {}).get("description") == description
                and m["content"]["data"]["state"].get("_model_name") == "ButtonModel"
            )
        )
        assert opened is not None
        data = {"method": "custom", "content": {"event": "click"}}
        await self.send("comm_msg", {"comm_id": opened["content"]["comm_id"], "data": data})


def _wait_for_file(path: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return path.read_text()


@pytest.mark.packaging
@pytest.mark.real_cli
@pytest.mark.anyio
@pytest.mark.timeout(1200)
async def test_enterprise_gateway_end_to_end(gateway: _Gateway, fake_api: FakeMessagesAPI) -> None:
    import anyio

    notebook = _Notebook(gateway)
    folder = gateway.root / "project"
    try:
        await notebook.open("project/analysis.ipynb")
        # The kernel runs under the gateway's launcher, started over ssh on the "remote" host.
        assert any("launch_ipykernel.py" in cmd for cmd in tagged(gateway.tag).values())
        assert f"Kernel launched on '{REMOTE_HOST}'" in gateway.logs[0].read_text()

        # Streaming: several display updates arrive before the reply.
        answer = "Streaming through the gateway, piece by piece. " * 6
        fake_api.enqueue(Reply.text(answer, delay=0.03, chunk=8))
        reply = await notebook.finish_cell(await notebook.start_cell("hello"))
        assert reply["status"] == "ok", notebook.seen[-5:]
        assert answer.strip() in notebook.text()
        assert sum(m.get("msg_type") == "update_display_data" for m in notebook.seen) >= 2

        # An Allow click; the command runs in the notebook's folder (KERNEL_WORKING_DIR).
        fake_api.enqueue(
            Reply.tool("Bash", {"command": "touch via-gateway.txt", "description": "Create"}), Reply.text("Made it.")
        )
        cell = await notebook.start_cell("make a file")
        await notebook.click("Allow")
        assert (await notebook.finish_cell(cell))["status"] == "ok"
        assert (folder / "via-gateway.txt").exists() and "Made it." in notebook.text()

        # An interrupt (through the gateway's signal listener) ends the turn, keeps the kernel.
        fake_api.enqueue(Reply.text("word " * 400, delay=0.05, chunk=4))
        cell = await notebook.start_cell("talk slowly")
        await notebook.receive(lambda m: m.get("msg_type") == "update_display_data")
        await notebook.rest("POST", f"/api/kernels/{notebook.kernel_id}/interrupt")
        reply = await notebook.finish_cell(cell, timeout=30)
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"

        # A restart: a new kernel (and CLI) that answers; the old ones are gone.
        before = set(tagged(gateway.tag))
        await notebook.rest("POST", f"/api/kernels/{notebook.kernel_id}/restart")
        await notebook.connect()
        fake_api.enqueue(Reply.text("Fresh after the restart."))
        assert (await notebook.finish_cell(await notebook.start_cell("again")))["status"] == "ok"
        assert "Fresh after the restart." in notebook.text()
        with anyio.fail_after(15):
            while before & set(tagged(gateway.tag)):
                await anyio.sleep(0.1)

        # A shutdown while a Bash tool runs: nothing the kernel started is left.
        assert (await notebook.finish_cell(await notebook.start_cell("%permissions allow Bash")))["status"] == "ok"
        fake_api.enqueue(Reply.tool("Bash", {"command": SLOW_TOOL, "description": "wait"}))
        await notebook.start_cell("wait a minute")
        tools = [
            int(await anyio.to_thread.run_sync(_wait_for_file, folder / f"{n}.pid")) for n in ("slow", "background")
        ]
        assert set(tools) <= set(tagged(gateway.tag))
        await notebook.rest("DELETE", f"/api/sessions/{notebook.rest_session}")
        left = await anyio.to_thread.run_sync(wait_for_none, gateway.tag, 20.0)
        assert left == {}, f"left running: {left}\n{gateway.logs_tail()}"
    except BaseException:
        print(gateway.logs_tail())
        raise
