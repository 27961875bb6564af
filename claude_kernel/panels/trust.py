"""The question a folder's project settings raise before they may run anything (see ``trust.py``).

Shown in the cell before its first turn in such a folder; the turn waits for the answer (the stop
button cancels the wait, and the settings stay off).
"""

from __future__ import annotations

import html

import ipywidgets as w

from ..trust import ProjectCommands
from ._base import Panel, PanelSink, Request

__all__ = ["TrustPanel", "ask_trust"]


class TrustPanel(Panel):
    """What the folder would run, and *Trust this folder* / *Keep its settings off*."""

    def __init__(self, commands: ProjectCommands) -> None:
        listing = "".join(f"<li><code>{html.escape(item)}</code></li>" for item in commands.items)
        trust = w.Button(description="Trust this folder", button_style="warning", icon="check")
        refuse = w.Button(description="Keep its settings off", icon="times")
        intro = (
            f"<div>The project settings of <code>{html.escape(commands.folder)}</code> would run these "
            "commands on this machine. Until you trust the folder, Claude runs without them (your own "
            "user settings still apply). The answer is remembered for this folder.</div>"
        )
        super().__init__(
            "Trust this folder?",
            [w.HTML(intro), w.HTML(f"<ul style='margin: 2px 0'>{listing}</ul>"), w.HBox([trust, refuse])],
            Request("Trust this folder?", commands.folder),
        )
        self._controls = [trust, refuse]
        trust.on_click(lambda _: self._settle(True, "✔ trusted: its project settings are on", "trusted"))
        refuse.on_click(lambda _: self._settle(False, "✘ not trusted: its project settings stay off", "not trusted"))


async def ask_trust(sink: PanelSink, commands: ProjectCommands) -> bool:
    """Show the question and wait for the answer; True if the folder is trusted."""
    panel = TrustPanel(commands)
    panel.show(sink, "waiting for your answer")
    try:
        return bool(await panel.wait())
    finally:
        panel.cancel()  # an interrupted wait settles the panel: it takes no later click
