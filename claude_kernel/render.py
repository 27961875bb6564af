"""Events of one turn -> displays of sanitized HTML that grow as the answer streams, with plain-text twins.

Shared by the kernel and the ``%%claude`` magic; nothing here knows how output is sent. A
:class:`TurnView` is fed every event of a turn (and notes such as "interrupted"), and renders:

* the answer text, Markdown rendered to HTML, growing delta by delta;
* thinking, collapsed in a ``<details>`` element;
* one compact card per tool call: the tool, its key input (the Bash command, the file path), then a
  one-line summary of its result, errors marked;
* a status line while the turn runs (elapsed time, current activity), a footer when it ends.

Only symbols found in common text fonts are used (no emoji): headless and minimal systems draw
emoji as empty boxes.

Model text, tool inputs and tool results are untrusted, and JupyterLab runs script in the HTML of
a live session's outputs. So the kernel sends ``text/html`` it made itself: every untrusted piece
goes through :mod:`._html` on its own (parsed, sanitized, balanced), and only this module's fixed
markup wraps the pieces. The whole display carries MathJax's ignore classes: ``$5 and $6`` or
``$HOME:$PATH`` in an answer are text, never a formula. Colours are JupyterLab's theme variables.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from . import slash
from ._html import (
    block_cut,
    block_preview,
    escape,
    growing_block,
    inline_html,
    markdown_blocks,
    markdown_html,
    strip_controls,
)
from ._summary import shorten as _shorten
from ._summary import tool_summary
from .agent_progress import AGENT_TOOLS, LAUNCHED, AgentProgress, hand_back
from .diff import FILE_TOOLS, Change, card_html, change_for
from .invisible import show_invisible
from .session import (
    AssistantMessage,
    Event,
    Result,
    StreamEvent,
    SystemMessage,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolResultBlock,
    ToolUseBlock,
    UnknownEvent,
    UserMessage,
)
from .todos import TODO_TOOLS, Checklist

__all__ = ["FREEZE_AT", "TurnView", "tool_label", "tool_summary"]

log = logging.getLogger("claude_kernel.render")

_SUMMARY_LINES = 3
_SUMMARY_CHARS = 300
# Characters of a thinking still streaming that its fold shows: its last lines.
_THINKING_TAIL = 600
# MathJax 3 (JupyterLab, Notebook 7) skips elements with class mathjax_ignore, MathJax 2 (nbconvert,
# classic) tex2jax_ignore.
_ROOT = '<div class="claude-turn mathjax_ignore tex2jax_ignore">'
_MUTED = "color: var(--jp-ui-font-color2)"
_ERROR = "color: var(--jp-error-color1)"
_CARD = "border-left: 3px solid var(--jp-border-color2); padding: 0.1em 0 0.1em 0.75em; margin: 0.5em 0"
_SMALL = "font-size: var(--jp-content-font-size0, 0.85em)"
_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_BASE64 = re.compile(r"[A-Za-z0-9+/\s]*={0,2}\s*")
# Characters of finished output the live display holds before they freeze into a display of their
# own: enough that a long answer is dozens of outputs rather than thousands, little enough that a
# redraw stays cheap.
FREEZE_AT = 2000
# The least of a code block or list still growing that is cut inside (see ``block_cut``), and never
# less than what freezes (a list a few lines long may yet turn loose, its items spaced as paragraphs).
_CUT_BLOCKS_AT = 1000
# A table or quote still growing past this many characters is drawn by its last ~_PREVIEW_BUDGET
# (see ``block_preview``) until it is complete.
_PREVIEW_AT = 4000
_PREVIEW_BUDGET = 1500


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
    lines = [show_invisible(re.sub(r"</?tool_use_error>", "", line)) for line in lines]
    summary = "\n".join(_shorten(line, 160) for line in lines[:_SUMMARY_LINES])
    if len(lines) > _SUMMARY_LINES:
        summary += f"\n… {len(lines) - _SUMMARY_LINES} more lines"
    return _shorten(summary, _SUMMARY_CHARS)


def images_in(content: str | list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(media_type, base64)`` of every raster image block in a tool result.

    A tool result is untrusted too: another media type (``text/html``, SVG) would be a way to put
    live markup on the page, and data that is not base64 would not be an image.
    """
    if isinstance(content, str):
        return []
    found = []
    for block in content:
        source = block.get("source") or {}
        media_type, data = str(source.get("media_type", "image/png")), str(source.get("data", ""))
        if (
            block.get("type") == "image"
            and source.get("type") == "base64"
            and media_type in _IMAGE_TYPES
            and _BASE64.fullmatch(data)
        ):
            found.append((media_type, data))
    return found


@dataclass(eq=False)
class _Prose:
    """Model text (answer or thinking)."""

    text: str = ""
    message_id: str = ""
    #: Still streaming: more deltas (or the block's full copy, or a retry's reset) may change it.
    streaming: bool = False
    #: Link reference definitions of the pieces of this text already frozen (see ``_Piece``).
    references: dict[str, Any] = field(default_factory=dict)


class _Text(_Prose):
    pass


class _Thinking(_Prose):
    pass


@dataclass(eq=False)
class _Tool:
    tool_use_id: str
    name: str
    input: dict[str, Any] = field(default_factory=dict)
    result: str | None = None
    is_error: bool = False
    note: str = ""
    #: An applied file edit: ``+N -M`` and the diff, folded (our own escaped HTML), for the card.
    change: Change | None = None
    #: A subagent's tool calls and what it does now, under its ``Agent`` card.
    progress: AgentProgress | None = None
    #: The turn's to-do list, shown in place of the card of its first to-do call.
    checklist: Checklist | None = None


@dataclass(eq=False)
class _Note:
    text: str
    kind: str  # "info", "error" or "cancelled"


@dataclass(eq=False)
class _Output:
    """What a slash command printed (see :mod:`.slash`): shown as it was printed, not as Markdown."""

    text: str
    is_error: bool


_Part = _Text | _Thinking | _Tool | _Note | _Output


@dataclass(eq=False)
class _Piece:
    """What one display shows of a part: all of it, or, of a long answer, a run of whole blocks.

    A long code block or list still being written is cut too (see :func:`block_cut`): the piece
    above the cut renders with ``close`` after it and ``joins_below``, the one below with
    ``lead`` before it, ``joins_above`` and its list numbered from ``list_start``.
    """

    part: _Part
    start: int = 0
    end: int | None = None  # None: to the part's end
    lead: str = ""
    close: str = ""
    list_start: int | None = None
    joins_above: bool = False
    joins_below: bool = False
    #: A long block still growing that cannot be cut: drawn by its tail until it is complete.
    preview: bool = False
    # (from what, HTML, the Markdown shown instead of the source while it is previewed)
    _rendered: tuple[object, str, str | None] = field(default=(None, "", None), repr=False)

    @property
    def source(self) -> str:
        assert isinstance(self.part, _Prose)
        return self.part.text[self.start : self.end]

    def html(self) -> str:
        """The prose's HTML, kept until its text (or the definitions it may refer to) change."""
        return self._render()[0]

    def plain(self) -> str:
        """The prose's text; while a long last block is previewed, what the HTML shows of it."""
        shown = self._render()[1]
        if shown is not None:
            return shown
        return self.source if self.end is None else self.source.rstrip("\n")

    def _render(self) -> tuple[str, str | None]:
        assert isinstance(self.part, _Prose)
        previewing = self.preview and self.part.streaming and self.end is None and not self.lead
        key = (self.source, len(self.part.references), previewing)
        if self._rendered[0] != key:
            found = block_preview(key[0], budget=_PREVIEW_BUDGET) if previewing else None
            at, tail = found if found is not None else (len(key[0]), "")
            html = markdown_html(
                self.lead + key[0][:at] + self.close,
                references=self.part.references,
                seam_above=self.joins_above,
                seam_below=self.joins_below,
                list_start=self.list_start,
            )
            shown = None
            if found is not None:
                note = f"… {len(key[0]) - at:,} characters so far; shown whole once complete"
                html += f'<div style="{_MUTED}; {_SMALL}">{note}</div>' + markdown_html(tail)
                shown = f"{key[0][:at]}{note}\n{tail}"
            self._rendered = (key, html, shown)
        return self._rendered[1], self._rendered[2]

    def size(self) -> int:
        """Roughly what the piece costs to send, in characters."""
        if isinstance(self.part, _Prose):
            return len(self.source)
        if isinstance(self.part, _Tool):
            return 200 + len(self.part.result or "")
        return 50 + len(self.part.text)


@dataclass(eq=False)
class _Display:
    """One display of the turn: its pieces, and its bundle once nothing in it can change."""

    pieces: list[_Piece] = field(default_factory=list)
    frozen: dict[str, str] | None = None
    #: It goes on where the display above froze (no panel between them): the two must show no seam.
    continues: bool = False


def tool_label(name: str) -> str:
    if name.startswith("mcp__"):
        return name.split("__", 2)[-1]
    return name


def _thinking_html(piece: _Piece) -> str:
    """Thinking, folded. While it streams, only its length and its last lines.

    A fold opened during the stream closes again at the next redraw (the output is replaced), so
    the whole of a long thinking, sent four times a second, would cost its size squared on iopub
    and show nobody anything more.
    """
    part = piece.part
    assert isinstance(part, _Thinking)
    if part.streaming and len(part.text) > _THINKING_TAIL:
        summary = f"Thinking… ({len(part.text):,} characters)"
        tail = part.text[-_THINKING_TAIL:]
        tail = tail[tail.find("\n") + 1 :] or tail  # from the start of a line
        body = f'<div style="white-space: pre-wrap">…{escape(tail)}</div>'
    else:
        summary, body = "Thinking", piece.html()
    return (
        f'<details class="claude-thinking"><summary style="{_MUTED}">{summary}</summary>'
        f'<div style="{_MUTED}; {_CARD}">{body}</div></details>'
    )


def _tool_html(tool: _Tool, *, top_margin: bool = True) -> str:
    """A tool call's card: the tool and its key input, the decision, the start of its result."""
    style = _CARD if top_margin else f"{_CARD}; margin-top: 0"
    if tool.checklist:
        return f'<div class="claude-tool" style="{style}">{tool.checklist.html()}</div>'
    summary = tool_summary(tool.name, tool.input)
    lines = [
        f"▸ <strong>{escape(tool_label(tool.name))}</strong>" + (f" <code>{escape(summary)}</code>" if summary else "")
    ]
    if tool.note:
        lines.append(f"↳ {inline_html(tool.note)}")
    if tool.progress is not None and tool.progress.lines():
        lines.append(f'<div style="{_MUTED}; {_SMALL}">{tool.progress.html()}</div>')
    if tool.input.get("run_in_background") is True:
        lines.append("↳ runs in the background: it keeps running after this turn ends")
    if tool.result is not None:
        running = tool.progress is not None and tool.progress.running  # an agent working in the background
        mark = f'<span style="{_ERROR}">✗</span>' if tool.is_error else "↻" if running else "✓"
        result = tool.result or "(no output)"
        lines.append(f"{mark} " + "<br>".join(f"<code>{escape(line)}</code>" for line in result.split("\n")))
    if tool.change is not None:
        lines.append(card_html(tool.change))
    return f'<div class="claude-tool" style="{style}">' + "".join(f"<div>{line}</div>" for line in lines) + "</div>"


def _applied_change(tool: _Tool, reported: Any) -> Change | None:
    """The change an applied file tool made, from the content before it that the CLI reports."""
    if not isinstance(reported, dict):
        return None
    before = reported.get("original_file" if tool.name == "NotebookEdit" else "originalFile")
    if before is not None and not isinstance(before, str):
        return None
    try:
        return change_for(tool.name, tool.input, before)
    except Exception:  # a card without its diff beats a broken turn
        log.debug("no diff for %s", tool.name, exc_info=True)
        return None


class TurnView:
    """The display model of one turn.

    The turn is shown as a list of displays, each a ``text/html`` + ``text/plain`` bundle that a
    host shows and replaces by id. What is finished freezes: once the last display holds at least
    ``freeze_at`` characters of finished output (tool cards with their result, notes, complete
    messages, and the completed top-level blocks of an answer still streaming, see
    :func:`markdown_blocks`), it keeps exactly that, for good, and a new last display carries on
    with the live rest and the status line. So each redraw costs about the size of the live
    tail, however long the answer: only changed displays need sending again, and a frozen one's
    bundle is never rendered again. ``freeze_at=None`` keeps one display per cut, redrawn whole
    (the behaviour before freezing, kept to measure it).
    """

    def __init__(self, *, clock: Any = time.monotonic, freeze_at: int | None = FREEZE_AT) -> None:
        self._clock = clock
        self._started = clock()
        self._freeze_at = freeze_at
        self._parts: list[_Part] = []
        self._tools: dict[str, _Tool] = {}
        #: The card showing this turn's checklist, and the to-do calls whose results it awaits.
        self._todos: _Tool | None = None
        self._todo_calls: set[str] = set()
        # Streamed blocks, keyed by (message id, block index), so the full copy that follows the
        # deltas replaces rather than repeats them.
        self._streamed: dict[tuple[str, int], _Prose] = {}
        # Messages that streamed to their end; any other was cut, and the CLI asks for it again.
        self._complete: set[str] = set()
        self._activity = "waiting for the model"
        #: The turn compacted the conversation (or is compacting it): the outputs the CLI repeats
        #: now are earlier cells' (see slash.is_replay), and earlier turns are a summary from now on.
        self.compacted = False
        self.result: Result | None = None
        self.images: list[tuple[str, str]] = []
        self.footer = ""
        # New parts go into the last display. A cut starts a new one: a widget sits between two
        # displays, under the tool card it belongs to, while the answer goes on below it.
        self._displays: list[_Display] = [_Display()]

    # -- feeding ----------------------------------------------------------------------------

    def _add(self, part: _Part) -> None:
        self._parts.append(part)
        self._displays[-1].pieces.append(_Piece(part))

    def apply(self, event: Event) -> bool:
        """Take one event; True when the display changed."""
        if isinstance(event, TextDelta | ThinkingDelta):
            key = (event.message_id, event.index)
            part = self._streamed.get(key)
            if part is None:
                kind = _Text if isinstance(event, TextDelta) else _Thinking
                part = kind(message_id=event.message_id, streaming=event.message_id not in self._complete)
                self._streamed[key] = part
                self._add(part)
            part.text += event.text if isinstance(event, TextDelta) else event.thinking
            self._activity = "writing" if isinstance(event, TextDelta) else "thinking"
            return True
        if isinstance(event, StreamEvent) and event.event_type == "content_block_start":
            block = event.data.get("content_block") or {}
            if block.get("type") == "tool_use":
                self._activity = f"preparing {tool_label(str(block.get('name', '')))}"
                return True
            return False
        if isinstance(event, StreamEvent) and event.event_type == "content_block_stop":
            block_part = self._streamed.get((event.message_id, event.index or 0))
            if block_part is not None and block_part.streaming:
                block_part.streaming = False  # complete: it can freeze (a retry would still empty it)
                return isinstance(block_part, _Thinking)  # drawn whole now, see _thinking_html
            return False
        if isinstance(event, StreamEvent) and event.event_type == "message_delta":
            self._complete.add(event.message_id)  # its stop reason came: the whole message arrived
            for (message_id, _), part in self._streamed.items():
                if message_id == event.message_id:
                    part.streaming = False
            return False
        if isinstance(event, SystemMessage) and event.subtype == "api_retry":
            return self._discard_broken_messages()
        if isinstance(event, SystemMessage) and event.subtype.startswith("task_"):
            return self._apply_to_agent(event.raw.get("tool_use_id"), event)
        if isinstance(event, AssistantMessage | UserMessage | SystemMessage | UnknownEvent) and self._slash(event):
            return True
        if isinstance(event, AssistantMessage):
            return self._apply_assistant(event)
        if isinstance(event, UserMessage):
            return self._apply_user(event)
        if isinstance(event, Result):
            self.result = event  # a failed turn's text is the host's error output, shown once there
            return True
        return False

    def _apply_to_agent(self, tool_use_id: object, event: Event) -> bool:
        """A subagent's traffic or task event: drawn under its ``Agent`` card."""
        tool = self._tools.get(tool_use_id) if isinstance(tool_use_id, str) else None
        if tool is None or tool.progress is None or not tool.progress.apply(event):
            return False
        self._thaw(tool)
        return True

    def _slash(self, event: AssistantMessage | UserMessage | SystemMessage | UnknownEvent) -> bool:
        """A slash command's output or a compaction's note; True when the event was one (and shown)."""
        self.compacted = slash.compacting(event, before=self.compacted)
        output = slash.command_output(event)
        if output is not None:
            if not slash.is_replay(output, compacted=self.compacted) and output.text:
                self._add(_Output(output.text, output.is_error))
            pointer = slash.help_pointer(output)
            if pointer is not None:
                self.add_note(pointer)
            return True
        note = slash.note_for(event)
        if note is not None:
            self.add_note(*note)
            return True
        return False

    def _apply_assistant(self, event: AssistantMessage) -> bool:
        if event.parent_tool_use_id:
            return self._apply_to_agent(event.parent_tool_use_id, event)
        if event.error:
            return False  # the CLI's synthetic copy of an API error: the host reports the Result's text
        changed = False
        for block in event.content:
            if isinstance(block, TextBlock | ThinkingBlock):
                changed |= self._apply_full_block(event.message_id, block)
            elif isinstance(block, ToolUseBlock) and block.name in TODO_TOOLS and not event.parent_tool_use_id:
                changed |= self._apply_todo(block)
            elif isinstance(block, ToolUseBlock) and block.id not in self._tools:
                tool = _Tool(block.id, block.name, dict(block.input))
                if block.name in AGENT_TOOLS:
                    tool.progress = AgentProgress()
                self._tools[block.id] = tool
                self._add(tool)
                self._activity = f"running {tool_label(block.name)}"
                changed = True
        return changed

    def _apply_todo(self, block: ToolUseBlock) -> bool:
        """A to-do call: the turn's first shows the checklist, later ones update it in place."""
        if block.id in self._todo_calls:
            return False
        if self._todos is None:
            self._todos = _Tool(block.id, block.name, dict(block.input), checklist=Checklist())
            self._tools[block.id] = self._todos
            self._add(self._todos)
        assert self._todos.checklist is not None
        self._todos.checklist.call(block.id, block.name, dict(block.input))
        self._todo_calls.add(block.id)
        self._activity = f"running {block.name}"
        return True

    def _apply_full_block(self, message_id: str, block: TextBlock | ThinkingBlock) -> bool:
        """The complete copy of a block that may already have streamed as deltas."""
        kind = _Text if isinstance(block, TextBlock) else _Thinking
        body = block.text if isinstance(block, TextBlock) else block.thinking
        if not body:
            return False
        for (streamed_id, _), part in self._streamed.items():
            if streamed_id == message_id and isinstance(part, kind) and body.startswith(part.text):
                if body != part.text:
                    part.text = body  # the authoritative copy
                    self._thaw(part)
                return False
        self._add(kind(body, message_id))
        return True

    def _discard_broken_messages(self) -> bool:
        """The CLI retries a request whose stream broke: what that stream showed comes again, in full.

        The broken message's text is emptied rather than removed, so the displays stay put (a
        frozen one that showed some of it is drawn again, without it).
        """
        self._activity = "retrying"
        changed = False
        for (message_id, index), part in list(self._streamed.items()):
            if message_id not in self._complete:
                changed |= bool(part.text)
                part.text = ""
                part.streaming = False
                self._thaw(part)
                del self._streamed[message_id, index]
        return changed

    def _apply_user(self, event: UserMessage) -> bool:
        if event.parent_tool_use_id:
            return self._apply_to_agent(event.parent_tool_use_id, event)
        changed = False
        for block in event.content:
            todos = self._todos.checklist if self._todos is not None else None
            if isinstance(block, ToolResultBlock) and todos is not None and block.tool_use_id in self._todo_calls:
                self._todo_calls.discard(block.tool_use_id)
                if todos.result(block.tool_use_id, _result_text(block.content), is_error=block.is_error):
                    self._thaw(self._todos)
                    changed = True
            if isinstance(block, ToolResultBlock) and block.tool_use_id in self._tools:
                tool = self._tools[block.tool_use_id]
                content = block.content
                if tool.progress is not None:  # the report, not the CLI's notes to the model
                    content = hand_back(content, event.tool_use_result)
                    if content != LAUNCHED:
                        tool.progress.status = "error" if block.is_error else "completed"
                tool.result = _result_summary(content)
                tool.is_error = block.is_error
                if not block.is_error and tool.name in FILE_TOOLS:
                    tool.change = _applied_change(tool, event.tool_use_result)
                self._thaw(tool)
                self.images += images_in(block.content)
                self._activity = "waiting for the model"
                changed = True
        return changed

    def tool_calls(self) -> list[tuple[str, str]]:
        """``(tool_use_id, name)`` of every tool call the turn made, in order."""
        return [(tool.tool_use_id, tool.name) for tool in self._tools.values()]

    def background_launches(self) -> list[tuple[str, str, str]]:
        """``(tool_use_id, kind, description)`` of the work this turn left running: agents sent
        to the background, background commands."""
        launches = []
        for tool in self._tools.values():
            if tool.progress is not None and tool.result == LAUNCHED:
                launches.append((tool.tool_use_id, "Agent", str(tool.input.get("description") or "")))
            elif (
                tool.name == "Bash"
                and tool.input.get("run_in_background") is True
                and tool.result
                and not tool.is_error
            ):
                launches.append((tool.tool_use_id, "Bash", str(tool.input.get("command") or "")))
        return launches

    def add_note(self, text: str, kind: str = "info") -> None:
        self._add(_Note(text, kind))

    def set_tool_note(self, tool_use_id: str, note: str) -> None:
        """A line under a tool's card: "allowed", "denied: ...", "waiting for your answer"."""
        tool = self._tools.get(tool_use_id)
        if tool is None:
            # A subagent's call: the note goes on its agent's card, which says whose call it is.
            for agent in self._tools.values():
                if agent.progress is not None and tool_use_id in agent.progress.calls:
                    tool, note = agent, f"its {agent.progress.calls[tool_use_id].name} call: {note}"
                    break
        if tool is not None and tool.note != note:
            tool.note = note
            self._thaw(tool)

    def cut(self) -> None:
        """Start a new display here; what comes next renders below whatever the host shows now."""
        self._displays.append(_Display())

    def finish(self, footer: str) -> None:
        self.footer = footer

    @property
    def text(self) -> str:
        """The answer text of the turn (what ``%%claude -o`` stores)."""
        if self.result is not None and self.result.text is not None and not self.result.is_error:
            return strip_controls(self.result.text)
        return strip_controls("\n\n".join(p.text for p in self._parts if isinstance(p, _Text) and p.text))

    # -- freezing ---------------------------------------------------------------------------

    def _thaw(self, part: object) -> None:
        """A part changed after all (a retry, a late note): redraw the frozen displays showing it.

        Rare by design; the display keeps its place and its id, only its bundle is made again.
        """
        for index, display in enumerate(self._displays):
            if display.frozen is not None and any(piece.part is part for piece in display.pieces):
                display.frozen = self._bundle(index)

    @staticmethod
    def _finished(piece: _Piece) -> bool:
        part = piece.part
        if isinstance(part, _Prose):
            return not part.streaming
        return part.result is not None if isinstance(part, _Tool) else True

    def _finished_prefix(self, pieces: list[_Piece]) -> tuple[list[_Piece], list[_Piece]]:
        """``pieces`` as (what can freeze, what stays live); an answer streaming splits between its blocks."""
        for index, piece in enumerate(pieces):
            if self._finished(piece):
                continue
            done, rest = pieces[:index], pieces[index:]
            part = piece.part
            if isinstance(part, _Text) and not piece.lead and growing_block(piece.source):
                # One table, quote or loose list still growing: no cut in it; only its tail is new.
                piece.preview = len(part.text) - piece.start >= _PREVIEW_AT
            elif isinstance(part, _Text):
                start, lead, number, joins = piece.start, piece.lead, piece.list_start, piece.joins_above
                blocks = markdown_blocks(piece.source, lead=lead)
                if blocks.cuts:
                    end = start + blocks.cuts[-1]
                    done.append(_Piece(part, start, end, lead=lead, list_start=number, joins_above=joins))
                    start, lead, number, joins = end, "", None, False
                # A code block or list that keeps growing is cut inside too, or it would be redrawn whole.
                cut = None
                if len(part.text) - start >= max(self._freeze_at or 0, _CUT_BLOCKS_AT):
                    cut = block_cut(part.text[start:], lead=lead, list_start=number)
                if cut is not None:
                    end = start + cut.offset
                    done.append(_Piece(part, start, end, lead, cut.close, number, joins_above=joins, joins_below=True))
                    start, lead, number, joins = end, cut.lead, cut.list_start, True
                # One that cannot be cut (a table, a quote) is drawn by its tail while it grows, in
                # the live piece whether or not what comes before it freezes now.
                preview = cut is None and len(part.text) - start >= _PREVIEW_AT
                piece.preview = preview
                if start != piece.start:
                    live = _Piece(part, start, lead=lead, list_start=number, joins_above=joins, preview=preview)
                    rest = [live, *pieces[index + 1 :]]
            return done, rest
        return pieces, []

    def _freeze(self) -> None:
        if self._freeze_at is None:
            return
        for index, display in enumerate(self._displays[:-1]):  # above a cut: frozen once all of it is finished
            if display.frozen is None and all(self._finished(piece) for piece in display.pieces):
                display.frozen = self._bundle(index)
        last = self._displays[-1]
        done, rest = self._finished_prefix(last.pieces)
        if not done or sum(piece.size() for piece in done) < self._freeze_at:
            return
        grown = [piece.part for piece in done if isinstance(piece.part, _Prose) and self._commit_references(piece)]
        last.pieces = done
        self._displays.append(_Display(rest, continues=True))
        last.frozen = self._bundle(len(self._displays) - 2)
        for part in grown:  # a definition below a reference that is already frozen: draw it again
            self._thaw(part)

    @staticmethod
    def _commit_references(piece: _Piece) -> bool:
        """Keep the link definitions of a finished piece of a split answer; True if there were new ones."""
        part = piece.part
        if not isinstance(part, _Text) or (piece.start == 0 and piece.end is None):
            return False  # the whole text in one piece: rendered at once, its references with it
        known = len(part.references)
        for _, label, definition in markdown_blocks(piece.source, lead=piece.lead).references:
            part.references.setdefault(label, definition)
        return len(part.references) > known

    # -- rendering --------------------------------------------------------------------------

    def _status(self) -> str:
        elapsed = self._clock() - self._started
        return f"● {elapsed:.0f} s · {self._activity}…"

    def _html(self, pieces: list[_Piece], *, last: bool, seam_above: bool, seam_below: bool) -> str:
        """The display's HTML; at a seam between two displays, margins are set so the gap is the usual one.

        Inside one output the margins of two blocks collapse into the larger; across two outputs
        they add up. So a display going on from the one above starts without a top margin (a text
        piece there starts with a block that has none, see ``markdown_blocks``), and the display
        above it ends without the extra bottom margin JupyterLab gives an output's last element.
        """
        chunks: list[str] = []
        for number, piece in enumerate(pieces):
            part = piece.part
            if isinstance(part, _Text):
                if piece.source:
                    chunks.append(f'<div class="claude-text">{piece.html()}</div>')
            elif isinstance(part, _Thinking):
                if part.text:
                    chunks.append(_thinking_html(piece))
            elif isinstance(part, _Tool):
                chunks.append(_tool_html(part, top_margin=number > 0 or not seam_above))
            elif isinstance(part, _Output):
                style = f"{_CARD}; white-space: pre-wrap" + (f"; {_ERROR}" if part.is_error else "")
                chunks.append(f'<pre class="claude-command-output" style="{style}">{escape(part.text)}</pre>')
            else:
                icon = {"error": "✗", "cancelled": "■"}.get(part.kind, "•")
                style = f' style="{_ERROR}"' if part.kind == "error" else ""
                chunks.append(f'<div class="claude-note"{style}>{icon} {inline_html(part.text)}</div>')
        if last:
            status = escape(self.footer or self._status())
            chunks.append(f'<div class="claude-status" style="{_MUTED}; {_SMALL}; margin-top: 0.5em">{status}</div>')
        root = _ROOT.replace(">", ' style="margin-bottom: 0">') if seam_below else _ROOT
        return root + "\n".join(chunks) + "</div>" if chunks else ""

    def _plain(self, pieces: list[_Piece], *, last: bool) -> str:
        chunks: list[str] = []
        for piece in pieces:
            part = piece.part
            if isinstance(part, _Text) and piece.source:
                # A piece that ends where the next display goes on ends with the blank line between them.
                chunks.append(piece.plain())
            elif isinstance(part, _Thinking) and part.text:
                chunks.append("[thinking] " + _shorten(part.text, 200))
            elif isinstance(part, _Tool) and part.checklist:
                chunks.append(part.checklist.plain())
            elif isinstance(part, _Tool):
                line = f"[{tool_label(part.name)}] {tool_summary(part.name, part.input)}"
                if part.note:
                    line += f"\n  {part.note}"
                if part.progress is not None and part.progress.lines():
                    line += "\n" + part.progress.plain()
                if part.result is not None:
                    line += f"\n  {'error: ' if part.is_error else ''}{part.result}"
                if part.change is not None:
                    line += f"\n  +{part.change.added} -{part.change.removed}"
                chunks.append(line)
            elif isinstance(part, _Note | _Output):
                chunks.append(part.text)
        if last:
            chunks.append(self.footer or self._status())
        return strip_controls("\n\n".join(chunks))

    def _bundle(self, index: int) -> dict[str, str]:
        display, last = self._displays[index], index == len(self._displays) - 1
        seam_below = not last and self._displays[index + 1].continues
        return {
            "text/html": self._html(display.pieces, last=last, seam_above=display.continues, seam_below=seam_below),
            "text/plain": self._plain(display.pieces, last=last),
        }

    def bundles(self) -> list[dict[str, str]]:
        """One ``text/html`` + ``text/plain`` bundle per display, in order; the last has the status.

        A frozen display's bundle is the same object every time, so a host can tell cheaply
        which displays changed since it last sent them.
        """
        self._freeze()
        return [
            display.frozen if display.frozen is not None else self._bundle(index)
            for index, display in enumerate(self._displays)
        ]
