"""The Claude kernel: every cell is one message in one conversation with Claude Code.

A thin host: :mod:`.turn` runs the turn and :mod:`.render` draws it; this module sends the
displays (with the execute request's parent saved up front, so late output lands in the right
cell), wires ipywidgets comms into a plain ``kernelbase.Kernel``, and turns Jupyter's interrupts
into ``Session.interrupt()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from importlib.metadata import version
from typing import Any

import anyio
import comm
import ipywidgets
from ipykernel.kernelbase import Kernel

from . import __version__
from ._detached import run_detached
from .background import BackgroundBoard
from .complete import Vocabulary, complete, inspect
from .conversation import Conversation, MagicError
from .idle_stop import IdleStop, idle_stop_seconds
from .line_magics import magic_docs, run_magic, split_magics
from .notebook_state import notebook_name
from .panels._base import PanelSink
from .panels.trust import ask_trust
from .session import Session
from .session._signals import end_groups_on_signals
from .turn import Responder, TurnOutcome, UpdatableDisplays, run_turn
from .widgets import offer_undo, panels_or_policy

__all__ = ["ClaudeKernel"]

_MAGIC_DOCS = magic_docs()

#: ipykernel before 7.4 (the newest there is for Python 3.10) holds every message on the main shell
#: until the running cell ends, comms included: a click on Allow would wait for the very turn that
#: waits for it. 7.4 dispatches comms at once; on older ones :meth:`ClaudeKernel.shell_main` does.
_COMMS_WAIT_FOR_THE_CELL = tuple(int(part) for part in version("ipykernel").split(".")[:2]) < (7, 4)
_COMM_MESSAGES = frozenset({"comm_open", "comm_msg", "comm_close"})


class _CellDisplay(UpdatableDisplays):
    """The running cell's output, sent on iopub with the execute request as parent."""

    def __init__(self, kernel: ClaudeKernel, parent: dict[str, Any]) -> None:
        super().__init__()
        self._kernel = kernel
        self._parent = parent

    def _send(self, msg_type: str, content: dict[str, Any]) -> None:
        assert self._kernel.session is not None
        self._kernel.session.send(self._kernel.iopub_socket, msg_type, content, parent=self._parent)

    def publish(
        self, bundle: dict[str, Any], display_id: str, *, new: bool, metadata: dict[str, Any] | None = None
    ) -> None:
        msg_type = "display_data" if new else "update_display_data"
        self._send(msg_type, {"data": bundle, "metadata": metadata or {}, "transient": {"display_id": display_id}})

    def image(self, media_type: str, data: str) -> None:
        self._send("display_data", {"data": {media_type: data}, "metadata": {}})

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
        self.conversation = Conversation(notebook=notebook_name())
        #: Shows what the CLI does between cells; follows each session the conversation runs on.
        self.board = BackgroundBoard(responder=self._responder)
        self._spawning: asyncio.Task[Any] | None = None
        self._interrupt: anyio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.idle_stop = IdleStop(
            self.conversation,
            idle_stop_seconds(),
            busy=lambda: self._spawning is not None and not self._spawning.done(),
        )

    async def shell_main(self, subshell_id: str | None, msg: Any) -> None:
        """Hand a comm message to its widget at once while a cell runs, on ipykernel < 7.4."""
        if _COMMS_WAIT_FOR_THE_CELL and subshell_id is None and self._main_asyncio_lock.locked():
            assert self.session is not None
            idents, frames = self.session.feed_identities(msg, copy=False)
            message = self.session.deserialize(frames, content=True, copy=False)
            msg_type = message["header"]["msg_type"]
            if msg_type in _COMM_MESSAGES:
                # The main shell's tasks share one context: put the running cell's parent back, or
                # its later output would be addressed to the click. No busy/idle is published, so
                # the frontend keeps showing the cell as running.
                ident, parent = self._shell_parent_ident.get(), self.get_parent("shell")
                try:
                    self.set_parent(idents, message, channel="shell")
                    self.shell_handlers[msg_type](self.shell_stream, idents, message)
                finally:
                    self.set_parent(ident, parent, channel="shell")
                return
        await super().shell_main(subshell_id, msg)

    def start(self) -> None:
        super().start()
        end_groups_on_signals()  # a gateway stops kernels with SIGTERM: end the CLI's tools too
        # ipykernel ignores SIGINT between requests; here the stop button can also stop a turn the
        # CLI takes by itself between cells.
        signal.signal(signal.SIGINT, self._on_sigint)
        # Start the CLI now, so the first cell does not wait for it.
        self._loop = asyncio.get_event_loop()
        self._spawning = self._loop.create_task(self._start_session())
        self.idle_stop.idle(self._loop)

    async def _start_session(self) -> Session:
        """The conversation's session, listened to between cells too (``background.py``)."""
        session = await self.conversation.ensure_session()
        self.board.watch(session)
        return session

    def _responder(self, sink: PanelSink | None) -> Responder:
        return panels_or_policy(sink, self.conversation)

    @property
    def kernel_info(self) -> dict[str, Any]:
        info: dict[str, Any] = super().kernel_info
        # debugpy being importable makes ipykernel advertise a debugger, which cannot work here.
        info["supported_features"] = [f for f in info.get("supported_features", []) if f != "debugger"]
        return info

    def pre_handler_hook(self) -> None:
        # ipykernel installs Python's default SIGINT handler around each request; its
        # KeyboardInterrupt, raised inside the running event loop, would end the kernel (during a
        # magic, a CLI restart or the first spawn). Every interrupt goes to the running cell instead.
        self.saved_sigint_handler = signal.signal(signal.SIGINT, self._on_sigint)
        self.idle_stop.activity()

    def post_handler_hook(self) -> None:
        super().post_handler_hook()
        if self._loop is not None:
            self.idle_stop.idle(self._loop)  # every request counts as use, a cell or a completion

    def _on_sigint(self, signum: int, frame: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._request_interrupt)

    async def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        try:
            return await self._execute(code, silent, allow_stdin)
        finally:
            self._interrupt = None  # an interrupt between cells goes to what the CLI does alone

    async def _execute(self, code: str, silent: bool, allow_stdin: bool) -> dict[str, Any]:
        ok = {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}
        if silent:
            return ok  # hidden requests (VS Code's probes) must never reach the model
        parent = self.get_parent("shell")
        display = _CellDisplay(self, parent)
        # JupyterLab and Notebook 7 name the cell; a cell that runs again can then rewind its turn.
        cell_id = (parent.get("metadata") or {}).get("cellId")
        conversation = self.conversation
        self._interrupt = interrupt = anyio.Event()
        try:
            magics, message = split_magics(code)
            with _cancelled_when(interrupt):
                await self._await_spawn()
                for line in magics:
                    display.text(await run_magic(conversation, line))
                if message:
                    attached, mentioned = conversation.attachments.for_message(message, conversation.options.cwd or ".")
                    notes, dropped = await conversation.before_turn(
                        cell_id=cell_id,
                        interactive=allow_stdin,
                        ask_trust=partial(ask_trust, display) if allow_stdin else None,
                    )
                    session = await self._start_session()
        except MagicError as exc:
            return display.error("MagicError", str(exc))
        except Exception as exc:  # CLINotFoundError included: its message says how to install
            self.log.debug("a magic or the CLI's start failed", exc_info=True)
            return display.error(type(exc).__name__, str(exc))
        if interrupt.is_set():
            display.text("Interrupted before the message was sent; the conversation is kept.", stream="stderr")
            return display.error("KeyboardInterrupt", "interrupted before the turn started")
        if not message:
            return ok
        # nbclient and papermill send allow_stdin=False: nobody is there to click.
        responder = self._responder(display if allow_stdin else None)
        board = self.board
        board.interactive = allow_stdin
        board.cell_started(display)
        outcome: TurnOutcome | None = None
        try:
            for _, image in mentioned:  # the CLI sends these itself: the cell shows what it sent
                display.image(image.media_type, image.data)
            notes += [f"Sent {name} ({image.size})." for name, image in [*attached, *mentioned]]
            outcome = await run_turn(
                session,
                message,
                sink=display,
                responder=responder,
                interrupt=interrupt,
                notes=notes,
                images=[(image.media_type, image.data) for _, image in attached],
            )
        finally:
            # However the cell ends, it is over: a later background question must not be asked in it.
            board.cell_ended(display, outcome.view if outcome is not None else None)
        if outcome.prompt_uuid:
            conversation.attachments.clear()
        made = conversation.after_turn(cell_id=cell_id, prompt=message, outcome=outcome)
        for notice in conversation.take_notices():  # a state file that could not be saved
            display.text(notice, stream="stderr")
        if allow_stdin:
            offer_undo(display, conversation, dropped=dropped, made=made)
        if outcome.status == "interrupted":
            return display.error("KeyboardInterrupt", "the turn was interrupted")
        if outcome.status == "error":
            return display.error(outcome.error_name, outcome.error_text)
        return ok

    async def do_complete(self, code: str, cursor_pos: int | None) -> dict[str, Any]:
        return complete(code, cursor_pos, self._vocabulary())

    async def do_inspect(
        self, code: str, cursor_pos: int | None, detail_level: int = 0, omit_sections: Any = ()
    ) -> dict[str, Any]:
        return inspect(code, cursor_pos, self._vocabulary())

    def _vocabulary(self) -> Vocabulary:
        return Vocabulary.of(_MAGIC_DOCS, self.conversation.session, cwd=self.conversation.options.cwd or ".")

    async def _await_spawn(self) -> None:
        """Surface a failed start-up spawn once; ensure_session retries on the next call."""
        spawning, self._spawning = self._spawning, None
        if spawning is not None:
            await spawning

    def _request_interrupt(self) -> None:
        if self._interrupt is not None and not self._interrupt.is_set():
            self._interrupt.set()
        elif self.conversation.session is not None and self.conversation.session.own_turn_running:
            # No cell runs: the stop button stops the turn the CLI took by itself.
            run_detached(self.conversation.session.interrupt())

    async def interrupt_request(self, stream: Any, ident: Any, parent: Any) -> None:
        """Message-mode interrupts: no signal needed, works the same everywhere."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._request_interrupt)
        assert self.session is not None
        self.session.send(stream, "interrupt_reply", {"status": "ok"}, parent, ident=ident)

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        # ipykernel runs this on its control thread's event loop, but the CLI's pipes and its
        # child watcher belong to the kernel's own loop: closing from the control loop never saw
        # the CLI exit on end of input, and sent it SIGTERM after the grace. So the close runs on
        # the kernel's loop, where the CLI exits on EOF within milliseconds.
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            await self._close()
        else:
            try:
                await asyncio.wait_for(asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._close(), loop)), 5.0)
            except asyncio.TimeoutError:  # not the built-in TimeoutError before Python 3.11
                # The kernel's loop is stuck: ipykernel's own shutdown then ends the CLI (SIGTERM).
                self.log.warning("the kernel's event loop did not close the claude CLI in time")
        return {"status": "ok", "restart": restart}

    async def _close(self) -> None:
        self.idle_stop.activity()
        spawning, self._spawning = self._spawning, None
        if spawning is not None and not spawning.done():
            spawning.cancel()  # a CLI still starting is ended by its own start-up (EOF first)
            with contextlib.suppress(BaseException):
                await spawning
        await self.conversation.close()


@contextmanager
def _cancelled_when(event: anyio.Event) -> Iterator[None]:
    """Cancel the block (a magic, a CLI start) when ``event`` is set; the caller checks the event.

    Cancelling a start or a restart loses nothing: the conversation's id stays in the options, and
    the next cell starts the CLI again with it.
    """
    with anyio.CancelScope() as scope:
        watcher = asyncio.get_running_loop().create_task(_cancel_on(event, scope))
        try:
            yield
        finally:
            watcher.cancel()


async def _cancel_on(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
