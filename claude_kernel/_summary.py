"""One line that says what a tool call does, for cards, panels and progress lines."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["shorten", "tool_summary"]


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_summary(name: str, tool_input: dict[str, Any]) -> str:
    """The one input that says what a tool call does: the command, the path, the pattern."""
    if name in ("Agent", "Task") and isinstance(tool_input.get("description"), str):
        return shorten(tool_input["description"], 200)  # the prompt is long and written for the agent
    for key in (
        "command",
        "code",
        "file_path",
        "notebook_path",
        "path",
        "pattern",
        "url",
        "query",
        "question",
        "prompt",
        "description",
    ):
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            return shorten(value, 200)
    return shorten(json.dumps(tool_input, ensure_ascii=False), 200) if tool_input else ""
