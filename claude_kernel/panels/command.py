"""An approval of a command (Bash, run_python) that shows everything that changes what runs.

The command is editable and shown whole: the box is as tall as the command, so padding lines cannot
push its tail out of sight. Every other input field is listed, and those that widen what runs are
flagged: a command left running in the background after the turn, one outside the sandbox, a timeout.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..invisible import WARNING, has_invisible, show_invisible

__all__ = ["command_flags", "command_view"]

# A line of a command wraps in the box at about this many characters (the box spans the output).
_WRAP_AT = 100
_WARN = "color: var(--jp-warn-color0, #f57c00)"


def command_flags(tool_input: dict[str, Any]) -> list[str]:
    """What the input's other fields do to the command, in words, the widening ones first with a ⚠."""
    flags = []
    if tool_input.get("run_in_background"):
        flags.append("⚠ runs in the background: it keeps running after this turn and this cell end")
    if tool_input.get("dangerouslyDisableSandbox"):
        flags.append("⚠ runs with the sandbox disabled")
    timeout = tool_input.get("timeout")
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        flags.append(f"timeout: {timeout / 1000:g} s")
    return flags


def _rows(text: str) -> int:
    """Rows that show ``text`` whole in the box: one per line, more for the lines that wrap."""
    return sum(1 + len(line) // _WRAP_AT for line in text.split("\n")) + 1


def command_view(tool_input: dict[str, Any], field: str) -> tuple[list[w.Widget], Callable[[], dict[str, Any] | None]]:
    """The command in an editable box, its flags and other fields; and how to read back an edit."""
    original = str(tool_input[field])
    editor = w.Textarea(value=original, layout=w.Layout(width="100%"), rows=_rows(original))
    editor.add_class("claude-command")
    lines = original.count("\n") + 1
    size = f"{lines} line{'s' * (lines != 1)}, {len(original):,} characters"
    parts = [f"<div style='font-size: 90%; opacity: 0.85'>{size}</div>"]
    if has_invisible(original):
        parts.append(
            f"<div style='{_WARN}'>⚠ This command {html.escape(WARNING)}:</div>"
            f"<pre style='white-space: pre-wrap; margin: 0'>{html.escape(show_invisible(original))}</pre>"
        )
    for flag in command_flags(tool_input):
        style = f" style='{_WARN}'" if flag.startswith("⚠") else ""
        parts.append(f"<div{style}>{html.escape(flag)}</div>")
    known = {field, "description", "run_in_background", "dangerouslyDisableSandbox", "timeout"}
    for key, value in tool_input.items():
        if key not in known:
            shown = show_invisible(json.dumps(value, ensure_ascii=False))
            parts.append(f"<div><code>{html.escape(key)}</code>: <code>{html.escape(shown)}</code></div>")
    details = w.HTML("".join(parts))
    details.add_class("claude-command-details")

    def edited() -> dict[str, Any] | None:
        return None if editor.value == original else {**tool_input, field: editor.value}

    return [editor, details], edited
