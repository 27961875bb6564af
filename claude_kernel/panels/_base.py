"""What every panel shares: a box with a title, one awaited answer, and a record for the saved notebook.

A panel's button callback runs on the kernel's event loop (ipykernel >= 7.4 delivers comm messages
to a running async cell), or on a subshell thread on older kernels with JupyterLab's comms over
subshells, so a decision always reaches the waiting turn through ``call_soon_threadsafe``.
After a click the panel shows the decision and disables itself, so the saved notebook records it.
"""

from __future__ import annotations

import asyncio
import html
import re
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import ipywidgets as w

from .._html import strip_controls
from ..invisible import WARNING, has_invisible, show_invisible

__all__ = ["STATUS_STYLE", "Panel", "PanelSink", "Record", "Request", "code_block", "code_span", "pre"]

STATUS_STYLE = "font-size: 90%; opacity: 0.85"


def pre(text: str) -> str:
    return f"<pre style='white-space: pre-wrap; margin: 0'>{html.escape(text)}</pre>"


class PanelSink(Protocol):
    """Where panels are shown: a display that can be replaced by id (both hosts' UpdatableDisplays)."""

    def publish(
        self, bundle: dict[str, Any], display_id: str, *, new: bool, metadata: dict[str, Any] | None = None
    ) -> None: ...


class Record(Protocol):
    """What a panel asked and how it was answered, as the text forms a saved notebook keeps."""

    def bundle(self, outcome: str) -> dict[str, str]: ...


def code_span(text: str) -> str:
    """``text`` as one Markdown code span, whatever backticks it holds: inside it nothing is markup."""
    text = " ".join(text.split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str) -> str:
    """``text`` as a fenced Markdown code block, lines kept, whatever backtick runs it holds."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}\n{text}\n{fence}"


def outcome_markdown(outcome: str) -> str:
    """ "allowed", or "denied: <the person's words in a code span>"."""
    words, _, said = strip_controls(outcome).partition(": ")
    return words + (f": {code_span(said)}" if said else "")


@dataclass(frozen=True)
class Request:
    """What a panel asks, in words, for the text forms a saved notebook shows without widgets.

    ``whole`` keeps all of ``detail`` with its lines (a command that runs is recorded in full);
    otherwise it is one line of at most 200 characters.
    """

    label: str
    detail: str
    whole: bool = False

    def bundle(self, outcome: str) -> dict[str, str]:
        """``text/plain`` and ``text/markdown`` stating the request and its outcome.

        Model and user text go into code spans and blocks only, where Markdown interprets nothing.
        Invisible and text-direction characters are written out, with a warning.
        """
        detail = show_invisible(strip_controls(self.detail))
        warning = f" (⚠ {WARNING})" if has_invisible(self.detail) else ""
        if self.whole and "\n" in detail.strip():
            detail = detail.strip("\n")
            plain = f"{self.label}{warning}\n{detail}\n- {outcome}"
            markdown = f"{code_span(self.label)}{warning}\n\n{code_block(detail)}\n\n{outcome_markdown(outcome)}"
            return {"text/plain": plain, "text/markdown": markdown}
        detail = " ".join(detail.split())
        if len(detail) > 200 and not self.whole:
            detail = detail[:199] + "…"
        plain = f"{self.label} {detail}{warning} - {outcome}" if detail else f"{self.label} - {outcome}"
        markdown = f"{code_span(self.label)} {code_span(detail)}" if detail else code_span(self.label)
        markdown += f"{warning} - {outcome_markdown(outcome)}"
        return {"text/plain": plain, "text/markdown": markdown}


def _close_tree(widget: w.Widget) -> None:
    """Close a widget and everything inside it (their comms and models go with them)."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


class Panel:
    """A box with a title, a body, and one awaited answer."""

    def __init__(self, title: str, children: list[w.Widget], request: Record) -> None:
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
        self._status.value = f"<span style='{STATUS_STYLE}'>{html.escape(status)}</span>"

        def resolve() -> None:
            self._publish(outcome, new=False)
            if not self._answer.done():
                self._answer.set_result(value)

        self._loop.call_soon_threadsafe(resolve)

    def cancel(self) -> None:
        self._settle(None, "■ cancelled (the turn ended before an answer)", "cancelled")

    async def wait(self) -> Any:
        return await self._answer
