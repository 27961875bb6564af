"""What a subagent is doing, under its ``Agent`` card: its tool calls, a live line, its report.

A subagent's traffic comes with ``parent_tool_use_id`` (the ``Agent`` call that started it), and
the CLI adds ``task_*`` system messages (``task_progress`` carries a description of the step under
way). The same :class:`AgentProgress` draws a foreground agent inside its turn's card and a
background agent in the cell that started it, after that cell has ended (``background.py``).

The ``Agent`` tool's result is written for the model, not for a person: a background launch
answers ``Async agent launched successfully. (This tool result is internal metadata ...)
agentId: ...``, and a report comes wrapped in ``<tools-used-before-summary>``, a
``[Subagent hand-back]`` preamble, ``agentId`` and ``<usage>`` lines. :func:`hand_back` keeps the
report only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ._html import escape
from ._summary import tool_summary
from .session import AssistantMessage, Event, SystemMessage, TextBlock, ToolResultBlock, ToolUseBlock, UserMessage

__all__ = ["AGENT_TOOLS", "LAUNCHED", "AgentProgress", "hand_back", "task_kind"]

#: The subagent tool's names: ``Agent`` since CLI 2.1.332, ``Task`` before.
AGENT_TOOLS = frozenset({"Agent", "Task"})

#: What an agent's card says of its result while the agent works in the background.
LAUNCHED = "running in the background"

_SHOWN_CALLS = 8
#: The CLI's ``task_type`` -> the tool that starts such a task.
_TASK_KINDS = {"local_agent": "Agent", "local_bash": "Bash"}
_ASYNC_LAUNCH = "Async agent launched successfully"
_WRAPPERS = (
    re.compile(r"<tools-used-before-summary>.*?</tools-used-before-summary>", re.S),
    re.compile(r"\[Subagent hand-back\].*?The report follows:", re.S),
    re.compile(r"<usage>.*?</usage>", re.S),
    re.compile(r"^agentId: .*$", re.M),
)


def task_kind(task_type: object) -> str:
    """A background task's label, from the CLI's ``task_type``: the tool that started it, as its card
    names it (``Agent``, ``Bash``), else the CLI's own word. One function, so every place says the same."""
    if isinstance(task_type, str) and task_type in _TASK_KINDS:
        return _TASK_KINDS[task_type]
    return str(task_type or "task")


def hand_back(content: str | list[dict[str, Any]], reported: Any) -> str:
    """The part of an ``Agent`` result meant for a person: the report, or that it runs on."""
    if isinstance(reported, dict):
        if reported.get("status") == "async_launched" or reported.get("isAsync"):
            return LAUNCHED
        blocks = reported.get("content")
        if isinstance(blocks, list):
            texts = [str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
            if any(texts):
                return "\n".join(texts).strip()
    text = content if isinstance(content, str) else "\n".join(str(b.get("text", "")) for b in content)
    if _ASYNC_LAUNCH in text:
        return LAUNCHED
    for wrapper in _WRAPPERS:
        text = wrapper.sub("", text)
    return "\n".join(line.strip() for line in text.strip().splitlines()).strip()


@dataclass
class _Call:
    name: str
    summary: str
    done: bool = False
    failed: bool = False


@dataclass
class AgentProgress:
    """One subagent's progress, fed its traffic and task events."""

    calls: dict[str, _Call] = field(default_factory=dict)
    #: What it is doing now (the CLI's task description, or the last line it wrote).
    live: str = ""
    #: ``running``, ``completed``, ``failed``, ``killed`` (from the task events).
    status: str = "running"
    #: The CLI's one-line summary of its report, once it reported.
    summary: str = ""

    def apply(self, event: Event) -> bool:
        """Take one event of this agent's; True when what it shows changed."""
        if isinstance(event, AssistantMessage):
            changed = False
            for block in event.content:
                if isinstance(block, ToolUseBlock):
                    self.calls[block.id] = _Call(block.name, tool_summary(block.name, block.input))
                    self.live = f"running {block.name}"
                    changed = True
                elif isinstance(block, TextBlock) and block.text.strip():
                    self.live = block.text.strip().splitlines()[-1]
                    changed = True
            return changed
        if isinstance(event, UserMessage):
            changed = False
            for block in event.content:
                if isinstance(block, ToolResultBlock) and block.tool_use_id in self.calls:
                    call = self.calls[block.tool_use_id]
                    call.done, call.failed = True, block.is_error
                    changed = True
            return changed
        if isinstance(event, SystemMessage):
            raw = event.raw
            if event.subtype == "task_progress" and isinstance(raw.get("description"), str):
                self.live = raw["description"]
                return True
            status = raw.get("status") or (raw.get("patch") or {}).get("status")
            if event.subtype in ("task_updated", "task_notification") and isinstance(status, str):
                self.status = status
                if isinstance(raw.get("summary"), str):
                    self.summary = raw["summary"]
                return True
        return False

    @property
    def running(self) -> bool:
        return self.status in ("running", "pending")

    def lines(self) -> list[tuple[str, str]]:
        """``(mark, text)`` per line: the last tool calls, then what it does now."""
        shown = list(self.calls.values())[-_SHOWN_CALLS:]
        lines = []
        hidden = len(self.calls) - len(shown)
        if hidden:
            lines.append(("…", f"{hidden} earlier tool calls"))
        for call in shown:
            mark = "✗" if call.failed else "✓" if call.done else "▸"
            lines.append((mark, f"{call.name} {call.summary}".strip()))
        if self.running and self.live:
            lines.append(("↻", self.live[:160]))
        return lines

    def html(self) -> str:
        return "".join(f"<div>{mark} <code>{escape(text)}</code></div>" for mark, text in self.lines())

    def plain(self) -> str:
        return "\n".join(f"  {mark} {text}" for mark, text in self.lines())
