"""Drive the installed Claude kernel with jupyter_client, the way a frontend does."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from queue import Empty
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(html: str) -> str:
    """The text a browser shows for ``html`` (tags dropped, entities decoded; whitespace as is)."""
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


@dataclass
class Execution:
    msg_id: str
    reply: dict[str, Any] | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)  # iopub messages for this cell
    widgets: dict[str, dict[str, Any]] = field(default_factory=dict)  # model_id -> state
    idle: bool = False

    @property
    def done(self) -> bool:
        """The reply came and the kernel went idle (the two arrive on different channels, in any order)."""
        return self.reply is not None and self.idle

    def displays(self) -> dict[str, dict[str, Any]]:
        """The latest bundle of every display id (updates applied, as a frontend would)."""
        latest: dict[str, dict[str, Any]] = {}
        for msg in self.outputs:
            if msg["msg_type"] in ("display_data", "update_display_data"):
                display_id = msg["content"].get("transient", {}).get("display_id")
                if display_id:
                    latest[display_id] = msg["content"]["data"]
        return latest

    def html(self) -> str:
        """The ``text/html`` of every display, in order."""
        return "\n".join(d.get("text/html", "") for d in self.displays().values())

    def text(self) -> str:
        """What the displays show as text (the HTML's text, entities decoded), in order."""
        return visible_text(self.html())

    def plain(self) -> str:
        """Every display's ``text/plain`` (updates applied): what a saved notebook's text shows."""
        return "\n".join(bundle.get("text/plain", "") for bundle in self.displays().values())

    def streamed(self) -> str:
        """What the cell printed on its streams (the line magics' answers)."""
        return "".join(m["content"]["text"] for m in self.outputs if m["msg_type"] == "stream")

    def count(self, msg_type: str) -> int:
        return sum(1 for m in self.outputs if m["msg_type"] == msg_type)

    def button(self, description: str) -> str:
        ids = [
            mid
            for mid, s in self.widgets.items()
            if s.get("_model_name") == "ButtonModel" and s.get("description") == description
        ]
        assert ids, f"no {description!r} button among {len(self.widgets)} widgets"
        return ids[-1]

    def model(self, model_name: str) -> str:
        ids = [mid for mid, s in self.widgets.items() if s.get("_model_name") == model_name]
        assert ids, f"no {model_name}"
        return ids[-1]


class KernelDriver:
    def __init__(self, manager: KernelManager, client: BlockingKernelClient) -> None:
        self.manager = manager
        self.client = client
        self._comm_subshell: str | None = None

    def comms_over_subshell(self) -> None:
        """Send widget messages on a kernel subshell of their own, as JupyterLab >= 4.4 does."""
        request = self.client.session.msg("create_subshell_request", {})
        self.client.control_channel.send(request)
        while True:
            reply = self.client.control_channel.get_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == request["header"]["msg_id"]:
                self._comm_subshell = reply["content"]["subshell_id"]
                return

    def start(self, code: str, *, allow_stdin: bool = True, cell_id: str | None = None) -> Execution:
        """Send an execute_request; ``cell_id`` goes in its metadata, as JupyterLab puts it there."""
        if cell_id is None:
            return Execution(self.client.execute(code, allow_stdin=allow_stdin))
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": allow_stdin,
            "stop_on_error": True,
        }
        msg = self.client.session.msg("execute_request", content, metadata={"cellId": cell_id})
        self.client.shell_channel.send(msg)
        return Execution(msg["header"]["msg_id"])

    def pump(self, execution: Execution, until: Any = None, timeout: float = 60) -> Execution:
        """Read iopub and shell messages until ``until(execution)`` holds (default: the cell is done)."""
        condition = until or (lambda e: e.done)
        deadline = time.monotonic() + timeout
        while not condition(execution):
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell did not reach the expected state; outputs: {execution.outputs[-5:]}")
            try:
                msg = self.client.get_iopub_msg(timeout=0.1)
            except Empty:
                msg = None
            if msg is not None and msg["msg_type"] == "comm_open":
                # A widget is the kernel's, whichever request it was opened under: a panel for
                # background work is opened between cells.
                execution.widgets[msg["content"]["comm_id"]] = msg["content"]["data"].get("state", {})
            elif msg is not None:
                if msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] in execution.widgets:
                    # A widget's state changed (a click's effect carries the click as its parent).
                    data = msg["content"]["data"]
                    if data.get("method") in ("update", "echo_update"):
                        execution.widgets[msg["content"]["comm_id"]].update(data.get("state", {}))
                if msg["parent_header"].get("msg_id") == execution.msg_id:
                    if msg["msg_type"] == "status":
                        execution.idle = execution.idle or msg["content"]["execution_state"] == "idle"
                    else:
                        execution.outputs.append(msg)
            try:
                reply = self.client.get_shell_msg(timeout=0.01)
            except Empty:
                continue
            if reply["parent_header"].get("msg_id") == execution.msg_id:
                execution.reply = reply["content"]
        return execution

    def run(self, code: str, *, allow_stdin: bool = True, timeout: float = 60, cell_id: str | None = None) -> Execution:
        execution = self.start(code, allow_stdin=allow_stdin, cell_id=cell_id)
        return self.pump(execution, timeout=timeout)

    def wait_for_button(self, execution: Execution, description: str) -> str:
        """Pump until the running cell shows a button labelled ``description``; its model id."""
        self.pump(
            execution,
            until=lambda e: any(
                s.get("_model_name") == "ButtonModel" and s.get("description") == description
                for s in e.widgets.values()
            ),
        )
        return execution.button(description)

    def submit_answer(self, execution: Execution, text: str) -> Execution:
        """Type ``text`` into the answer panel that appears, click Submit, and let the cell finish."""
        submit = self.wait_for_button(execution, "Submit")
        self.set_value(execution.model("TextareaModel"), text)
        self.click(submit)
        return self.pump(execution)

    def ask(self, kind: str, code: str) -> dict[str, Any]:
        """A ``complete`` or ``inspect`` request for ``code`` (cursor at its end); the reply's content."""
        client = self.client
        msg_id = client.complete(code) if kind == "complete" else client.inspect(code)
        while True:
            reply = client.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                return dict(reply["content"])

    def click(self, model_id: str) -> None:
        self._comm(model_id, {"method": "custom", "content": {"event": "click"}})

    def set_value(self, model_id: str, value: Any) -> None:
        self.set_state(model_id, value=value)

    def set_state(self, model_id: str, **state: Any) -> None:
        """Change a widget's synced state as the frontend does (a radio button's choice is ``index``)."""
        self._comm(model_id, {"method": "update", "state": state, "buffer_paths": []})

    def _comm(self, comm_id: str, data: dict[str, Any]) -> None:
        msg = self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        if self._comm_subshell is not None:
            msg["header"]["subshell_id"] = self._comm_subshell
        self.client.shell_channel.send(msg)
