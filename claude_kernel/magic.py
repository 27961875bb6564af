"""``%%claude`` in an ordinary IPython kernel (``%load_ext claude_kernel``).

Same Session, same turn runner, same rendering as the Claude kernel; what differs is how output is
sent (IPython's ``display``) and three extra host tools over the user's namespace.

Why the cell is rewritten into an ``await``: on ipykernel >= 7.4 a widget click reaches the kernel
while a cell is running only if that cell awaits on the kernel's event loop. A plain (sync) magic
would block the loop, so no approval could ever arrive. An input transformer therefore turns a
``%%claude`` cell into ``await ...run_cell(line, body)``, which IPython runs as an async cell; the
stop button then cancels it (ipykernel's ``_cancel_on_sigint``), which this module turns into
``Session.interrupt()``.
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from functools import partial
from typing import Any

import anyio
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display, update_display
from traitlets import Bool

from .background import BackgroundBoard
from .conversation import Conversation, MagicError
from .images import Image, ImageError, from_file, from_value
from .line_magics import run_magic
from .notebook_context import NotebookContext
from .notebook_state import notebook_name
from .notebook_tools import NOTEBOOK_TOOLS, NotebookNamespace
from .panels._base import PanelSink
from .panels.trust import ask_trust
from .session import HostToolRequest, PermissionRequest, SessionOptions, ToolResult
from .session._signals import end_groups_on_signals
from .turn import (
    Allow,
    Deny,
    DisplaySink,
    HeadlessResponder,
    PermissionDecision,
    TurnOutcome,
    UpdatableDisplays,
    run_turn,
    sigint_sets,
)
from .widgets import WidgetResponder, offer_undo, panels_or_policy

__all__ = ["load_ipython_extension", "run_cell"]

_conversation: Conversation | None = None
_context: NotebookContext | None = None


class _IPythonDisplays(UpdatableDisplays):
    def publish(
        self, bundle: dict[str, Any], display_id: str, *, new: bool, metadata: dict[str, Any] | None = None
    ) -> None:
        (display if new else update_display)(bundle, raw=True, display_id=display_id, metadata=metadata)

    def image(self, media_type: str, data: str) -> None:
        display({media_type: data}, raw=True)


class _Nowhere:
    """A panel sink that shows nothing: terminal IPython cannot update a display once printed."""

    def publish(
        self, bundle: dict[str, Any], display_id: str, *, new: bool, metadata: dict[str, Any] | None = None
    ) -> None:
        pass


class _TerminalOutput:
    """Terminal IPython cannot replace output in place, so the turn is printed once, when it ends."""

    def update(self, bundles: list[dict[str, str]]) -> None:
        pass

    def finish(self, bundles: list[dict[str, str]], metadata: dict[str, Any]) -> None:
        print("\n\n".join(bundle["text/plain"] for bundle in bundles if bundle["text/plain"]))

    def image(self, media_type: str, data: str) -> None:
        pass


class ClaudeError(Exception):
    """A turn failed (an API error, a crashed CLI); the message is the CLI's, with a hint."""


class NotebookResponder:
    """Answers the namespace tools itself; asks the person (or the policy) for everything else."""

    def __init__(
        self, base: WidgetResponder | HeadlessResponder, namespace: NotebookNamespace, always_allowed: set[str]
    ) -> None:
        self._base = base
        self._namespace = namespace
        self._always_allowed = always_allowed
        self.shows_output = base.shows_output
        self._proposed: list[str] = []

    async def permission(self, request: PermissionRequest) -> PermissionDecision:
        return await self._base.permission(request)

    async def host_tool(self, request: HostToolRequest) -> ToolResult:
        if request.tool_name == "list_variables":
            return ToolResult(request.tool_use_id, self._namespace.list_variables())
        if request.tool_name == "inspect_variable":
            try:
                return ToolResult(request.tool_use_id, self._namespace.inspect_variable(str(request.input.get("name"))))
            except KeyError as exc:
                return ToolResult(request.tool_use_id, str(exc.args[0]), is_error=True)
        if request.tool_name == "run_python":
            return await self._run_python(request)
        if request.tool_name == "create_cell":
            return self._create_cell(request)
        return await self._base.host_tool(request)

    def _create_cell(self, request: HostToolRequest) -> ToolResult:
        """Put the code in a new cell below, through the ``set_next_input`` payload (``replace: False``).

        JupyterLab and Notebook 7 act on the first such payload of a reply only, so every proposal
        of this turn goes into that one cell, in order (the shell's payload replaces the earlier one).
        """
        code = request.input.get("code")
        if not isinstance(code, str) or not code.strip():
            return ToolResult(request.tool_use_id, "create_cell needs the cell's code as a string", is_error=True)
        self._proposed.append(code.strip("\n"))
        self._namespace.shell.set_next_input("\n\n".join(self._proposed), replace=False)
        if isinstance(self._base, HeadlessResponder):
            # nbclient and papermill drop the payload: say so, the code is still in this cell's output.
            text = "Nobody is at the notebook (a headless run), so no cell was added; the code is in the output."
        elif len(self._proposed) == 1:
            text = "Added a new cell below with this code; it has not run."
        else:
            text = (
                f"Added this code to the new cell below, after the {len(self._proposed) - 1} proposal(s) before "
                "it (one new cell per message); it has not run."
            )
        return ToolResult(request.tool_use_id, text)

    async def _run_python(self, request: HostToolRequest) -> ToolResult:
        """Ask as for a built-in tool (the code is editable in the panel), then run it in the namespace.

        It runs on the kernel's thread, as a cell would: output is captured, and long code holds the
        cell (the stop button still works once it returns).
        """
        if "run_python" in self._always_allowed:
            decision: PermissionDecision = Allow()
        else:
            decision = await self._base.permission(
                PermissionRequest(
                    request_id="",
                    tool_name="run_python",
                    input=dict(request.input),
                    tool_use_id=request.tool_use_id,
                    suggestions=[],
                    description="Run this code in your notebook's namespace",
                    blocked_path=None,
                    raw={},
                )
            )
        if isinstance(decision, Allow) and decision.always:
            self._always_allowed.add("run_python")
        if isinstance(decision, Deny):
            return ToolResult(request.tool_use_id, f"The user did not run the code: {decision.message}", is_error=True)
        code = str((decision.updated_input or request.input).get("code", ""))
        output = self._namespace.run_python(code)
        for bundle in output.shown:
            display(bundle, raw=True)
        return ToolResult(request.tool_use_id, output.content(), is_error=output.failed)

    def cancel(self, tool_use_id: str) -> None:
        self._base.cancel(tool_use_id)

    def cancel_all(self) -> None:
        self._base.cancel_all()


def _ipython() -> Any:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise UsageError("%%claude needs IPython")
    return shell


def _conversation_for_shell() -> Conversation:
    if _conversation is None:
        raise UsageError("run %load_ext claude_kernel first")
    return _conversation


def _responder(sink: PanelSink | None) -> NotebookResponder:
    """The namespace tools answered here; the rest asked in ``sink``, or by the headless policy (None).

    Background work's questions are answered by the same: a background agent may call the
    namespace tools too, which only this responder can answer.
    """
    shell, conversation = _ipython(), _conversation_for_shell()
    base = panels_or_policy(sink, conversation)
    return NotebookResponder(base, NotebookNamespace(shell.user_ns, shell), conversation.always_allowed)


#: What the CLI does between cells, shown in the cells that started it.
_board = BackgroundBoard(responder=_responder)


def _can_click(shell: Any) -> bool:
    """Someone can click widgets: a kernel whose frontend allows input (nbclient does not)."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return False
    parent = kernel.get_parent("shell") or {}
    return bool(parent.get("content", {}).get("allow_stdin"))


@magic_arguments()
@argument("-o", "--output", metavar="NAME", help="store the answer text in this variable")
@argument("--model", help="switch the model (for this and later cells)")
@argument("--new", action="store_true", help="start a fresh conversation first")
@argument("--resume", metavar="ID", help="continue an earlier conversation")
@argument("--headless", choices=["deny", "allow"], help="policy for approvals when nobody can click")
@argument("--budget", metavar="USD", help="cap what the conversation may spend (USD, or off)")
@argument(
    "--image",
    metavar="PATH_OR_NAME",
    action="append",
    default=[],
    help="attach an image: a file, or a variable holding a PIL image, a matplotlib Figure or PNG bytes (repeatable)",
)
@argument("--no-context", action="store_true", help="do not send the cells run since the last message")
@argument("message", nargs="*", help="the message (in a %%claude cell: the cell body)")
def _claude_arguments(line: str) -> None:
    """Talk to Claude Code. Every %%claude cell is one turn in one conversation per kernel.

    The answer streams into the cell; approvals and questions appear as buttons while the cell
    runs; the stop button interrupts the turn and keeps the conversation. Claude can list and
    inspect your variables, propose cells, and, once you allow it in the cell, run Python in your
    namespace and see the figures it draws. The cells you ran since the last message go with it
    (`%config ClaudeMagics.context = False` stops that for good).
    """


async def _apply_options(conversation: Conversation, args: Any) -> None:
    """The options are the Claude kernel's magics by another name, so both hosts behave alike."""
    magics = [
        ("%new", args.new),
        (f"%resume {args.resume}", args.resume),
        (f"%model {args.model}", args.model),
        (f"%budget {args.budget}", args.budget),
        (f"%permissions headless {args.headless}", args.headless),
    ]
    try:
        for line, given in magics:
            if given:
                await run_magic(conversation, line)
    except MagicError as exc:
        raise UsageError(str(exc)) from exc


async def run_cell(line: str, body: str) -> None:
    """The body of a ``%%claude`` cell (or a ``%claude`` line), run as an async cell."""
    shell = _ipython()
    conversation = _conversation_for_shell()
    args = parse_argstring(_claude_arguments, line)
    await _apply_options(conversation, args)
    message = body.strip() or " ".join(args.message).strip()
    if not message:
        return
    images = [_attachment(shell, name) for name in args.image]
    context, sent = _context.describe() if _context is not None else ("", "")
    if args.no_context or not shell.magics_manager.registry["ClaudeMagics"].context:
        context, sent = "", ""
    # In a notebook the cell has an id; a cell that runs again can then rewind its turn.
    parent = shell.kernel.get_parent("shell") if getattr(shell, "kernel", None) is not None else {}
    cell_id = (parent.get("metadata") or {}).get("cellId")
    interactive = _can_click(shell)
    # Terminal IPython has no kernel: no widgets, no updatable output, and Ctrl-C is ours to catch.
    # In a kernel, the stop button cancels this coroutine instead, which run_turn turns into an interrupt.
    in_kernel = getattr(shell, "kernel", None) is not None
    notebook = _IPythonDisplays() if in_kernel else None
    displays: DisplaySink = notebook or _TerminalOutput()
    notes, dropped = await conversation.before_turn(
        cell_id=cell_id,
        interactive=interactive,
        ask_trust=partial(ask_trust, notebook) if notebook is not None and interactive else None,
    )
    notes += [sent] if sent else []
    notes += [f"Attached {name} ({image.size})." for name, image in zip(args.image, images, strict=True)]
    session = await conversation.ensure_session()
    responder = _responder(notebook if notebook is not None and interactive else None)
    interrupt = anyio.Event()
    # Terminal IPython follows the side channel too (its loop runs while a cell does): else a
    # background agent's approval would wait for an answer forever. It shows nowhere and, with
    # nobody to click, follows the headless policy.
    board_sink: PanelSink = notebook if notebook is not None else _Nowhere()
    _board.interactive = interactive
    _board.watch(session)
    _board.cell_started(board_sink)
    outcome: TurnOutcome | None = None
    try:
        with nullcontext() if in_kernel else sigint_sets(interrupt):
            outcome = await run_turn(
                session,
                context + message,
                sink=displays,
                responder=responder,
                interrupt=interrupt,
                notes=notes,
                images=[(image.media_type, image.data) for image in images],
            )
    finally:
        # The stop button cancels this coroutine (run_turn raises): the cell is over all the same.
        _board.cell_ended(board_sink, outcome.view if outcome is not None else None)
    if outcome.prompt_uuid and _context is not None:
        _context.clear()
    made = conversation.after_turn(cell_id=cell_id, prompt=message, outcome=outcome)
    for notice in conversation.take_notices():  # a state file that could not be saved
        print(notice, file=sys.stderr)
    if notebook is not None and interactive:
        offer_undo(notebook, conversation, dropped=dropped, made=made)
    if args.output:
        shell.user_ns[args.output] = outcome.view.text
    if outcome.status == "interrupted":
        raise KeyboardInterrupt
    if outcome.status == "error":
        # The model's own failures are ClaudeErrors already; anything else keeps its name in front.
        prefix = "" if outcome.error_name == "ClaudeError" else f"{outcome.error_name}: "
        raise ClaudeError(prefix + outcome.error_text)


def _attachment(shell: Any, name: str) -> Image:
    """``--image NAME``: a variable of that name if there is one, else a file."""
    try:
        if name in shell.user_ns:
            return from_value(shell.user_ns[name], name)
        return from_file(os.path.expanduser(name))
    except ImageError as exc:
        raise UsageError(f"--image {name}: {exc}") from exc


def _rewrite_claude_cells(lines: list[str]) -> list[str]:
    """Turn a ``%%claude`` cell (or a lone ``%claude ...`` line) into an awaited call."""
    if not lines:
        return lines
    first = lines[0].strip()
    if first.startswith("%%claude"):
        line, body = first[len("%%claude") :], "".join(lines[1:])
    elif first.startswith("%claude") and len(lines) == 1 and first[len("%claude") :][:1] in ("", " "):
        line, body = first[len("%claude") :], ""
    else:
        return lines
    return [f"await __import__('claude_kernel.magic', fromlist=['run_cell']).run_cell({line!r}, {body!r})\n"]


@magics_class
class ClaudeMagics(Magics):
    """Registered so ``%claude?`` shows the options; the transformer runs the cells."""

    context = Bool(
        True,
        help="Send the cells run since the last %%claude message with the next one "
        "(`%%claude --no-context` skips it for one cell).",
    ).tag(config=True)

    @line_magic
    def claude(self, line: str) -> None:
        raise UsageError("%claude runs as the only line of a cell (or use %%claude); see %claude?")

    @cell_magic("claude")  # type: ignore[arg-type]  # IPython types the named form poorly
    def claude_cell(self, line: str, cell: str) -> None:
        raise UsageError("%%claude must be the first line of a cell typed in the notebook; see %claude?")


ClaudeMagics.claude.__doc__ = _claude_arguments.__doc__
ClaudeMagics.claude_cell.__doc__ = _claude_arguments.__doc__


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext claude_kernel``: one conversation for this kernel, started now."""
    global _conversation, _context
    if _conversation is None:
        _conversation = Conversation(SessionOptions(host_tools=NOTEBOOK_TOOLS), notebook=notebook_name())
    if _context is None:
        _context = NotebookContext(shell)
    # A kernel stopped with SIGTERM or SIGHUP (a gateway, a hub) must not leave the CLI behind.
    end_groups_on_signals()
    shell.register_magics(ClaudeMagics)
    if _rewrite_claude_cells not in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.append(_rewrite_claude_cells)
