"""The model's to-do list as one live checklist per turn: pending, in progress, done.

Claude Code keeps the list through ``TodoWrite`` (each call replaces the whole list:
``todos[{content, status, activeForm}]``) or, in CLIs where that is off, through the task tools:
``TaskCreate {subject, activeForm?}`` answered ``Task #N created successfully``, and
``TaskUpdate {taskId, status?, subject?, activeForm?}`` (status ``deleted`` removes it). A call
counts once its result is not an error: what the CLI refused is not on its list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any

__all__ = ["TODO_TOOLS", "Checklist"]

TODO_TOOLS = frozenset({"TodoWrite", "TaskCreate", "TaskUpdate"})

_CREATED = re.compile(r"Task #(\S+) created successfully")
_MARK = {"pending": "☐", "in_progress": "◐", "completed": "☑"}
_PLAIN_MARK = {"pending": "[ ]", "in_progress": "[~]", "completed": "[x]"}


@dataclass
class _Item:
    text: str
    status: str
    active: str

    def shown(self) -> str:
        """What the item says: while in progress, its "doing" form when the model gave one."""
        return self.active if self.status == "in_progress" and self.active else self.text


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class Checklist:
    """The list as the model's calls leave it; they are taken in when their results come."""

    def __init__(self) -> None:
        self._items: dict[str, _Item] = {}
        self._calls: dict[str, tuple[str, dict[str, Any]]] = {}

    def __bool__(self) -> bool:
        return bool(self._items)

    def call(self, tool_use_id: str, name: str, tool_input: dict[str, Any]) -> None:
        self._calls[tool_use_id] = (name, tool_input)

    def result(self, tool_use_id: str, text: str, *, is_error: bool) -> bool:
        """Take in the call ``tool_use_id`` answered; True when the list changed."""
        name, tool_input = self._calls.pop(tool_use_id, ("", {}))
        if not name or is_error:
            return False
        if name == "TodoWrite":
            todos = tool_input.get("todos")
            self._items = {
                str(number): _Item(_str(t.get("content")), _str(t.get("status")), _str(t.get("activeForm")))
                for number, t in enumerate(todos if isinstance(todos, list) else [], 1)
                if isinstance(t, dict)
            }
            return True
        if name == "TaskCreate":
            found = _CREATED.search(text)
            key = found.group(1) if found else tool_use_id
            self._items[key] = _Item(_str(tool_input.get("subject")), "pending", _str(tool_input.get("activeForm")))
            return True
        item = self._items.get(str(tool_input.get("taskId")))
        if item is None:
            return False
        status = _str(tool_input.get("status"))
        if status == "deleted":
            del self._items[str(tool_input.get("taskId"))]
            return True
        item.status = status or item.status
        item.text = _str(tool_input.get("subject")) or item.text
        item.active = _str(tool_input.get("activeForm")) or item.active
        return True

    def counts(self) -> str:
        done = sum(item.status == "completed" for item in self._items.values())
        return f"{done} of {len(self._items)} done"

    def html(self) -> str:
        rows = []
        for item in self._items.values():
            text = escape(item.shown())
            if item.status == "completed":
                text = f"<s>{text}</s>"
            elif item.status == "in_progress":
                text = f"<strong>{text}</strong>"
            rows.append(f"<li class='claude-todo-{escape(item.status)}'>{_MARK.get(item.status, '☐')} {text}</li>")
        return (
            f"<div>▸ <strong>To-do</strong> <span style='opacity: 0.8'>{self.counts()}</span></div>"
            f"<ul class='claude-todos' style='list-style: none; padding-left: 0.5em; margin: 0.2em 0'>"
            + "".join(rows)
            + "</ul>"
        )

    def plain(self) -> str:
        lines = [f"[To-do] {self.counts()}"]
        lines += [f"  {_PLAIN_MARK.get(item.status, '[ ]')} {item.shown()}" for item in self._items.values()]
        return "\n".join(lines)
