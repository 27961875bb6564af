"""The Claude kernel: every cell is one message in one conversation with Claude Code.

A thin host: :mod:`.turn` runs the turn and :mod:`.render` draws it; this module sends the
displays (with the execute request's parent saved up front, so late output lands in the right
cell), wires ipywidgets comms into a plain ``kernelbase.Kernel``, and turns Jupyter's interrupts
into ``Session.interrupt()``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import comm
import ipywidgets
from ipykernel.kernelbase import Kernel

from . import __version__
from .conversation import Conversation, MagicError, split_magics
from .render import TurnView
from .session import ProcessDiedError, SessionError
from .session._signals import end_groups_on_signals
from .turn import HeadlessResponder, Responder, UpdatableDisplays, footer, run_turn, sigint_sets
from .widgets import WidgetResponder

__all__ = ["ClaudeKernel"]


class _CellDisplay(UpdatableDisplays):
    """The running cell's output, sent on iopub with the execute request as parent."""

    def __init__(self, kernel: ClaudeKernel, parent: dict[str, Any]) -> None:
        super().__init__()
        self._kernel = kernel
        self._parent = parent

    def _send(self, msg_type: str, content: dict[str, Any]) -> None:
        assert self._kernel.session is not None
        self._kernel.session.send(self._kernel.iopub_socket, msg_type, content, parent=self._parent)

    def publish(self, bundle: dict[str, str], display_id: str, *, new: bool) -> None:
        msg_type = "display_data" if new else "update_display_data"
        self._send(msg_type, {"data": bundle, "metadata": {}, "transient": {"display_id": display_id}})

    def image(self, media_type: str, data: str) -> None:
        self._send("display_data", {"data": {media_type: data}, "metadata": {}})

    def widget(self, widget: ipywidgets.Widget) -> None:
        self._send("display_data", {"data": widget._repr_mimebundle_(), "metadata": {}})

    def text(self, text: str, *, stream: str = "stdout") -> None:
        self._send("stream", {"name": stream, "text": text if text.endswith("\n") else text + "\n"})

    def error(self, ename: str, evalue: str) -> dict[str, Any]:
        content = {"ename": ename, "evalue": evalue, "traceback": [f"\x1b[0;31m{ename}\x1b[0m: {evalue}"]}
        self._send("error", content)
        return {"status": "error", "execution_count": self._kernel.execution_count, **content}


class ClaudeKernel(Kernel):
    implementation = "claude-kernel"
    implementation_version = __version__
    banner = "Claude kernel: each cell is a message to Claude Code. %help lists the magics."
    language_info: dict[str, object] = {  # noqa: RUF012 - the base class declares it so
        "name": "markdown",
        "mimetype": "text/markdown",
        "file_extension": ".md",
        "codemirror_mode": "markdown",
        "pygments_lexer": "markdown",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # A plain Kernel has no comm wiring; ipywidgets needs it to show and hear widgets.
        self.comm_manager = comm.get_comm_manager()
        for msg_type in ("comm_open", "comm_msg", "comm_close"):
            self.shell_handlers[msg_type] = getattr(self.comm_manager, msg_type)
        ipywidgets.register_comm_target()
        self.conversation = Conversation()
        self._spawning: asyncio.Task[Any] | None = None
        self._interrupt: anyio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        super().start()
        end_groups_on_signals()  # a gateway stops kernels with SIGTERM: end the CLI's tools too
        # Start the CLI now, so the first cell does not wait for it.
        self._loop = asyncio.get_event_loop()
        self._spawning = self._loop.create_task(self.conversation.ensure_session())

    @property
    def kernel_info(self) -> dict[str, Any]:
        info: dict[str, Any] = super().kernel_info
        # debugpy being importable makes ipykernel advertise a debugger, which cannot work here.
        info["supported_features"] = [f for f in info.get("supported_features", []) if f != "debugger"]
        return info

    async def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        ok = {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}
        if silent:
            return ok  # hidden requests (VS Code's probes) must never reach the model
        display = _CellDisplay(self, self.get_parent("shell"))
        magics, message = split_magics(code)
        try:
            await self._await_spawn()
            for line in magics:
                display.text(await self.conversation.run_magic(line))
            if not message:
                return ok
            session = await self.conversation.ensure_session()
        except MagicError as exc:
            return display.error("MagicError", str(exc))
        except SessionError as exc:  # CLINotFoundError included: its message says how to install
            return display.error(type(exc).__name__, str(exc))

        restarts = session.restarts
        responder: Responder
        if allow_stdin:
            responder = WidgetResponder(display.widget)
        else:
            # nbclient and papermill send allow_stdin=False: nobody is there to click.
            responder = HeadlessResponder(self.conversation.headless_policy)
        view = TurnView()
        self._interrupt = anyio.Event()
        try:
            with sigint_sets(self._interrupt):
                await run_turn(
                    session, message, sink=display, responder=responder, view=view, interrupt=self._interrupt
                )
        except ProcessDiedError as exc:
            view.add_note("The claude CLI stopped during this cell; the next cell resumes the conversation.", "error")
            display.update(view.bundles())
            return display.error("ProcessDiedError", str(exc))
        except Exception as exc:  # the kernel must outlive any failure of a turn
            self.log.exception("the turn failed")
            display.update(view.bundles())
            return display.error(type(exc).__name__, str(exc))
        finally:
            if isinstance(responder, WidgetResponder):
                responder.cancel_all()
        if session.restarts != restarts:
            view.add_note(f"The CLI had stopped; resumed session {session.session_id}.")
        interrupted = self._interrupt.is_set() or (view.result is not None and view.result.interrupted)
        if interrupted:
            view.add_note("Interrupted; the conversation continues in the next cell.", "cancelled")
        view.finish(footer(view, session))
        display.update(view.bundles())
        if interrupted:
            return display.error("KeyboardInterrupt", "the turn was interrupted")
        if view.result is not None and view.result.is_error:
            return display.error("ClaudeError", _error_hint(view))
        return ok

    async def _await_spawn(self) -> None:
        """Surface a failed start-up spawn once; ensure_session retries on the next call."""
        spawning, self._spawning = self._spawning, None
        if spawning is not None:
            await spawning

    def _request_interrupt(self) -> None:
        if self._interrupt is not None:
            self._interrupt.set()

    async def interrupt_request(self, stream: Any, ident: Any, parent: Any) -> None:
        """Message-mode interrupts: no signal needed, works the same everywhere."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._request_interrupt)
        assert self.session is not None
        self.session.send(stream, "interrupt_reply", {"status": "ok"}, parent, ident=ident)

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        await self.conversation.close()
        return {"status": "ok", "restart": restart}


def _error_hint(view: TurnView) -> str:
    result = view.result
    assert result is not None
    message = result.error_text
    if result.api_error_status == 401 or "api key" in message.lower() or "log in" in message.lower():
        message += " (set ANTHROPIC_API_KEY in the kernel's environment, or run `claude` once in a terminal to log in)"
    elif result.api_error_status == 429:
        message += " (rate limited: wait a moment and run the cell again)"
    return message
