"""One line that says what a tool call does, for cards, panels and progress lines."""

from __future__ import annotations

import json
from typing import Any

from .invisible import show_invisible

__all__ = ["shorten", "tool_summary"]


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_summary(name: str, tool_input: dict[str, Any]) -> str:
    """The one input that says what a tool call does: the command, the path, the pattern.

    Characters that hide or reorder text are shown for what they are (``invisible.py``).
    """
    if name in ("Agent", "Task") and isinstance(tool_input.get("description"), str):
        # The prompt is long and written for the agent.
        return shorten(show_invisible(tool_input["description"]), 200)
    questions = tool_input.get("questions")
    if isinstance(questions, list):  # AskUserQuestion
        asked = [str(q["question"]) for q in questions if isinstance(q, dict) and isinstance(q.get("question"), str)]
        return shorten(show_invisible(" · ".join(asked)), 200)
    for key in (
        "command",
        "code",
        "file_path",
        "notebook_path",
        "path",
        "planFilePath",
        "pattern",
        "url",
        "query",
        "question",
        "prompt",
        "description",
    ):
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            return shorten(show_invisible(value), 200)
    return shorten(show_invisible(json.dumps(tool_input, ensure_ascii=False)), 200) if tool_input else ""
