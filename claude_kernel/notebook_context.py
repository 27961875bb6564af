"""The notebook's recent past, sent with the next ``%%claude`` message.

Between two messages a person runs cells: loads data, plots, hits an error. So that they can ask
"what went wrong above?" without pasting anything, IPython's ``pre_run_cell`` / ``post_run_cell``
hooks record each cell run since the last message: its source, what it printed (a tee on
stdout/stderr while it runs; IPython keeps no record of printed text), its result, and for an
error the exception's type, message and last frames. The next message takes them, once.

Compact by design: every part is truncated, and the whole is capped at :data:`MAX_CHARS`, filled
newest first, because the newest cells are the ones a question is about.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any, TextIO, cast

from .notebook_tools import table_text

__all__ = ["MAX_CHARS", "NotebookContext"]

#: The whole context block, about 2,000 tokens.
MAX_CHARS = 8000
_SOURCE_CHARS = 1500
_OUTPUT_CHARS = 1000
_FRAMES = 3
#: Cells kept between two messages; far more than MAX_CHARS can carry.
_KEPT = 100


def _clip(text: str, limit: int) -> str:
    """Head and tail: the end of an output (the last lines, the total) matters as much as its start."""
    text = text.strip("\n")
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n… ({len(text) - 2 * half} characters left out) …\n{text[-half:]}"


class _Tee:
    """Writes go to the real stream and, while recording, into a bounded buffer.

    Everything else (``encoding``, ``fileno``, the kernel's own methods) is the real stream's: a
    subclass of ``io.TextIOBase`` would answer some of those itself, wrongly.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.recording = True
        self.text: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        if self.recording and self._size < 4 * _OUTPUT_CHARS:
            self.text.append(text)
            self._size += len(text)
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@dataclass(frozen=True)
class _Cell:
    number: int | None
    source: str
    output: str
    error: str

    def render(self) -> str:
        label = f"[{self.number}]" if self.number is not None else ""
        parts = [f"In {label}:\n{_clip(self.source, _SOURCE_CHARS)}"]
        if self.output:
            parts.append(f"Output:\n{_clip(self.output, _OUTPUT_CHARS)}")
        if self.error:
            parts.append(f"Error: {self.error}")
        return "\n".join(parts)


def _describe_error(error: BaseException) -> str:
    """``ZeroDivisionError: division by zero`` and the last frames, one line each."""
    lines = [f"{type(error).__name__}: {_clip(str(error), 300)}"]
    frames = traceback.extract_tb(error.__traceback__)
    # IPython's own frames (run_code's exec) come first and say nothing about the user's code.
    ours = [frame for frame in frames if f"{os.sep}IPython{os.sep}" not in frame.filename] or frames
    for frame in ours[-_FRAMES:]:
        where = "the cell" if "ipykernel" in frame.filename or frame.filename.startswith("<") else frame.filename
        lines.append(f"  {os.path.basename(where)}, line {frame.lineno}, in {frame.name}: {(frame.line or '').strip()}")
    return "\n".join(lines)


class NotebookContext:
    """Records the cells run in one IPython shell, until a message that carried them (or chose not to) clears them."""

    def __init__(self, shell: Any) -> None:
        self._shell = shell
        # Bounded: with the context turned off, cells pile up until the next message clears them.
        self._cells: deque[_Cell] = deque(maxlen=_KEPT)
        self._run = 0  # cells run since the last message, those the deque dropped included
        self._tees: tuple[_Tee, _Tee] | None = None
        shell.events.register("pre_run_cell", self._before)
        shell.events.register("post_run_cell", self._after)

    def _before(self, info: Any) -> None:
        if getattr(info, "silent", False) or _is_claude_cell(info.raw_cell or ""):
            return
        self._tees = (_Tee(sys.stdout), _Tee(sys.stderr))
        sys.stdout, sys.stderr = (cast(TextIO, tee) for tee in self._tees)

    def _after(self, result: Any) -> None:
        tees, self._tees = self._tees, None
        if tees is None:
            return  # a %%claude cell, a silent one, or the cell that loaded the extension
        out, err = tees
        # Code the cell started (a logging handler, a thread) may keep a tee: it keeps writing through.
        out.recording = err.recording = False
        if sys.stdout is out:
            sys.stdout = out.stream
        if sys.stderr is err:
            sys.stderr = err.stream
        output = "".join(out.text + err.text).rstrip("\n")
        if result.result is not None:
            output += ("\n" if output else "") + self._formatted(result.result)
        error = result.error_in_exec or result.error_before_exec
        self._run += 1
        self._cells.append(
            _Cell(
                result.execution_count,
                result.info.raw_cell or "",
                output,
                _describe_error(error) if error is not None else "",
            )
        )

    def _formatted(self, value: Any) -> str:
        text = table_text(value)
        if not text:
            try:
                text = str(self._shell.display_formatter.format(value, include={"text/plain"})[0]["text/plain"])
            except Exception:
                text = f"<{type(value).__name__}>"
        return text

    def clear(self) -> None:
        """The message went (with the context or without it): what follows is since this one."""
        self._cells.clear()
        self._run = 0

    def describe(self) -> tuple[str, str]:
        """The context block to put before the message, and the one line the cell shows.

        Both are "" when no cell ran since the last message. Nothing is forgotten until
        :meth:`clear`, so a message that never went out (a failed start) loses nothing.
        """
        cells = list(self._cells)
        if not cells:
            return "", ""
        chosen: list[str] = []
        size = 0
        for cell in reversed(cells):
            rendered = _clip(cell.render(), MAX_CHARS)
            if chosen and size + len(rendered) > MAX_CHARS:
                break
            chosen.append(rendered)
            size += len(rendered)
        errors = sum(1 for cell in cells[len(cells) - len(chosen) :] if cell.error)
        left_out = self._run - len(chosen)
        heading = "Cells the user ran in the notebook since the last message, oldest first"
        if left_out:
            heading += f" ({left_out} older cell{'s' if left_out > 1 else ''} left out)"
        block = f"<notebook-context>\n{heading}:\n\n" + "\n\n".join(reversed(chosen)) + "\n</notebook-context>\n\n"
        n = len(chosen)
        summary = f"Sent with {n} cell{'s' if n > 1 else ''} since the last message"
        if errors:
            summary += f", {errors} error{'s' if errors > 1 else ''}"
        return block, summary + "."


def _is_claude_cell(source: str) -> bool:
    first = source.lstrip()
    return first.startswith("%%claude") or first.startswith("%claude")
