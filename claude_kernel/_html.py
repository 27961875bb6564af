"""Untrusted text -> HTML that cannot run script or reach the network, and text with no terminal escapes.

Safe by construction rather than by predicting a renderer: the kernel itself parses model Markdown
with a CommonMark parser (markdown-it-py, raw HTML off) and cleans the result with an allowlist
sanitizer (nh3, i.e. ammonia). Each untrusted fragment is rendered and sanitized on its own, and
the sanitizer re-serializes a parsed tree, so a fragment is always balanced HTML: nothing in one
can close a tag of the surrounding markup or pair with another fragment (a fence opened in one
text block can never close after a tool card).

Links are checked twice, by the parser (a link whose decoded target does not start with
``http://``, ``https://`` or ``mailto:`` is no link, just text) and by the sanitizer (same
schemes, relative URLs dropped). Images become links: a remote ``<img>`` would load as soon as it
is shown, a channel out for whatever the model read.

:func:`strip_controls` removes terminal control sequences and control characters; every text
form (HTML, ``text/plain``, the terminal printout) goes through it.
"""

from __future__ import annotations

import functools
import html
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

__all__ = [
    "BlockCut",
    "MarkdownBlocks",
    "block_cut",
    "block_preview",
    "escape",
    "inline_html",
    "markdown_blocks",
    "markdown_html",
    "safe_url",
    "strip_controls",
]

_CONTROLS = re.compile(
    # CSI (cursor moves, colours, erasing), 7-bit or 8-bit introducer.
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    # OSC (window title, clipboard), DCS, SOS, PM, APC: the payload up to its terminator; an
    # unterminated one ends at the line's end, so it can hide no more than that line.
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    # Any other escape (reset, save cursor, character sets).
    r"|\x1b[ -/]*[0-~]"
    # Whatever control character is left, C0 (but tab and newline), DEL and C1.
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)
_LINE_BREAK = re.compile(r"\r\n?")
_SAFE_URL = re.compile(r"(?i)(?:https?://|mailto:)")


def strip_controls(text: str) -> str:
    """``text`` without terminal escape sequences or control characters (tab and newline stay).

    A carriage return becomes a newline: alone it would let a line overwrite the one before it.
    """
    return _CONTROLS.sub("", _LINE_BREAK.sub("\n", text))


def escape(text: str) -> str:
    """Untrusted plain text as HTML text."""
    return html.escape(strip_controls(text), quote=True)


def safe_url(url: str) -> bool:
    """Whether a link target is one we let the page follow: http, https or mailto.

    ``url`` is the decoded, normalized target (backslash escapes and entities resolved, as the
    browser would see it), and it must *start* with an allowed scheme: no leading space, control
    character or relative form (``//host``, a path) can turn it into something else.
    """
    return _SAFE_URL.match(url) is not None


class _Markdown(MarkdownIt):
    """CommonMark with tables and strikethrough, no raw HTML, links limited to :func:`safe_url`."""

    def __init__(self) -> None:
        super().__init__("commonmark", {"html": False})
        self.enable(["table", "strikethrough"])
        self.add_render_rule("image", _image_as_link)

    def validateLink(self, url: str) -> bool:  # markdown-it's hook, called for every link and image
        return safe_url(url)


def _image_as_link(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """``![alt](src)`` as a link to the image: shown, a remote image would be fetched unasked."""
    token = tokens[idx]
    alt = renderer.renderInlineAsText(token.children or [], options, env) or "image"
    src = str(token.attrGet("src") or "")
    return f'<a href="{html.escape(src)}">[image: {html.escape(alt)}]</a>'


_MARKDOWN = _Markdown()
_ALIGNED = {f"text-align:{side}" for side in ("left", "center", "right")}
_CLEANER = nh3.Cleaner(
    tags={
        *(f"h{level}" for level in range(1, 7)),
        *("p", "br", "hr", "blockquote", "pre", "code", "em", "strong", "s", "a"),
        *("ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td"),
    },
    attributes={"a": {"href", "title"}, "ol": {"start"}},
    # Table alignment is the only style markdown-it writes; exactly those values pass.
    tag_attribute_values={"th": {"style": _ALIGNED}, "td": {"style": _ALIGNED}},
    set_tag_attribute_values={"a": {"target": "_blank"}},
    link_rel="noopener noreferrer",
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
    strip_comments=True,
)


def _code_style(*, top: bool = False, bottom: bool = False) -> str:
    """A code block's style: a theme background, like a Markdown cell's code.

    A piece of a code block cut in two (see :func:`block_cut`) that joins the piece above (``top``)
    or below (``bottom``) has no padding or margin there, so the two read as one block.
    """
    padding = f"{'0' if top else '0.5em'} 0.75em {'0' if bottom else '0.5em'}"
    margins = ("; margin-top: 0" if top else "") + ("; margin-bottom: 0" if bottom else "")
    return f"background: var(--jp-cell-editor-background); padding: {padding}{margins}"


# The sanitizer lets no attribute onto <pre>, so every "<pre>" in its output is a tag of a code
# block (as text it would be "&lt;pre&gt;"): these get their style after cleaning.
_PRE = f'<pre style="{_code_style()}">'


def _clean(rendered: str) -> str:
    return str(_CLEANER.clean(rendered)).replace("<pre>", _PRE)


def markdown_html(
    text: str,
    *,
    references: dict[str, Any] | None = None,
    seam_above: bool = False,
    seam_below: bool = False,
    list_start: int | None = None,
) -> str:
    """Untrusted Markdown (an answer, thinking) as sanitized, self-contained HTML.

    ``references`` are link reference definitions (``[label]: url``) from the other pieces of a
    text rendered piece by piece (see :func:`markdown_blocks`); the only thing one block of
    Markdown takes from another. The dictionary is not changed.

    For a text cut inside a block (see :func:`block_cut`): with ``seam_above`` its first block
    (a code block or list) goes on from the piece above, with ``seam_below`` its last block goes
    on below; there they have no margin (nor a code block padding), so the pieces read as one
    block. ``list_start`` numbers an ordered list that goes on from above.
    """
    env = {"references": dict(references)} if references else {}
    rendered = _clean(_MARKDOWN.render(strip_controls(text), env))
    if seam_above or seam_below or list_start is not None:
        rendered = _join_seams(rendered, above=seam_above, below=seam_below, list_start=list_start)
    return rendered


# The opening and closing tags of the blocks a cut can fall inside. The sanitizer lets no attribute
# onto <pre> or <ul> and only start onto <ol>, so these are our tags; as text they would be escaped.
_BLOCK_TAG = re.compile(r"<(/?)(pre|ul|ol)((?: [^>]*)?)>")


def _join_seams(html: str, *, above: bool, below: bool, list_start: int | None) -> str:
    """``html`` with its first block open at the top and its last block open at the bottom."""
    tags = list(_BLOCK_TAG.finditer(html))
    edits: dict[int, tuple[re.Match[str], bool, bool]] = {}
    if tags and tags[0].start() == 0 and not tags[0].group(1) and (above or list_start is not None):
        edits[0] = (tags[0], above, False)
    if below and tags and tags[-1].end() == len(html.rstrip()):
        opened: list[re.Match[str]] = []
        last = None
        for tag in tags:
            if not tag.group(1):
                opened.append(tag)
            elif opened:
                last = opened.pop()
        if last is not None and not opened:
            top = edits[last.start()][1] if last.start() in edits else False
            edits[last.start()] = (last, top, True)
    for position in sorted(edits, reverse=True):
        tag, top, bottom = edits[position]
        html = html[: tag.start()] + _seamed_tag(tag, top=top, bottom=bottom, list_start=list_start) + html[tag.end() :]
    return html


def _seamed_tag(tag: re.Match[str], *, top: bool, bottom: bool, list_start: int | None) -> str:
    name, attributes = tag.group(2), tag.group(3)
    if name == "pre":
        return f'<pre style="{_code_style(top=top, bottom=bottom)}">'
    if name == "ol" and list_start is not None and tag.start() == 0:
        attributes = f' start="{list_start}"'
    margins = "; ".join(["margin-top: 0"] * top + ["margin-bottom: 0"] * bottom)
    return f'<{name}{attributes} style="{margins}">' if margins else f"<{name}{attributes}>"


@dataclass(frozen=True)
class MarkdownBlocks:
    """Where a growing Markdown text may be cut so that its pieces, rendered one by one, render as the whole.

    ``cuts`` are offsets into the text, in order; ``references`` the link reference definitions
    as ``(offset of their line, label, definition)``, to pass to the pieces after (or before) them.
    """

    cuts: tuple[int, ...]
    references: tuple[tuple[int, str, dict[str, Any]], ...]


# Blocks that notebook stylesheets give no top margin: a piece that starts with one sits under the
# piece before it at that piece's bottom margin, the gap the two blocks have inside one output
# (where their margins collapse). Before a list or a heading, two outputs would show a wider gap;
# after a heading, a narrower one (JupyterLab halves the margins of a first or last heading).
_CUT_BEFORE = frozenset({"paragraph_open", "table_open", "fence", "code_block"})


def markdown_blocks(text: str, *, lead: str = "") -> MarkdownBlocks:
    """Safe cuts of ``text``, Markdown that may still grow at its end (a streaming answer).

    A cut is the start of a top-level paragraph, table or code block (never inside a list, a
    quote, a table or a fence) that has a blank line before it and whose first line is complete: whatever is
    appended later cannot join that line to the block before it (a lone ``2`` could still become
    ``2.``, the next item of a list above), and a block closed by a blank line stays closed. A
    block never contains a cut, and the last block is never cut off, as it may still grow.
    Terminal controls are removed as for rendering, which keeps the lines where they are; with a
    lone carriage return (which :func:`strip_controls` makes a line break) there are no cuts.

    ``lead`` is Markdown that ``text`` goes on from (the opening line of a code block cut in two,
    see :func:`block_cut`): parsed with it, never cut inside it.
    """
    parsed = _parse_lines(lead + text)
    if parsed is None:
        return MarkdownBlocks((), ())
    tokens, env, lines, starts = parsed
    # Top-level blocks, as (type, first line).
    tops = [(t.type, t.map[0]) for t in _top_level(tokens) if t.map is not None]
    cuts = tuple(
        starts[line] - len(lead)
        for (above, _), (kind, line) in itertools.pairwise(tops)
        if kind in _CUT_BEFORE
        and above != "heading_open"  # a heading ending its output gets a smaller bottom margin
        and line + 1 < len(lines)  # the block's first line ends with a newline
        and not lines[line - 1].strip(" \t")  # and the line before it is blank
        and starts[line] > len(lead)
    )
    references = tuple(
        (starts[definition["map"][0]] - len(lead), label, definition)
        for label, definition in env.get("references", {}).items()
    )
    return MarkdownBlocks(cuts, references)


@dataclass(frozen=True)
class BlockCut:
    """A cut inside the block still growing at the end of a text: a long code block or list.

    ``offset`` (a line start in the text) is where the rest begins. The part before it renders
    with ``close`` after it (a code block's closing fence); the rest with ``lead`` before it (the
    code block's opening line) and, in an ordered list, numbered from ``list_start``. Each part
    is a block of its own, joined at the seam by :func:`markdown_html`.
    """

    offset: int
    lead: str = ""
    close: str = ""
    list_start: int | None = None


def block_cut(text: str, *, lead: str = "", list_start: int | None = None) -> BlockCut | None:
    """Where the fenced code block or tight list still open at the end of ``text`` may be cut.

    In a code block, the cut is the start of its last line that has ended, so the line being
    written (and the closing fence, once it comes) stays with the rest. In a list whose items
    have no blank line between them, it is the start of its last top-level item. At least a line
    of code, or an item, stays above the cut. ``lead`` as for :func:`markdown_blocks`;
    ``list_start`` is the number of the first item of a list that goes on from a cut above.
    """
    parsed = _parse_lines(lead + text)
    if parsed is None:
        return None
    tokens, _, lines, starts = parsed
    top = _top_level(tokens)
    if not top:
        return None
    block = top[-1]
    assert block.map is not None
    if block.type == "fence":
        opening, after = block.map
        if after - 1 > opening and _closes_fence(lines[after - 1], block.markup):
            return None  # closed: nothing more goes into it
        cut = len(lines) - 2  # the last line that has ended (the one after it is being written, or empty)
        if cut <= opening + 1 or starts[cut] <= len(lead):
            return None
        opening_line = (lead + text)[starts[opening] : starts[opening + 1]]
        return BlockCut(starts[cut] - len(lead), lead=opening_line, close=block.markup + "\n")
    if block.type in ("bullet_list_open", "ordered_list_open"):
        if any(t.type == "paragraph_open" and not t.hidden for t in tokens[tokens.index(block) :]):
            return None  # a loose list: its items are paragraphs, and the whole list must say so
        items = _item_lines(tokens, block)
        if len(items) < 2 or starts[items[-1]] <= len(lead):
            return None
        number = None
        if block.type == "ordered_list_open":
            first = list_start if list_start is not None else int(block.attrGet("start") or 1)
            number = first + len(items) - 1
        return BlockCut(starts[items[-1]] - len(lead), list_start=number)
    return None


_ITEM = re.compile(r" {0,3}([-+*]|\d{1,9}[.)])( +|$)")
_BLOCK_START = re.compile(r" {0,3}([#>`~<]|[-+*]( |$)|\d{1,9}[.)]( |$))")
_THEMATIC_BREAK = re.compile(r" {0,3}([-*_])( *\1){2,} *$")


@dataclass
class _Growing:
    """The last full look at a live text that is one table, quote or loose list, and still grows.

    While the lines that come after ``text`` plainly continue that block, nothing of it changes
    but its tail: no cut appears, and the preview is its last lines or items. So redraws take the
    new lines only, instead of parsing the whole block each time (which made a block's cost grow
    with its square). Any line that might end the block, or start another, sends the next look
    back to the full parse.
    """

    text: str  # complete lines only
    kind: str  # "table_open", "blockquote_open" or a list's
    marker: str  # a list's bullet character or ordered delimiter
    indent: int  # the content indent of the list's current item
    items: list[int]  # where each top-level item of the list starts

    def continues(self, line: str, at: int) -> bool:
        """Whether ``line`` (starting at ``at``) surely goes on with the block; a list's new item is noted."""
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if self.kind == "table_open":
            return "|" in line and indent <= 3 and (stripped.startswith("|") or not _BLOCK_START.match(line))
        if self.kind == "blockquote_open":
            return indent <= 3 and stripped.startswith(">")
        if not stripped or indent >= self.indent:
            return True  # a blank line (the list is loose already), or a line inside the current item
        item = _ITEM.match(line)
        if item is None or item.group(1)[-1] != self.marker or _THEMATIC_BREAK.match(line):
            return False
        self.items.append(at)
        self.indent = _content_indent(item)
        return True


def _content_indent(item: re.Match[str]) -> int:
    """Where an item's content starts (CommonMark: 1 to 4 spaces after its marker)."""
    return item.end(1) + max(1, min(len(item.group(2)), 4))


_growing: _Growing | None = None


def _still_growing(text: str) -> _Growing | None:
    """The block ``text`` is, if the last full look at it still holds with the lines added since."""
    global _growing
    known = _growing
    if known is None or len(text) < len(known.text) or not text.startswith(known.text):
        return None
    added = text[len(known.text) :]
    if strip_controls(added).count("\n") != added.count("\n"):
        _growing = None
        return None
    at = len(known.text)
    lines = added.split("\n")
    complete, partial = lines[:-1], lines[-1]
    for line in complete:
        if not known.continues(line, at):
            _growing = None  # the full parse decides, and looks again
            return None
        at += len(line) + 1
    known.text = text[:at]
    # The line being written must not start another block either; it is checked, not kept.
    if partial:
        probe = _Growing(known.text, known.kind, known.marker, known.indent, [])
        if not probe.continues(partial, at):
            return None
    return known


def growing_block(text: str) -> bool:
    """Whether ``text`` is one table, quote or loose list still growing by lines that continue it.

    Then :func:`markdown_blocks` finds no cut in it and :func:`block_cut` none inside it: a caller
    may skip both, whose parse of the whole block at each redraw is what this saves.
    """
    return _still_growing(text) is not None


def _preview_of(known: _Growing, text: str, budget: int) -> tuple[int, str]:
    """:func:`block_preview` of a block starting at 0, from the lines at its end only."""
    if known.kind not in ("table_open", "blockquote_open"):
        fitting = [start for start in known.items if len(text) - start <= budget] or known.items[-1:]
        return 0, strip_controls(text[fitting[0] :])
    table = known.kind == "table_open"
    body = text.find("\n", text.find("\n") + 1) + 1 if table else 0
    head = strip_controls(text[: body - 1]).split("\n") if table else []
    tail: list[str] = []
    size = sum(len(line) + 1 for line in head)
    end = len(text)
    while True:
        begin = max(text.rfind("\n", body, end) + 1, body)
        line = strip_controls(text[begin:end])
        if tail and size + len(line) > budget:
            break
        tail.insert(0, line)
        size += len(line) + 1
        if begin <= body:
            break
        end = begin - 1
    if not table:
        while len(tail) > 1 and not tail[0].lstrip().startswith(">"):
            tail.pop(0)  # a lazy line first would render as a paragraph, outside the quote
    return 0, "\n".join(head + tail)


def block_preview(text: str, *, budget: int) -> tuple[int, str] | None:
    """If ``text`` ends with a table, quote or list still growing: where it starts, and what stands for it.

    None of these can always be cut without a seam (a table's columns would no longer line up, a
    loose list's last item would lose its spacing), so while one streams that :func:`block_cut`
    cannot cut it is shown by its tail: a table by its header and last rows, a quote by its last
    lines, a list by its last items, about ``budget`` characters of Markdown; the whole block is
    drawn once it is complete. None when the text ends with any other block.
    """
    global _growing
    known = _still_growing(text)
    if known is not None:
        return _preview_of(known, text, budget)
    # The line being written is left out of the parse: a lone "12" there is a paragraph now and
    # the list's next item in a moment, and the preview should not flicker to the whole block.
    complete = text[: text.rfind("\n") + 1] if "\n" in text else text
    parsed = _parse_lines(complete)
    if parsed is None:
        return None
    tokens, _, _, starts = parsed
    lines = strip_controls(text).split("\n")
    top = _top_level(tokens)
    if not top or top[-1].type not in ("table_open", "blockquote_open", "bullet_list_open", "ordered_list_open"):
        return None
    block = top[-1]
    assert block.map is not None
    first = block.map[0]
    _growing = _remember(tokens, block, top, complete, starts)
    if block.type in ("bullet_list_open", "ordered_list_open"):
        # From the earliest item whose lines to the end fit, or the last item.
        items = _item_lines(tokens, block)
        fitting = [line for line in items if len(text) - starts[line] <= budget] or items[-1:]
        return starts[first], "\n".join(lines[fitting[0] :])
    table = block.type == "table_open"
    head = lines[first : first + 2] if table else []
    tail: list[str] = []
    size = sum(len(line) + 1 for line in head)
    for line in reversed(lines[first + len(head) :]):
        if tail and size + len(line) > budget:
            break
        tail.insert(0, line)
        size += len(line) + 1
    if not table:
        while len(tail) > 1 and not tail[0].lstrip().startswith(">"):
            tail.pop(0)  # a lazy line first would render as a paragraph, outside the quote
    return starts[first], "\n".join(head + tail)


def _remember(tokens: list[Token], block: Token, top: list[Token], complete: str, starts: list[int]) -> _Growing | None:
    """What a later look needs to take only the new lines: for a text that is this one block alone."""
    if len(top) != 1 or block.map is None or block.map[0] != 0 or not complete.endswith("\n") or "\r" in complete:
        return None
    if block.type in ("table_open", "blockquote_open"):
        return _Growing(complete, block.type, "", 0, [])
    if any(t.type == "paragraph_open" and not t.hidden for t in tokens[tokens.index(block) :]):
        items = [starts[line] for line in _item_lines(tokens, block)]
        last = _ITEM.match(complete[items[-1] :]) if items else None
        if last is None:
            return None
        return _Growing(complete, block.type, last.group(1)[-1], _content_indent(last), items)
    return None  # a tight list is cut, not previewed


def _closes_fence(line: str, markup: str) -> bool:
    """Whether ``line`` closes a code block opened with ``markup`` (CommonMark's closing fence)."""
    mark = line.strip(" ")
    return len(line) - len(line.lstrip(" ")) < 4 and len(mark) >= len(markup) and mark == markup[0] * len(mark)


def _top_level(tokens: list[Token]) -> list[Token]:
    """The tokens that open (or are) a top-level block, in order."""
    return [t for t in tokens if t.level == 0 and t.nesting >= 0 and t.map is not None]


def _item_lines(tokens: list[Token], block: Token) -> list[int]:
    """The first line of each top-level item of the list ``block`` opens (the last list of ``tokens``)."""
    return [t.map[0] for t in tokens[tokens.index(block) :] if t.type == "list_item_open" and t.level == 1 and t.map]


# The live text of a streaming answer is parsed for its cuts (markdown_blocks) and then, unchanged,
# for a cut inside its last block (block_cut): the second parse comes from here. Callers only read.
@functools.lru_cache(maxsize=2)
def _parse_lines(text: str) -> tuple[list[Token], dict[str, Any], list[str], list[int]] | None:
    """``text``'s block tokens and link definitions, its lines, and where each line starts in it.

    None when cleaning the text would move its lines (a lone carriage return): then its line
    numbers say nothing about where to cut it.
    """
    clean = strip_controls(text)
    if clean.count("\n") != text.count("\n"):
        return None
    tokens: list[Token] = []
    env: dict[str, Any] = {}
    _MARKDOWN.block.parse(clean, _MARKDOWN, env, tokens)
    starts = [0]
    for raw_line in text.split("\n")[:-1]:
        starts.append(starts[-1] + len(raw_line) + 1)
    return tokens, env, clean.split("\n"), starts


def inline_html(text: str) -> str:
    """Untrusted one-line Markdown (a note, a denial message) as sanitized inline HTML."""
    return _clean(_MARKDOWN.renderInline(strip_controls(text)))
