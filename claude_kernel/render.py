"""Events of one turn -> one display: Markdown that grows as the answer streams, with a plain-text twin.

Shared by the kernel and the ``%%claude`` magic; nothing here knows how output is sent. A
:class:`TurnView` is fed every event of a turn (and notes such as "interrupted"), and renders:

* the answer text as Markdown, growing delta by delta;
* thinking, collapsed in a ``<details>`` element;
* one compact card per tool call: the tool, its key input (the Bash command, the file path), then a
  one-line summary of its result, errors marked;
* a status line while the turn runs (elapsed time, current activity), a footer when it ends.

Only symbols found in common text fonts are used (no emoji): headless and minimal systems draw
emoji as empty boxes.

Model text, tool inputs and tool results are untrusted: JupyterLab renders HTML inside Markdown
outputs of a live session, so every piece of it goes through :func:`escape_markdown` (or into a
code span), and only this module's own fixed tags reach the page. ``$`` is escaped too, because two
of them on a line are typeset as LaTeX.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .session import (
    AssistantMessage,
    Event,
    Result,
    StreamEvent,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

__all__ = ["TurnView", "code_span", "escape_markdown", "tool_label", "tool_summary"]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BACKTICKS = re.compile(r"`+")
_DANGEROUS_SCHEME = re.compile(r"(?i)\b(javascript|vbscript|data)(\s*):")
_SUMMARY_LINES = 3
_SUMMARY_CHARS = 300


def _escape_prose(text: str) -> str:
    """Escape text that Markdown would treat as prose (not code)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    # A zero-width space breaks the scheme, so a link can never run script.
    text = _DANGEROUS_SCHEME.sub(lambda m: f"{m.group(1)}\u200b{m.group(2)}:", text)
    # `\\$` is what survived JupyterLab's math typesetting in a check; `\$` did not.
    return text.replace("$", "\\\\$")


def _escape_inline(text: str) -> str:
    """Escape prose but keep inline code spans (CommonMark rules: matching backtick runs) as they are."""
    out: list[str] = []
    position = 0
    while True:
        opening = _BACKTICKS.search(text, position)
        if opening is None:
            break
        run = opening.group()
        closing = None
        for candidate in _BACKTICKS.finditer(text, opening.end()):
            if candidate.group() == run:
                closing = candidate
                break
        # A span never crosses a blank line (a paragraph break); if it would, the backticks are text.
        if closing is None or re.search(r"\n[ \t]*\n", text[opening.end() : closing.start()]):
            out.append(_escape_prose(text[position : opening.end()]))
            position = opening.end()
            continue
        out.append(_escape_prose(text[position : opening.start()]))
        out.append(text[opening.start() : closing.end()])
        position = closing.end()
    out.append(_escape_prose(text[position:]))
    return "".join(out)


def escape_markdown(text: str) -> str:
    """Make untrusted Markdown safe to render: no raw HTML, no script links, no stray math.

    Code (fenced blocks and inline spans) is left alone, since Markdown never interprets HTML there.
    """
    out: list[str] = []
    prose: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        match = _FENCE.match(line)
        if fence is None and match:
            out.append(_escape_inline("".join(prose)))
            prose = []
            fence = match.group(1)
            out.append(line)
        elif fence is not None:
            out.append(line)
            if (
                match
                and match.group(1)[0] == fence[0]
                and len(match.group(1)) >= len(fence)
                and not line.strip(" \t\r\n" + fence[0])
            ):
                fence = None
        else:
            prose.append(line)
    out.append(_escape_inline("".join(prose)))
    return "".join(out)


def code_span(text: str) -> str:
    """``text`` as one inline code span, whatever backticks it contains."""
    text = " ".join(text.split("\n"))
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_summary(name: str, tool_input: dict[str, Any]) -> str:
    """The one input that says what a tool call does: the command, the path, the pattern."""
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
            return _shorten(value, 200)
    return _shorten(json.dumps(tool_input, ensure_ascii=False), 200) if tool_input else ""


def _result_text(content: str | list[dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif block.get("type") == "image":
            parts.append("[image]")
    return "\n".join(parts)


def _result_summary(content: str | list[dict[str, Any]]) -> str:
    lines = [line for line in _result_text(content).strip().splitlines() if line.strip()]
    lines = [re.sub(r"</?tool_use_error>", "", line) for line in lines]
    summary = "\n".join(_shorten(line, 160) for line in lines[:_SUMMARY_LINES])
    if len(lines) > _SUMMARY_LINES:
        summary += f"\n… {len(lines) - _SUMMARY_LINES} more lines"
    return _shorten(summary, _SUMMARY_CHARS)


def images_in(content: str | list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(media_type, base64)`` of every image block in a tool result."""
    if isinstance(content, str):
        return []
    found = []
    for block in content:
        source = block.get("source") or {}
        if block.get("type") == "image" and source.get("type") == "base64":
            found.append((str(source.get("media_type", "image/png")), str(source.get("data", ""))))
    return found


@dataclass
class _Text:
    text: str = ""


@dataclass
class _Thinking:
    text: str = ""


@dataclass
class _Tool:
    tool_use_id: str
    name: str
    input: dict[str, Any] = field(default_factory=dict)
    result: str | None = None
    is_error: bool = False
    note: str = ""


@dataclass
class _Note:
    text: str
    kind: str  # "info", "error" or "cancelled"


_Part = _Text | _Thinking | _Tool | _Note


def tool_label(name: str) -> str:
    if name.startswith("mcp__"):
        return name.split("__", 2)[-1]
    return name


class TurnView:
    """The display model of one turn."""

    def __init__(self, *, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self._parts: list[_Part] = []
        self._tools: dict[str, _Tool] = {}
        # Streamed blocks, keyed by (message id, block index), so the full copy that follows the
        # deltas replaces rather than repeats them.
        self._streamed: dict[tuple[str, int], _Text | _Thinking] = {}
        self._activity = "waiting for the model"
        self.result: Result | None = None
        self.images: list[tuple[str, str]] = []
        self.footer = ""
        # Part indexes where a new display starts: a widget sits between two displays, under the
        # tool card it belongs to, while the answer goes on streaming below it.
        self._cuts: list[int] = []

    # -- feeding ----------------------------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Take one event; True when the display changed."""
        if isinstance(event, TextDelta | ThinkingDelta):
            key = (event.message_id, event.index)
            part = self._streamed.get(key)
            if part is None:
                part = _Text() if isinstance(event, TextDelta) else _Thinking()
                self._streamed[key] = part
                self._parts.append(part)
            part.text += event.text if isinstance(event, TextDelta) else event.thinking
            self._activity = "writing" if isinstance(event, TextDelta) else "thinking"
            return True
        if isinstance(event, StreamEvent) and event.event_type == "content_block_start":
            block = event.data.get("content_block") or {}
            if block.get("type") == "tool_use":
                self._activity = f"preparing {tool_label(str(block.get('name', '')))}"
                return True
            return False
        if isinstance(event, AssistantMessage):
            return self._apply_assistant(event)
        if isinstance(event, UserMessage):
            return self._apply_user(event)
        if isinstance(event, Result):
            self.result = event  # a failed turn's text is the host's error output, shown once there
            return True
        return False

    def _apply_assistant(self, event: AssistantMessage) -> bool:
        if event.parent_tool_use_id:
            return False  # a subagent's inner traffic; its Task card stands for it
        if event.error:
            return False  # the CLI's synthetic copy of an API error: the host reports the Result's text
        changed = False
        for block in event.content:
            if isinstance(block, TextBlock | ThinkingBlock):
                changed |= self._apply_full_block(event.message_id, block)
            elif isinstance(block, ToolUseBlock) and block.id not in self._tools:
                tool = _Tool(block.id, block.name, dict(block.input))
                self._tools[block.id] = tool
                self._parts.append(tool)
                self._activity = f"running {tool_label(block.name)}"
                changed = True
        return changed

    def _apply_full_block(self, message_id: str, block: TextBlock | ThinkingBlock) -> bool:
        """The complete copy of a block that may already have streamed as deltas."""
        kind = _Text if isinstance(block, TextBlock) else _Thinking
        body = block.text if isinstance(block, TextBlock) else block.thinking
        if not body:
            return False
        for (streamed_id, _), part in self._streamed.items():
            if streamed_id == message_id and isinstance(part, kind) and body.startswith(part.text):
                part.text = body  # the authoritative copy
                return False
        self._parts.append(kind(body))
        return True

    def _apply_user(self, event: UserMessage) -> bool:
        changed = False
        for block in event.content:
            if isinstance(block, ToolResultBlock) and block.tool_use_id in self._tools:
                tool = self._tools[block.tool_use_id]
                tool.result = _result_summary(block.content)
                tool.is_error = block.is_error
                self.images += images_in(block.content)
                self._activity = "waiting for the model"
                changed = True
        return changed

    def add_note(self, text: str, kind: str = "info") -> None:
        self._parts.append(_Note(text, kind))

    def set_tool_note(self, tool_use_id: str, note: str) -> None:
        """A line under a tool's card: "allowed", "denied: ...", "waiting for your answer"."""
        tool = self._tools.get(tool_use_id)
        if tool is not None:
            tool.note = note

    def cut(self) -> None:
        """Start a new display here; what comes next renders below whatever the host shows now."""
        self._cuts.append(len(self._parts))

    def finish(self, footer: str) -> None:
        self.footer = footer

    @property
    def text(self) -> str:
        """The answer text of the turn (what ``%%claude -o`` stores)."""
        if self.result is not None and self.result.text is not None and not self.result.is_error:
            return self.result.text
        return "\n\n".join(p.text for p in self._parts if isinstance(p, _Text) and p.text)

    # -- rendering --------------------------------------------------------------------------

    def _status(self) -> str:
        elapsed = self._clock() - self._started
        return f"● {elapsed:.0f} s · {self._activity}…"

    def _markdown(self, parts: list[_Part], *, last: bool) -> str:
        chunks: list[str] = []
        for part in parts:
            if isinstance(part, _Text):
                if part.text:
                    chunks.append(escape_markdown(part.text))
            elif isinstance(part, _Thinking):
                if part.text:
                    body = "\n".join("> " + line for line in escape_markdown(part.text).splitlines())
                    chunks.append(f"<details><summary>Thinking</summary>\n\n{body}\n\n</details>")
            elif isinstance(part, _Tool):
                chunks.append(self._tool_markdown(part))
            else:
                icon = {"error": "✗", "cancelled": "■"}.get(part.kind, "•")
                chunks.append(f"{icon} {escape_markdown(part.text)}")
        if last:
            chunks.append(f"<sub>{escape_markdown(self.footer or self._status())}</sub>")
        return "\n\n".join(chunks) + "\n" if chunks else ""

    def _tool_markdown(self, tool: _Tool) -> str:
        summary = tool_summary(tool.name, tool.input)
        head = f"▸ **{escape_markdown(tool_label(tool.name))}**" + (f" {code_span(summary)}" if summary else "")
        lines = [head]
        if tool.note:
            lines.append(f"↳ {escape_markdown(tool.note)}")
        if tool.result is not None:
            mark = "✗" if tool.is_error else "✓"
            result = tool.result or "(no output)"
            lines.append(f"{mark} " + "  \n".join(code_span(line) for line in result.splitlines() or [""]))
        return "> " + "  \n> ".join(lines)

    def _plain(self, parts: list[_Part], *, last: bool) -> str:
        chunks: list[str] = []
        for part in parts:
            if isinstance(part, _Text) and part.text:
                chunks.append(part.text)
            elif isinstance(part, _Thinking) and part.text:
                chunks.append("[thinking] " + _shorten(part.text, 200))
            elif isinstance(part, _Tool):
                line = f"[{tool_label(part.name)}] {tool_summary(part.name, part.input)}"
                if part.note:
                    line += f"\n  {part.note}"
                if part.result is not None:
                    line += f"\n  {'error: ' if part.is_error else ''}{part.result}"
                chunks.append(line)
            elif isinstance(part, _Note):
                chunks.append(part.text)
        if last:
            chunks.append(self.footer or self._status())
        return "\n\n".join(chunks)

    def bundles(self) -> list[dict[str, str]]:
        """One ``text/markdown`` + ``text/plain`` bundle per display, in order; the last has the status."""
        bounds = [0, *self._cuts, len(self._parts)]
        segments = [self._parts[start:end] for start, end in itertools.pairwise(bounds)]
        return [
            {
                "text/markdown": self._markdown(parts, last=i == len(segments) - 1),
                "text/plain": self._plain(parts, last=i == len(segments) - 1),
            }
            for i, parts in enumerate(segments)
        ]
