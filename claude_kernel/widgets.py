"""The ipywidgets panels a person answers while a cell runs, and the Responder built on them.

The generic panels live here; Claude Code's own ways of talking to its user (questions, plans) have
panels of their own in :mod:`claude_kernel.panels`, chosen by tool name.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Awaitable, Callable
from typing import Any

import ipywidgets as w

from ._detached import run_detached
from .conversation import Conversation, UndoNeedsConfirmation, UndoOffer
from .diff import proposed_change
from .invisible import show_invisible
from .panels import panel_for
from .panels._base import STATUS_STYLE, Panel, PanelSink, Request, pre
from .panels.command import command_view
from .panels.diff_view import diff_view
from .render import tool_label, tool_summary
from .session import HostToolRequest, PermissionRequest, ToolResult
from .turn import Allow, Deny, HeadlessResponder, PermissionDecision, shown_path

__all__ = ["AnswerPanel", "PermissionPanel", "UndoPanel", "WidgetResponder", "offer_undo"]

# Tools whose main input the user may edit before allowing: the field to put in a text area.
_EDITABLE = {"Bash": "command", "run_python": "code"}


def _input_view(request: PermissionRequest, *, cwd: str) -> tuple[list[w.Widget], Callable[[], dict[str, Any] | None]]:
    """How a tool's input is shown, and how to read back an edit (None: unchanged).

    File tools show a diff against the file as it is now, so the reviewer sees what will change.
    """
    editable = _EDITABLE.get(request.tool_name, "")
    if isinstance(request.input.get(editable), str):
        return command_view(request.input, editable)
    change = proposed_change(request.tool_name, request.input, cwd=cwd)
    if change is not None:
        return diff_view(change), lambda: None
    shown = show_invisible(json.dumps(request.input, indent=2, ensure_ascii=False))
    return [w.HTML(pre(shown))], lambda: None


def _record(request: PermissionRequest) -> Request:
    """The saved record of an approval: what runs is kept whole; other tools by their key input."""
    field = _EDITABLE.get(request.tool_name, "")
    command = request.input.get(field)
    if isinstance(command, str):
        return Request(tool_label(request.tool_name), command, whole=True)
    return Request(tool_label(request.tool_name), tool_summary(request.tool_name, request.input))


class PermissionPanel(Panel):
    """Allow / Always allow / Deny (with an optional reason) for one tool call."""

    def __init__(self, request: PermissionRequest, *, cwd: str) -> None:
        body, edited = _input_view(request, cwd=cwd)
        allow = w.Button(description="Allow", button_style="success", icon="check")
        always = w.Button(description="Always allow", tooltip=f"Allow {request.tool_name} for the rest of the session")
        deny = w.Button(description="Deny", button_style="danger", icon="times")
        reason = w.Text(placeholder="Reason (optional, shown to Claude)", layout=w.Layout(width="auto", flex="1"))
        description = f"<i>{html.escape(show_invisible(request.description))}</i>" if request.description else ""
        super().__init__(
            f"Claude wants to use {request.tool_name}",
            [w.HTML(description), *body, w.HBox([allow, always, deny, reason])],
            _record(request),
        )
        self._controls = [allow, always, deny, reason, *body]

        def allowed(always_: bool) -> None:
            change = edited()
            outcome = "allowed for the rest of the session" if always_ else "allowed"
            if change is not None:
                outcome += " with your edits: " + str(change.get(_EDITABLE.get(request.tool_name, ""), ""))
            status = f"✔ {request.tool_name} allowed for the rest of the session" if always_ else "✔ allowed"
            self._settle(Allow(change, always=always_), status, outcome)

        def denied() -> None:
            why = reason.value.strip()
            outcome = f"denied: {why}" if why else "denied"
            self._settle(Deny(why or "The user denied this tool call."), "✘ " + outcome, outcome)

        allow.on_click(lambda _: allowed(False))
        always.on_click(lambda _: allowed(True))
        deny.on_click(lambda _: denied())


class AnswerPanel(Panel):
    """A question (or a tool's input), a text area, and Submit."""

    def __init__(self, request: HostToolRequest) -> None:
        question = request.input.get("question")
        if isinstance(question, str):
            prompt = w.HTML(f"<div style='white-space: pre-wrap'>{html.escape(question)}</div>")
            title = "Claude asks you"
        else:
            prompt = w.HTML(pre(json.dumps(request.input, indent=2, ensure_ascii=False)))
            title = f"Claude called {request.tool_name}: your answer is its result"
        self._text = w.Textarea(placeholder="Your answer", layout=w.Layout(width="100%"), rows=3)
        submit = w.Button(description="Submit", button_style="primary", icon="paper-plane")
        detail = question if isinstance(question, str) else json.dumps(request.input, ensure_ascii=False)
        super().__init__(title, [prompt, self._text, submit], Request(tool_label(request.tool_name) + ":", detail))
        self._controls = [self._text, submit]
        submit.on_click(lambda _: self._settle(self._text.value, "✔ answered", f"answered: {self._text.value}"))


class UndoPanel(Panel):
    """ "Undo file changes" for files a turn changed (or that a rewind left changed).

    ``undo(confirmed)`` puts them back and says what it did; it runs on the kernel's event loop when
    clicked, after the cell has ended, so it is a plain task, not an awaited answer. When it needs a
    second, explicit confirmation (it would lose edits, delete files, undo later cells), the panel
    says why and the button becomes *Undo anyway*.
    """

    def __init__(self, title: str, files: tuple[str, ...], undo: Callable[[bool], Awaitable[str]]) -> None:
        listing = "".join(f"<li><code>{html.escape(path)}</code></li>" for path in files)
        button = w.Button(
            description="Undo file changes", icon="undo", button_style="warning", layout=w.Layout(width="auto")
        )
        super().__init__(title, [w.HTML(f"<ul style='margin: 2px 0'>{listing}</ul>"), button], Request(title, ""))
        self._controls = [button]
        self._button = button
        self._confirmed = False
        self._undo = undo
        button.on_click(lambda _: self._loop.call_soon_threadsafe(self._start))

    def _start(self) -> None:
        # A double click would start a second restore of the same files while the first runs: the
        # button is off until this undo has answered. Checked here, on the loop, since clicks sent
        # before the frontend saw the button disabled still arrive.
        if self._button.disabled:
            return
        self._button.disabled = True
        run_detached(self._run())

    async def _run(self) -> None:
        try:
            done = await self._undo(self._confirmed)
        except UndoNeedsConfirmation as exc:
            self._confirmed = True
            self._button.disabled = False  # for the explicit second click
            self._button.description, self._button.button_style = "Undo anyway", "danger"
            self._status.value = f"<span style='{STATUS_STYLE}'>⚠ {html.escape(str(exc))}</span>"
        except Exception as exc:
            self._settle(False, f"✘ {exc}", f"not undone: {exc}")
        else:
            self._settle(True, f"✔ {done}", f"undone: {done}")


class WidgetResponder:
    """Answers through panels shown in the running cell's output.

    ``cwd`` is the CLI's working directory: tools' relative paths are relative to it.
    """

    shows_output = True

    def __init__(self, sink: PanelSink, *, cwd: str) -> None:
        self._sink = sink
        self._cwd = cwd
        self._panels: dict[str, Panel] = {}

    async def _ask(self, tool_use_id: str, panel: Panel, waiting: str) -> Any:
        self._panels[tool_use_id] = panel
        panel.show(self._sink, waiting)
        try:
            return await panel.wait()
        finally:
            # However the wait ends (an answer, or the turn's end cancelling it), the panel is
            # settled: one that was never answered says so and takes no later click.
            self._panels.pop(tool_use_id, None)
            panel.cancel()

    async def permission(self, request: PermissionRequest) -> PermissionDecision:
        panel = panel_for(request) or PermissionPanel(request, cwd=self._cwd)
        decision = await self._ask(request.tool_use_id, panel, "waiting for approval")
        return decision if decision is not None else Deny("Cancelled.", interrupt=True)

    async def host_tool(self, request: HostToolRequest) -> ToolResult:
        answer = await self._ask(request.tool_use_id, AnswerPanel(request), "waiting for an answer")
        if answer is None:
            return ToolResult(request.tool_use_id, "Cancelled before the user answered.", is_error=True)
        return ToolResult(request.tool_use_id, str(answer))

    def cancel(self, tool_use_id: str) -> None:
        panel = self._panels.get(tool_use_id)
        if panel is not None:
            panel.cancel()

    def cancel_all(self) -> None:
        for panel in list(self._panels.values()):
            panel.cancel()


def panels_or_policy(sink: PanelSink | None, conversation: Conversation) -> WidgetResponder | HeadlessResponder:
    """Questions asked in panels in ``sink``, or answered by the headless policy when nobody can click (None)."""
    if sink is None:
        return HeadlessResponder(conversation.headless_policy)
    return WidgetResponder(sink, cwd=conversation.options.cwd or ".")


def offer_undo(
    sink: PanelSink, conversation: Conversation, *, dropped: UndoOffer | None, made: UndoOffer | None
) -> None:
    """Below a turn: undo buttons for what a rewind left changed and for what the cell changed."""
    for title, offer in (
        ("Files changed by the cells this rewind dropped", dropped),
        ("Files this cell changed", made),
    ):
        if offer is not None:
            files = tuple(shown_path(path, conversation.options.cwd) for path in offer.files)
            UndoPanel(title, files, functools.partial(conversation.undo, offer)).show(sink, "not undone")
