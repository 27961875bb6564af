"""The ipywidgets panels a person answers while a cell runs, and the Responder built on them.

A panel's button callback runs on the kernel's event loop (ipykernel >= 7.4 delivers comm messages
to a running async cell), or on a subshell thread on older kernels with JupyterLab's comms over
subshells, so a decision always reaches the waiting turn through ``call_soon_threadsafe``.
After a click the panel shows the decision and disables itself, so the saved notebook records it.
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import ipywidgets as w

from ._html import strip_controls
from .conversation import Conversation, UndoNeedsConfirmation, UndoOffer
from .diff import diff_html, proposed_change
from .render import tool_label, tool_summary
from .session import HostToolRequest, PermissionRequest, ToolResult
from .turn import Allow, Deny, PermissionDecision, shown_path

__all__ = ["AnswerPanel", "PermissionPanel", "UndoPanel", "WidgetResponder", "offer_undo"]

_STATUS_STYLE = "font-size: 90%; opacity: 0.85"


def _pre(text: str) -> str:
    return f"<pre style='white-space: pre-wrap; margin: 0'>{html.escape(text)}</pre>"


class PanelSink(Protocol):
    """Where panels are shown: a display that can be replaced by id (both hosts' UpdatableDisplays)."""

    def publish(
        self, bundle: dict[str, Any], display_id: str, *, new: bool, metadata: dict[str, Any] | None = None
    ) -> None: ...


def _code_span(text: str) -> str:
    """``text`` as one Markdown code span, whatever backticks it holds: inside it nothing is markup."""
    text = " ".join(text.split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


@dataclass(frozen=True)
class _Request:
    """What a panel asks, in words, for the text forms a saved notebook shows without widgets."""

    label: str
    detail: str

    def bundle(self, outcome: str) -> dict[str, str]:
        """``text/plain`` and ``text/markdown`` stating the request and its outcome.

        Model and user text go into code spans only, where Markdown interprets nothing.
        """
        detail = " ".join(strip_controls(self.detail).split())
        if len(detail) > 200:
            detail = detail[:199] + "…"
        plain = f"{self.label} {detail} - {outcome}" if detail else f"{self.label} - {outcome}"
        markdown = f"{_code_span(self.label)} {_code_span(detail)}" if detail else _code_span(self.label)
        words, _, said = strip_controls(outcome).partition(": ")
        markdown += f" - {words}" + (f": {_code_span(said)}" if said else "")
        return {"text/plain": plain, "text/markdown": markdown}


def _close_tree(widget: w.Widget) -> None:
    """Close a widget and everything inside it (their comms and models go with them)."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


class _Panel:
    """A box with a title, a body, and one awaited answer."""

    def __init__(self, title: str, children: list[w.Widget], request: _Request) -> None:
        self._loop = asyncio.get_running_loop()
        self._answer: asyncio.Future[Any] = self._loop.create_future()
        self._settled = False
        self._status = w.HTML()
        self._controls: list[w.Widget] = []
        self._request = request
        self._shown_in: tuple[PanelSink, str] | None = None
        self.widget = w.VBox(
            [w.HTML(f"<b>{html.escape(title)}</b>"), *children, self._status],
            layout=w.Layout(border="1px solid var(--jp-border-color1, #ccc)", padding="6px", margin="4px 0"),
        )

    def show(self, sink: PanelSink, waiting: str) -> None:
        """Publish the panel, with text forms that say what it waits for."""
        self._shown_in = (sink, uuid.uuid4().hex)
        self._publish(waiting, new=True)

    def _publish(self, outcome: str, *, new: bool) -> None:
        """Show the panel while it waits; once settled, only the line that records the outcome.

        A saved notebook keeps no widget models, so a widget output reopened later would read
        "Error displaying widget: model not found"; the record reads the same live and reopened.
        """
        if self._shown_in is None:
            return
        sink, display_id = self._shown_in
        bundle = self._request.bundle(outcome)
        if not self._settled:
            bundle = {**self.widget._repr_mimebundle_(), **bundle}
        sink.publish(bundle, display_id, new=new)
        if self._settled:
            _close_tree(self.widget)

    def _settle(self, value: Any, status: str, outcome: str) -> None:
        """Record the first answer (from any thread) and freeze the panel; later clicks change nothing.

        ``outcome`` replaces the waiting words in the text forms, so a saved notebook records it.
        """
        if self._settled:
            return
        self._settled = True
        for control in self._controls:
            control.disabled = True
        self._status.value = f"<span style='{_STATUS_STYLE}'>{html.escape(status)}</span>"

        def resolve() -> None:
            self._publish(outcome, new=False)
            if not self._answer.done():
                self._answer.set_result(value)

        self._loop.call_soon_threadsafe(resolve)

    def cancel(self) -> None:
        self._settle(None, "■ cancelled (the turn ended before an answer)", "cancelled")

    async def wait(self) -> Any:
        return await self._answer


# Tools whose main input the user may edit before allowing: the field to put in a text area.
_EDITABLE = {"Bash": "command", "run_python": "code"}


def _input_view(request: PermissionRequest, *, cwd: str) -> tuple[list[w.Widget], Callable[[], dict[str, Any] | None]]:
    """How a tool's input is shown, and how to read back an edit (None: unchanged).

    File tools show a diff against the file as it is now, so the reviewer sees what will change.
    """
    tool_input = request.input
    editable = _EDITABLE.get(request.tool_name, "")
    if isinstance(tool_input.get(editable), str):
        original = tool_input[editable]
        editor = w.Textarea(value=original, layout=w.Layout(width="100%"), rows=min(12, original.count("\n") + 2))
        editor.add_class("claude-command")

        def edited() -> dict[str, Any] | None:
            return None if editor.value == original else {**tool_input, editable: editor.value}

        return [editor], edited
    change = proposed_change(request.tool_name, tool_input, cwd=cwd)
    if change is not None:
        view = w.HTML(diff_html(change), layout=w.Layout(width="100%"))
        view.add_class("claude-diff-panel")
        return [view], lambda: None
    return [w.HTML(_pre(json.dumps(tool_input, indent=2, ensure_ascii=False)))], lambda: None


class PermissionPanel(_Panel):
    """Allow / Always allow / Deny (with an optional reason) for one tool call."""

    def __init__(self, request: PermissionRequest, *, cwd: str) -> None:
        body, edited = _input_view(request, cwd=cwd)
        allow = w.Button(description="Allow", button_style="success", icon="check")
        always = w.Button(description="Always allow", tooltip=f"Allow {request.tool_name} for the rest of the session")
        deny = w.Button(description="Deny", button_style="danger", icon="times")
        reason = w.Text(placeholder="Reason (optional, shown to Claude)", layout=w.Layout(width="auto", flex="1"))
        description = f"<i>{html.escape(request.description)}</i>" if request.description else ""
        super().__init__(
            f"Claude wants to use {request.tool_name}",
            [w.HTML(description), *body, w.HBox([allow, always, deny, reason])],
            _Request(tool_label(request.tool_name), tool_summary(request.tool_name, request.input)),
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


class AnswerPanel(_Panel):
    """A question (or a tool's input), a text area, and Submit."""

    def __init__(self, request: HostToolRequest) -> None:
        question = request.input.get("question")
        if isinstance(question, str):
            prompt = w.HTML(f"<div style='white-space: pre-wrap'>{html.escape(question)}</div>")
            title = "Claude asks you"
        else:
            prompt = w.HTML(_pre(json.dumps(request.input, indent=2, ensure_ascii=False)))
            title = f"Claude called {request.tool_name}: your answer is its result"
        self._text = w.Textarea(placeholder="Your answer", layout=w.Layout(width="100%"), rows=3)
        submit = w.Button(description="Submit", button_style="primary", icon="paper-plane")
        detail = question if isinstance(question, str) else json.dumps(request.input, ensure_ascii=False)
        super().__init__(title, [prompt, self._text, submit], _Request(tool_label(request.tool_name) + ":", detail))
        self._controls = [self._text, submit]
        submit.on_click(lambda _: self._settle(self._text.value, "✔ answered", f"answered: {self._text.value}"))


class UndoPanel(_Panel):
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
        super().__init__(title, [w.HTML(f"<ul style='margin: 2px 0'>{listing}</ul>"), button], _Request(title, ""))
        self._controls = [button]
        self._button = button
        self._confirmed = False
        self._undo = undo
        button.on_click(lambda _: self._loop.call_soon_threadsafe(self._start))

    def _start(self) -> None:
        self._loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            done = await self._undo(self._confirmed)
        except UndoNeedsConfirmation as exc:
            self._confirmed = True
            self._button.description, self._button.button_style = "Undo anyway", "danger"
            self._status.value = f"<span style='{_STATUS_STYLE}'>⚠ {html.escape(str(exc))}</span>"
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
        self._panels: dict[str, _Panel] = {}

    async def _ask(self, tool_use_id: str, panel: _Panel, waiting: str) -> Any:
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
        panel = PermissionPanel(request, cwd=self._cwd)
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
