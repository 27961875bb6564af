"""What a file-changing tool call will do, as a reviewer wants to see it: a unified diff in HTML.

Edit, MultiEdit and Write are diffed against the file's current content (read when the approval
panel is shown, so it is what the edit will really change); a Write that creates a file shows its
content as a new file; NotebookEdit shows the cell's source before and after. The CLI matches an
edit's ``old_string`` after turning CRLF into LF (and writes the file back with its own line
endings), so the diff is computed on LF text too.

Everything here is pure (no widgets, no Jupyter): :func:`proposed_change` and :func:`change_for`
build a :class:`Change`, :func:`diff_html` and :func:`card_html` draw one. All text in it is model
or file content, so every piece of it goes through :func:`html.escape`; only this module's fixed
tags and styles reach the page.
"""

from __future__ import annotations

import difflib
import html
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .invisible import WARNING, has_invisible, show_invisible

__all__ = [
    "FILE_TOOLS",
    "Change",
    "Hunk",
    "Line",
    "card_html",
    "change_for",
    "change_stats",
    "diff_html",
    "diff_rows",
    "hunks",
    "proposed_change",
    "read_current",
]

#: Tools whose approval shows a diff.
FILE_TOOLS = frozenset({"Edit", "MultiEdit", "Write", "NotebookEdit"})
#: Files larger than this are not read (a diff of them would not be reviewed anyway).
MAX_BYTES = 2_000_000
#: Lines shown before the rest of a diff is folded away.
COLLAPSE_AFTER = 40
#: Lines drawn at all: beyond this the page gets slow and nobody reads on.
MAX_LINES = 1000
CONTEXT = 3


@dataclass(frozen=True)
class Line:
    """One row of a diff: ``kind`` is ``" "`` (context), ``"-"``, ``"+"`` or ``"\\"`` (no newline at end)."""

    kind: str
    text: str
    old: int | None = None
    new: int | None = None


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: tuple[Line, ...]

    @property
    def header(self) -> str:
        return f"@@ -{self.old_start},{self.old_count} +{self.new_start},{self.new_count} @@"


@dataclass(frozen=True)
class Change:
    """A file change ready to show: what it is, its hunks, and anything the reviewer must know."""

    path: str
    #: "edit", "new file", "overwrite", "cell 2 (code)", ...
    kind: str
    hunks: tuple[Hunk, ...] = ()
    notes: tuple[str, ...] = ()
    #: True when the hunks are the tool's own fragments, not a diff against the file.
    fragments: bool = False
    added: int = field(init=False)
    removed: int = field(init=False)

    def __post_init__(self) -> None:
        lines = [line for hunk in self.hunks for line in hunk.lines]
        object.__setattr__(self, "added", sum(line.kind == "+" for line in lines))
        object.__setattr__(self, "removed", sum(line.kind == "-" for line in lines))


# -- reading --------------------------------------------------------------------------------


def resolve(path: str, cwd: str) -> str:
    """The tool's path as the CLI sees it: relative paths are relative to the CLI's directory."""
    return os.path.normpath(os.path.join(cwd, os.path.expanduser(path)))


def read_current(path: str) -> tuple[str | None, str | None]:
    """``(text, problem)``: the file's text with LF line endings, or why it cannot be diffed.

    A missing file is ``(None, None)``: the tool would create it.
    """
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            return None, f"the file is {size / 1e6:.1f} MB, too large to diff; showing the change only"
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read the file ({exc.strerror or exc}); showing the change only"
    if b"\0" in data[:8192]:
        return None, "binary file: no diff; showing the change only"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text: no diff; showing the change only"
    return _lf(text), None


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


# -- diffing --------------------------------------------------------------------------------


def _opcodes(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib's opcodes, with common leading and trailing lines trimmed first.

    An edit touches a few lines of a long file; matching only the middle keeps that fast.
    """
    head = 0
    while head < len(a) and head < len(b) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < len(a) - head and tail < len(b) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    middle = difflib.SequenceMatcher(None, a[head : len(a) - tail], b[head : len(b) - tail]).get_opcodes()
    codes = [("equal", 0, head, 0, head)] if head else []
    codes += [(tag, i1 + head, i2 + head, j1 + head, j2 + head) for tag, i1, i2, j1, j2 in middle]
    if tail:
        codes.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    return [code for code in codes if code[1] != code[2] or code[3] != code[4]]


def _groups(
    codes: list[tuple[str, int, int, int, int]], context: int
) -> Iterable[list[tuple[str, int, int, int, int]]]:
    """Opcodes split into hunks: changes with ``context`` equal lines around them (as ``diff -u``)."""
    if codes and codes[0][0] == "equal":
        tag, i1, i2, j1, j2 = codes[0]
        codes[0] = (tag, max(i1, i2 - context), i2, max(j1, j2 - context), j2)
    if codes and codes[-1][0] == "equal":
        tag, i1, i2, j1, j2 = codes[-1]
        codes[-1] = (tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context))
    group: list[tuple[str, int, int, int, int]] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > 2 * context:
            group.append((tag, i1, i1 + context, j1, j1 + context))
            yield group
            group = []
            i1, j1 = i2 - context, j2 - context
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        yield group


def _row(kind: str, line: str, old: int | None, new: int | None) -> list[Line]:
    rows = [Line(kind, line.removesuffix("\n"), old, new)]
    if not line.endswith("\n"):
        rows.append(Line("\\", "No newline at end of file"))
    return rows


def hunks(before: str, after: str, *, context: int = CONTEXT) -> tuple[Hunk, ...]:
    """The unified diff of two texts as hunks with line numbers (only real differences)."""
    a = before.splitlines(keepends=True)
    b = after.splitlines(keepends=True)
    result = []
    for group in _groups(_opcodes(a, b), context):
        lines: list[Line] = []
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for offset in range(i2 - i1):
                    lines += _row(" ", a[i1 + offset], i1 + offset + 1, j1 + offset + 1)
                continue
            for i in range(i1, i2):
                lines += _row("-", a[i], i + 1, None)
            for j in range(j1, j2):
                lines += _row("+", b[j], None, j + 1)
        first, last = group[0], group[-1]
        old_count, new_count = last[2] - first[1], last[4] - first[3]
        # diff -u numbers an empty side by the line before it.
        result.append(
            Hunk(
                first[1] + 1 if old_count else first[1],
                old_count,
                first[3] + 1 if new_count else first[3],
                new_count,
                tuple(lines),
            )
        )
    return tuple(result)


def _fragment_hunk(old: str, new: str) -> Hunk:
    """The tool's own old and new text, without line numbers: all we can show without the file."""
    lines = [Line("-", text) for text in _lf(old).splitlines()] + [Line("+", text) for text in _lf(new).splitlines()]
    return Hunk(0, 0, 0, 0, tuple(lines))


# -- the tools ------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# The CLI finds old_string with curly quotes taken as straight ones, and edits the file's own text.
_STRAIGHT_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def _as_in_file(text: str, old: str) -> str:
    """``old`` as the file writes it, when only the kind of quotes differs (else ``old`` itself).

    Each quote maps to one character, so a match in the straightened text is at the same place
    in the file.
    """
    if old in text:
        return old
    at = text.translate(_STRAIGHT_QUOTES).find(old.translate(_STRAIGHT_QUOTES))
    return text[at : at + len(old)] if at >= 0 else old


def _curled_like(new: str, found: str) -> str:
    """``new`` with its straight quotes curled, of each kind the matched text has curly, as the CLI does.

    A quote after a space, an opening bracket or the start opens; any other closes (an apostrophe).
    """
    pairs = (('"', "\u201c", "\u201d"), ("'", "\u2018", "\u2019"))
    kinds = [kind for kind in pairs if kind[1] in found or kind[2] in found]
    out = []
    for index, char in enumerate(new):
        for straight, left, right in kinds:
            if char == straight:
                before = new[index - 1] if index else ""
                char = left if not before or before.isspace() or before in "([{-" else right
        out.append(char)
    return "".join(out)


def _apply_edits(text: str, edits: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    """Apply Edit/MultiEdit edits in order as the CLI would; notes for the ones it would refuse."""
    notes = []
    many = len(edits) > 1
    for number, edit in enumerate(edits, 1):
        label = f"edit {number}: " if many else ""
        old, new = _lf(_text(edit.get("old_string"))), _lf(_text(edit.get("new_string")))
        if old and old not in text and (found := _as_in_file(text, old)) != old:
            notes.append(
                f"{label}old_string matches the file only with curly and straight quotes taken as the same: "
                "the CLI applies the edit, with new_string's quotes curled as the file's are"
            )
            old, new = found, _curled_like(new, found)
        count = text.count(old) if old else 0
        if not old:
            notes.append(f"{label}old_string is empty: the CLI refuses this edit of an existing file")
        elif count == 0:
            notes.append(f"{label}old_string does not occur in the file: the CLI will refuse this edit")
        elif edit.get("replace_all"):
            text = text.replace(old, new)
            notes.append(f"{label}replace_all: {count} occurrence{'s' if count > 1 else ''} replaced")
        elif count > 1:
            notes.append(
                f"{label}old_string occurs {count} times and replace_all is not set: the CLI will refuse this edit"
            )
        else:
            text = text.replace(old, new, 1)
    return text, notes


def _edits(tool_name: str, tool_input: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if tool_name == "MultiEdit":
        edits = tool_input.get("edits")
        return [e for e in edits if isinstance(e, Mapping)] if isinstance(edits, list) else []
    return [tool_input]


def _file_change(tool_name: str, tool_input: Mapping[str, Any], path: str, before: str | None) -> Change:
    if tool_name == "Write":
        content = _lf(_text(tool_input.get("content")))
        if before is None:
            return Change(path, "new file", hunks("", content))
        return Change(path, "overwrite", hunks(before, content), () if before != content else ("no changes",))
    edits = _edits(tool_name, tool_input)
    if before is None:
        # The CLI creates a file from an Edit whose old_string is empty.
        if len(edits) >= 1 and not _text(edits[0].get("old_string")):
            created, notes = _apply_edits(_lf(_text(edits[0].get("new_string"))), edits[1:])
            return Change(path, "new file", hunks("", created), tuple(notes))
        return _fragments(tool_name, tool_input, path, "the file does not exist: the CLI will refuse this edit")
    after, notes = _apply_edits(before, edits)
    if after == before:
        return _fragments(tool_name, tool_input, path, *(notes or ["no changes"]))
    return Change(path, "edit", hunks(before, after), tuple(notes))


def _fragments(tool_name: str, tool_input: Mapping[str, Any], path: str, *notes: str) -> Change:
    """A change shown as the tool's own text, when the file cannot be diffed (or the edit would fail)."""
    if tool_name == "Write":
        # Only reached for a file that exists but cannot be read.
        return Change(path, "overwrite", (_fragment_hunk("", _text(tool_input.get("content"))),), notes, fragments=True)
    shown = tuple(
        _fragment_hunk(_text(e.get("old_string")), _text(e.get("new_string"))) for e in _edits(tool_name, tool_input)
    )
    return Change(path, "edit", shown, notes, fragments=True)


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _cell_index(cells: Sequence[Mapping[str, Any]], cell_id: str) -> int | None:
    """The cell the CLI means: by its ``id``, or ``cell-N`` (what it calls cells that have no id)."""
    for index, cell in enumerate(cells):
        if cell.get("id") == cell_id:
            return index
    match = re.fullmatch(r"cell-(\d+)", cell_id)
    if match and int(match.group(1)) < len(cells):
        return int(match.group(1))
    return None


def _notebook_change(tool_input: Mapping[str, Any], path: str, before: str | None) -> Change:
    mode = _text(tool_input.get("edit_mode")) or "replace"
    new_source = _lf(_text(tool_input.get("new_source")))
    cell_type = _text(tool_input.get("cell_type"))
    cell_id = _text(tool_input.get("cell_id"))
    if before is None:
        return _notebook_fragment(path, mode, new_source, "the notebook does not exist")
    try:
        found = json.loads(before).get("cells")
        if not isinstance(found, list):
            raise ValueError("no cells")
    except (ValueError, AttributeError):
        return _notebook_fragment(path, mode, new_source, "the file is not a notebook (no JSON cells)")
    cells = [cell if isinstance(cell, dict) else {} for cell in found]
    index = _cell_index(cells, cell_id) if cell_id else None
    if cell_id and index is None:
        return _notebook_fragment(path, mode, new_source, f"no cell {cell_id!r} in the notebook")
    # People count cells from 1; the CLI's "cell-N" ids count from 0.
    if mode == "insert":
        where = f"after cell {index + 1} of {len(cells)}" if index is not None else "at the top"
        return Change(path, f"new {cell_type or 'code'} cell {where}", hunks("", new_source))
    if index is None:
        return _notebook_fragment(path, mode, new_source, "no cell_id given: the CLI needs one to find the cell")
    cell = cells[index]
    old_type = str(cell.get("cell_type", "code"))
    old_source = _lf(_source(cell))
    label = f"cell {index + 1} of {len(cells)}"
    if mode == "delete":
        return Change(path, f"{label} ({old_type}) deleted", hunks(old_source, ""))
    notes = (f"cell type: {old_type} -> {cell_type}",) if cell_type and cell_type != old_type else ()
    if old_source == new_source and not notes:
        notes = ("no changes",)
    return Change(path, f"{label} ({cell_type or old_type})", hunks(old_source, new_source), notes)


def _notebook_fragment(path: str, mode: str, new_source: str, note: str) -> Change:
    shown = (_fragment_hunk("", new_source),) if mode != "delete" else ()
    return Change(path, f"notebook cell ({mode})", shown, (note,), fragments=True)


def change_for(tool_name: str, tool_input: Mapping[str, Any], before: str | None, *, path: str = "") -> Change:
    """The change a tool call makes to a file whose content is ``before`` (None: it does not exist).

    For NotebookEdit ``before`` is the notebook's JSON text.
    """
    path = path or _text(tool_input.get("file_path") or tool_input.get("notebook_path"))
    before = _lf(before) if before is not None else None
    if tool_name == "NotebookEdit":
        return _notebook_change(tool_input, path, before)
    return _file_change(tool_name, tool_input, path, before)


def proposed_change(tool_name: str, tool_input: Mapping[str, Any], *, cwd: str) -> Change | None:
    """The change a file tool is asking to make, against the file on disk now; None for other tools."""
    if tool_name not in FILE_TOOLS:
        return None
    raw = _text(tool_input.get("notebook_path" if tool_name == "NotebookEdit" else "file_path"))
    if not raw:
        return Change("", "edit", (), ("the tool call names no file",), fragments=True)
    path = resolve(raw, cwd)
    before, problem = read_current(path)
    if problem is not None:
        if tool_name == "NotebookEdit":
            return _notebook_fragment(path, _text(tool_input.get("edit_mode")) or "replace", "", problem)
        return _fragments(tool_name, tool_input, path, problem)
    return change_for(tool_name, tool_input, before, path=path)


def change_stats(tool_name: str, tool_input: Mapping[str, Any], before: str | None) -> tuple[int, int]:
    """``(added, removed)`` lines of an applied file tool call, given the file's content before it.

    The CLI reports that content in the tool result's ``tool_use_result``: ``originalFile`` for Edit and
    Write (None there for a new file), ``original_file`` (the notebook's JSON) for NotebookEdit.
    """
    change = change_for(tool_name, tool_input, before)
    return change.added, change.removed


# -- HTML -----------------------------------------------------------------------------------

# Colours come from JupyterLab's theme variables, so both themes stay readable: a translucent tint
# of the theme's own success / error colour works on light and dark backgrounds alike. The tints
# and signs are inline (they carry the meaning and survive an HTML sanitizer that drops <style>);
# layout goes in one <style> block scoped to the diff's class, to keep each row small.
_TINT = {
    "+": "background:color-mix(in srgb,var(--jp-success-color1,#4caf50) 22%,transparent)",
    "-": "background:color-mix(in srgb,var(--jp-error-color1,#f44336) 22%,transparent)",
}
_SIGN_COLOR = {"+": "var(--jp-success-color1,#388e3c)", "-": "var(--jp-error-color1,#d32f2f)"}
_ROW_CLASS = {" ": "ctx", "-": "del", "+": "add", "\\": "meta"}
_STYLE = """<style>
.claude-diff{border-collapse:collapse;width:100%;table-layout:fixed;margin:2px 0;line-height:1.4;
font-family:var(--jp-code-font-family,monospace);font-size:var(--jp-code-font-size,13px);
color:var(--jp-content-font-color1,inherit)}
.claude-diff td{padding:0 6px;vertical-align:top;border:none}
.claude-diff td.n{text-align:right;white-space:nowrap;user-select:none;color:var(--jp-content-font-color3,#999)}
.claude-diff td.c{white-space:pre-wrap;overflow-wrap:anywhere}
.claude-diff tr.hunk{background:var(--jp-layout-color2,#eee);color:var(--jp-content-font-color2,#666)}
.claude-diff tr.meta{font-style:italic;color:var(--jp-content-font-color3,#999)}
.claude-diff-note{margin:2px 0;color:var(--jp-warn-color0,#f57c00)}
.claude-diff-more>summary,.claude-diff-card>summary{cursor:pointer}
</style>"""


def _table(rows: list[str], number_width: int, numbered: bool) -> str:
    numbers = f"<col style='width:{number_width + 2}ch'>" * 2 if numbered else ""
    return f"<table class='claude-diff'><colgroup>{numbers}<col></colgroup>{''.join(rows)}</table>"


def _rows(change: Change, limit: int) -> list[str]:
    """Table rows for at most ``limit`` diff lines (hunk headers included)."""
    rows: list[str] = []
    for hunk in change.hunks:
        if not change.fragments:
            rows.append(f"<tr class='hunk'><td colspan='3' class='c'>{html.escape(hunk.header)}</td></tr>")
        for line in hunk.lines:
            if len(rows) >= limit:
                return rows
            sign = line.kind if line.kind in "+-" else ""
            tint = f" style='{_TINT[sign]}'" if sign else ""
            mark = f"<span style='color:{_SIGN_COLOR[sign]}'>{sign}</span>" if sign else " "
            shown = html.escape(show_invisible(line.text))
            text = shown if line.kind != "\\" else "\\ " + shown
            numbers = ""
            if not change.fragments:
                old = "" if line.old is None else line.old
                new = "" if line.new is None else line.new
                numbers = f"<td class='n'>{old}</td><td class='n'>{new}</td>"
            rows.append(f"<tr class='{_ROW_CLASS[line.kind]}'{tint}>{numbers}<td class='c'>{mark} {text}</td></tr>")
    return rows


def _summary(change: Change) -> str:
    return (
        f"<span style='color:{_SIGN_COLOR['+']}'>+{change.added}</span> "
        f"<span style='color:{_SIGN_COLOR['-']}'>-{change.removed}</span>"
    )


def diff_html(change: Change, *, collapse_after: int = COLLAPSE_AFTER, limit: int = MAX_LINES) -> str:
    """The change as HTML: path, kind, notes, then the diff (at most ``limit`` lines), folded after
    ``collapse_after`` lines."""
    head = (
        f"<div><code>{html.escape(show_invisible(change.path))}</code> · {html.escape(change.kind)}"
        + (f" · {_summary(change)}" if change.hunks and not change.fragments else "")
        + "</div>"
    )
    notes = [*change.notes]
    if has_invisible(change.path) or any(has_invisible(line.text) for hunk in change.hunks for line in hunk.lines):
        notes.insert(0, "this change " + WARNING)
    shown = "".join(f"<div class='claude-diff-note'>⚠ {html.escape(note)}</div>" for note in notes)
    return _STYLE + head + shown + _body(change, collapse_after, limit)


def diff_rows(change: Change) -> int:
    """How many rows the whole diff has (hunk headers included): more than MAX_LINES is cut."""
    return sum(len(h.lines) + (not change.fragments) for h in change.hunks)


def _body(change: Change, collapse_after: int, limit: int) -> str:
    rows = _rows(change, limit)
    if not rows:
        return ""
    biggest = max(max(h.old_start + h.old_count, h.new_start + h.new_count) for h in change.hunks)
    width = len(str(biggest))
    numbered = not change.fragments
    total = diff_rows(change)
    tail = (
        f"<div class='claude-diff-note'>… {total - len(rows)} more lines not shown</div>" if total > len(rows) else ""
    )
    if len(rows) <= collapse_after:
        return _table(rows, width, numbered) + tail
    return (
        _table(rows[:collapse_after], width, numbered)
        + f"<details class='claude-diff-more'><summary>Show {len(rows) - collapse_after} more lines</summary>"
        + _table(rows[collapse_after:], width, numbered)
        + tail
        + "</details>"
    )


def card_html(change: Change) -> str:
    """For a tool card: ``+N -M`` as a summary that opens onto the whole diff."""
    return (
        f"<details class='claude-diff-card'><summary>{_summary(change)}</summary>"
        f"{diff_html(change, collapse_after=MAX_LINES)}</details>"
    )
