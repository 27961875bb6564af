"""Freezing: finished output moves into displays that are never sent again; the turn reads as if drawn at once.

Each answer of a corpus (lists, nested lists, tables, fences, headings, quotes, link references...)
streams in uneven deltas into a view that freezes as eagerly as it can, redrawn after every delta,
and into one that never freezes. At the end both must show the same thing: the same HTML once our
wrappers are taken off, the same visible text, the same plain text. On the way, a frozen display
never changes, no display but the last has the status line, and no construct is cut in two.
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from claude_kernel._html import block_cut, block_preview, markdown_blocks, markdown_html
from claude_kernel.render import TurnView
from claude_kernel.session import Event
from claude_kernel.session._events import parse_message
from claude_kernel.turn import TurnDisplay, UpdatableDisplays

from .kernel_client import visible_text
from .test_render import assistant, audit, message_end, retry, stream, tool_result
from .test_turn import Clock

CORPUS = {
    "paragraphs": "First paragraph, with *emphasis*.\n\nSecond one\nwraps a line.\n\n\n\nThird, after blank lines.",
    "lists": (
        "Intro:\n- one\n- two\n\n- three, loose now\n\nAfter.\n\n1. a\n2. b\n\n2\n\n3. c\n\n"
        "* star\n+ plus\n\n10) ten\n11) eleven\n\nend"
    ),
    "nested lists": (
        "- top\n  - nested\n    - deeper\n\n  still in top\n\n  ```\n  code in an item\n\n  more\n  ```\n\n"
        "- next top\n\n    indented continuation\n\nDone.\n\nReally done."
    ),
    "tables": (
        "| a | b |\n|:--|--:|\n| 1 | 2 |\nnot a row?\n\n| x |\n|---|\n| y |\n\n"
        "| lone pipe line |\n\nText after the tables."
    ),
    "fences": (
        "```python\ndef f():\n\n    return 1\n```\n\nBetween.\n\n~~~\nunclosed ~~~ inside\n\n```\n~~~\n\n"
        "````\n```\nnested\n```\n````\n\n```\nnever closed\n\nstill code"
    ),
    "headings": (
        "# One\ntext right under\n\nSetext\n======\n\n## Two ##\n\nSub\n---\n\n### Three\n\n---\n\n***\nend\n\n"
        "A paragraph.\n\nAnother."
    ),
    "quotes": (
        "> quoted\nlazy line\n\n> second quote\n>\n> - list in quote\n\n"
        "after\n\n    indented code\n\n    more code\n\nfin"
    ),
    "references": (
        "See [the docs][docs] and [later].\n\n[docs]: https://docs.example/a\n\nMore about [docs].\n\n"
        "Filler paragraph.\n\n[later]: https://later.example/b 'Title'\n\nAnd [later] again, [unknown] not."
    ),
    "mixed": (
        "Here is the plan:\n\n1. Read the file\n2. Change it:\n\n   ```diff\n   - old\n   + new\n   ```\n\n"
        "3. Run the tests\n\n| step | time |\n|---|---|\n| read | 1 s |\n\n> Note: `$HOME` stays text.\n\n"
        "\u00a0\n\nA line with a nbsp line above.\n\nLast words"
    ),
    "escapes": "red \x1b[31mtext\x1b[0m\n\n\x1b]0;title\x07\n\nafter an escape line\n\ncrlf\r\nline\n\nend",
}


def deltas(text: str, seed: int) -> list[str]:
    """``text`` in uneven pieces (1 to 12 characters), the same for a seed."""
    rng = random.Random(seed)
    pieces, at = [], 0
    while at < len(text):
        step = rng.randint(1, 12)
        pieces.append(text[at : at + step])
        at += step
    return pieces


def fragments(bundles: list[dict[str, str]]) -> str:
    """The model's HTML with our wrappers taken off: what the answer renders to.

    A code block or list cut in two is joined again (its pieces meet at a seam: the one below
    starts without a top margin), and their styles are left out (a seam changes them).
    """
    html = "".join(
        inner for b in bundles for inner in re.findall(r'<div class="claude-text">(.*?)</div>', b["text/html"], re.S)
    )
    html = re.sub(r'</code></pre>\s*<pre style="[^"]*margin-top: 0[^"]*"><code>', "", html)
    html = re.sub(r'</(ul|ol)>\s*<\1[^>]* style="margin-top: 0[^"]*">\n', "", html)
    return re.sub(r'<(pre|ul|ol)((?: start="\d+")?) style="[^"]*">', r"<\1\2>", html)


def plain(bundles: list[dict[str, str]]) -> str:
    """The plain text, blank lines left out (a cut code block's two pieces have one between them)."""
    text = "\n".join(b["text/plain"] for b in bundles if b["text/plain"])
    return "\n".join(line for line in text.split("\n") if line.strip())


def words(bundles: list[dict[str, str]]) -> list[str]:
    return visible_text("\n".join(b["text/html"] for b in bundles)).split()


def play(events: list[Event], view: TurnView) -> list[list[dict[str, str]]]:
    """Feed ``events`` one by one, redrawing after each; every redraw, in order."""
    redraws = []
    for event in events:
        view.apply(event)
        redraws.append(view.bundles())
    view.finish("done")
    redraws.append(view.bundles())
    return redraws


def check_redraws(redraws: list[list[dict[str, str]]], *, may_redraw: bool = False) -> None:
    """Every display is safe HTML, frozen ones stay as they were (a definition found below a
    reference may redraw one), and only the last display has the status line."""
    frozen: dict[int, dict[str, str]] = {}
    for bundles in redraws:
        for index, bundle in enumerate(bundles):
            audit(bundle["text/html"], fragment=False)
            if index in frozen:
                assert bundle is frozen[index] or may_redraw, f"frozen display {index} changed"
                frozen[index] = bundle
            elif index < len(bundles) - 1:
                frozen[index] = bundle
                assert "●" not in bundle["text/plain"]
        assert "●" in bundles[-1]["text/plain"] or "done" in bundles[-1]["text/plain"]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", CORPUS)
def test_a_frozen_answer_shows_what_the_whole_answer_shows(name: str, seed: int) -> None:
    text = CORPUS[name]
    events = [*stream("m1", *deltas(text, seed)), message_end("m1"), assistant("m1", {"type": "text", "text": text})]
    redraws = play(events, TurnView(freeze_at=1))
    whole = play(events, TurnView(freeze_at=None))[-1]
    final = redraws[-1]
    check_redraws(redraws, may_redraw=name == "references")
    assert fragments(final) == fragments(whole)
    assert words(final) == words(whole)
    assert plain(final) == plain(whole)
    if name != "escapes":  # a lone carriage return: the lines are not known before rendering, no cuts
        assert len(final) > 2, "the answer was never split"


def test_cuts_are_block_starts_after_a_blank_line_with_a_complete_first_line() -> None:
    text = "para\n\n- a\n- b\n\ntext\nright after\n\n```\nx\n\ny\n```\n\n2"
    cuts = markdown_blocks(text).cuts
    # Not before a list (or a heading, a quote, a rule): those have a top margin that would not collapse.
    assert [text[cut:].split("\n", 1)[0] for cut in cuts] == ["text", "```"]
    assert markdown_blocks("# Title\n\npara\n\nnext\n").cuts == (15,)  # not after a heading either
    assert markdown_blocks("1. a\n\n2").cuts == ()  # "2" may yet become "2.", the list's next item
    assert markdown_blocks("a\r\rb\n\nc\n").cuts == ()


def test_a_code_block_still_open_is_cut_before_its_last_ended_line() -> None:
    text = "Intro\n\n~~~~ python\na = 1\n\nb = 2\nc = 3\nd ="
    cut = block_cut(text)
    assert (
        cut is not None and text[cut.offset :] == "c = 3\nd =" and (cut.lead, cut.close) == ("~~~~ python\n", "~~~~\n")
    )
    assert block_cut(text + "\n") is not None and (text + "\n")[block_cut(text + "\n").offset :] == "d =\n"  # type: ignore[union-attr]
    # The rest goes on from the opening line, and is cut again as it grows.
    again = block_cut("c = 3\nd = 4\ne", lead=cut.lead)
    assert again is not None and again.offset == len("c = 3\n")
    assert block_cut("```\nx = 1\n```\n") is None  # closed: nothing more goes into it
    assert block_cut("```\nx = 1\n``") is None  # the closing fence being written stays live with one line
    assert block_cut("```\nonly one line\nsecond") is None  # nothing above the cut but the opening line
    assert block_cut("- item\n\n  ```\n  a\n  b\n  c") is None  # inside a list: not a top-level block
    assert block_cut("just text\nmore text\n") is None


LONG_BLOCKS = {
    "code": "The script:\n\n```python\ndef main():\n"
    + "\n".join(f"    value_{n} = compute(frame, column='c{n}')" + ("\n" if n % 7 == 0 else "") for n in range(300))
    + "\n```\n\nDone.",
    "tilde fence": "~~~~ text\n"
    + "\n".join(("```not a close" if n % 9 == 0 else f"- line {n} [x](https://e.x) *a*") for n in range(300))
    + "\n~~~~\nafter",
    "indented fence": "Intro\n\n  ```\n" + "\n".join(f"  line {n}" for n in range(400)),
    "bullets": "Findings:\n\n"
    + "\n".join(f"- row {n}: **{n * 7}**" + ("\n  - detail `x`" if n % 5 == 0 else "") for n in range(300))
    + "\n\nDone.",
    "numbered": "\n".join(f"{n + 1}. check column `c{n}`" for n in range(300)) + "\n\nAfter.",
    "all ones": "Steps:\n\n" + "\n".join(f"1. step {n}" for n in range(400)),
    "from five": "\n".join(f"{n + 5}) item {n}" for n in range(300)) + "\n\n```\ncode after\n```",
}


@pytest.mark.parametrize("seed", [1])
@pytest.mark.parametrize("name", LONG_BLOCKS)
def test_a_long_block_cut_as_it_streams_reads_as_the_whole_block(name: str, seed: int) -> None:
    text = LONG_BLOCKS[name]
    events = [*stream("m1", *deltas(text, seed)), message_end("m1")]
    redraws = play(events, TurnView(freeze_at=2000))
    unfrozen = TurnView(freeze_at=None)
    for event in events:
        unfrozen.apply(event)
    unfrozen.finish("done")
    whole = unfrozen.bundles()
    check_redraws(redraws)
    final = redraws[-1]
    assert len(final) > 2, "the block was never cut"
    assert fragments(final) == fragments(whole) and words(final) == words(whole)
    # Each cut block's pieces join their neighbours: no margin (nor a code block's padding) at a seam.
    middle = final[len(final) // 2]["text/html"]
    assert "margin-top: 0; margin-bottom: 0" in middle or "margin-top: 0" in middle, middle[:300]


def test_a_long_table_quote_or_list_still_growing_is_previewed_by_its_tail() -> None:
    rows = "\n".join(f"| {n} | item {n} |" for n in range(100))
    table = f"Intro\n\n| id | name |\n|---|--:|\n{rows}\n| 100 | it"
    found = block_preview(table, budget=200)
    assert found is not None and found[0] == len("Intro\n\n")
    shown = found[1]
    assert shown.startswith("| id | name |\n|---|--:|\n") and shown.endswith("| 100 | it")
    assert len(shown) < 250 and "| 5 |" not in shown
    quote = "- a list\n- before\n\n" + "\n".join(f"> log line {n}" for n in range(100)) + "\nlazy"
    found = block_preview(quote, budget=100)
    assert found is not None and found[1].startswith("> log line") and found[1].endswith("lazy")
    loose = "".join(f"{n + 1}. **Step {n}**\n\n    Why it matters, at some length.\n\n" for n in range(40))
    found = block_preview("Plan:\n\n" + loose + "41. **Step 40**\n\n    Why", budget=200)
    assert found is not None and found[0] == len("Plan:\n\n") and found[1].startswith("38. **Step 37**")
    assert block_preview("A paragraph\n" * 100, budget=100) is None
    assert block_preview(table + "\n\nAfter the table.\n", budget=100) is None


@pytest.mark.parametrize("kind", ["table", "quote", "loose list"])
def test_a_long_block_that_cannot_be_cut_costs_about_its_size_and_is_whole_at_the_end(kind: str) -> None:
    if kind == "table":
        body = "| id | name | value |\n|---|---|--:|\n" + "\n".join(
            f"| {n} | item {n} | {n * 3.5} |" for n in range(3000)
        )
    elif kind == "loose list":
        body = "".join(f"{n + 1}. **Step {n}**\n\n      Why it matters, at some length.\n\n" for n in range(1500))
    else:
        body = "\n".join(f"> build log line {n}: compiled module_{n}.py" for n in range(2000))
    text = f"Here it is:\n\n{body}\n\nThat is all."
    clock = Clock()
    sink = _CountingDisplays()
    display = TurnDisplay(TurnView(clock=clock, freeze_at=2000), sink, interval=0.25, clock=clock)
    for number, piece in enumerate(text[i : i + 40] for i in range(0, len(text), 40)):
        clock.now = number * 0.005
        display.view.apply(stream("m1", piece)[0])
        display.changed()
        display.flush()
    assert sink.largest < 10_000, sink.largest  # no redraw sent the whole block while it grew
    display.view.apply(message_end("m1"))
    display.view.finish("done")
    display.finish({})
    final = list(sink.latest.values())
    whole = TurnView(freeze_at=None)
    for event in [*stream("m1", text), message_end("m1")]:
        whole.apply(event)
    whole.finish("done")
    assert fragments(final) == fragments(whole.bundles()) and plain(final) == plain(whole.bundles())
    assert sink.sent <= 3 * sum(len(value) for bundle in final for value in bundle.values())


def block_end(message_id: str, index: int) -> Event:
    event = {"type": "content_block_stop", "index": index}
    return parse_message({"type": "stream_event", "api_message_id": message_id, "event": event})


def test_a_block_that_ended_freezes_before_its_message_ends() -> None:
    view = TurnView(freeze_at=1)
    thinking = "Let me think about the data.\n\n" * 100
    answer = "".join(f"Paragraph {n} of the answer.\n\n" for n in range(50))
    for event in [*stream("m1", *deltas(thinking, 1), kind="thinking"), block_end("m1", 0)]:
        view.apply(event)
    for event in stream("m1", *deltas(answer, 2), index=1):
        view.apply(event)
        view.bundles()
    # The message has not ended, yet the thinking and the answer's finished paragraphs are frozen.
    bundles = view.bundles()
    assert len(bundles) > 10 and "Thinking</summary>" in bundles[0]["text/html"]
    assert bundles[0]["text/html"].count("Let me think") == 100


def test_thinking_still_streaming_shows_its_length_and_last_lines() -> None:
    view = TurnView(freeze_at=1)
    thinking = "".join(f"step {n}: <check> the & column\n" for n in range(200))
    for event in stream("m1", *deltas(thinking, 3), kind="thinking"):
        view.apply(event)
    (live,) = view.bundles()
    html = live["text/html"]
    assert f"Thinking… ({len(thinking):,} characters)" in html and "step 199: &lt;check&gt; the &amp; column" in html
    assert "step 100:" not in html and len(html) < 2000
    view.apply(block_end("m1", 0))
    assert "step 0: " in view.bundles()[0]["text/html"]  # complete: drawn whole, folded


def test_tool_cards_freeze_once_they_have_their_result() -> None:
    view = TurnView(freeze_at=1)
    events: list[Event] = []
    for n in range(5):
        call = {"type": "tool_use", "id": f"t{n}", "name": "Bash", "input": {"command": f"echo {n}"}}
        events += [assistant(f"m{n}", call), message_end(f"m{n}"), tool_result(f"t{n}", f"out {n}")]
    redraws = play(events, view)
    check_redraws(redraws)
    final = redraws[-1]
    assert len(final) == 6 and all(f"echo {n}" in final[n]["text/plain"] for n in range(5))


def test_nothing_freezes_past_a_tool_still_running() -> None:
    view = TurnView(freeze_at=1)
    first = {"type": "tool_use", "id": "a", "name": "Bash", "input": {"command": "slow"}}
    second = {"type": "tool_use", "id": "b", "name": "Bash", "input": {"command": "fast"}}
    for event in [assistant("m1", first, second), message_end("m1"), tool_result("b", "fast done")]:
        view.apply(event)
    (live,) = view.bundles()
    assert "slow" in live["text/plain"] and "fast done" in live["text/plain"]
    view.apply(tool_result("a", "slow done"))
    assert len(view.bundles()) == 2


def test_a_late_note_redraws_the_frozen_card() -> None:
    view = TurnView(freeze_at=1)
    call = {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}
    for event in [assistant("m1", call), message_end("m1"), tool_result("t1", "files")]:
        view.apply(event)
    card = view.bundles()[0]
    view.set_tool_note("t1", "allowed")
    assert view.bundles()[0] is not card and "allowed" in view.bundles()[0]["text/plain"]


def test_a_retried_stream_empties_the_displays_it_froze() -> None:
    view = TurnView(freeze_at=1)
    for event in stream("m1", *deltas("The first paragraph.\n\nThe second paragraph.\n\nThe third, cut ", 0)):
        view.apply(event)
        view.bundles()
    assert "The first paragraph." in view.bundles()[0]["text/plain"]  # frozen, from a stream that breaks
    for event in [retry(), *stream("m2", "The answer, in full."), message_end("m2")]:
        view.apply(event)
    view.finish("done")
    final = view.bundles()
    assert len(final) > 1 and "paragraph" not in plain(final)
    assert plain(final) == "The answer, in full.\ndone"


class _CountingDisplays(UpdatableDisplays):
    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.largest = 0
        self.latest: dict[str, dict[str, Any]] = {}
        self.images = 0

    def publish(
        self, bundle: dict[str, Any], display_id: str, *, new: bool, metadata: dict[str, Any] | None = None
    ) -> None:
        size = sum(len(value) for value in bundle.values())
        self.sent += size
        if display_id in self.latest:  # a redraw (the first sending of a frozen display is its final form)
            self.largest = max(self.largest, size)
        self.latest[display_id] = bundle

    def image(self, media_type: str, data: str) -> None:
        self.images += 1


@pytest.mark.parametrize("freeze_at", [1, 2000])
def test_a_long_answer_costs_a_few_times_its_size(freeze_at: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """29 KB of thinking, then 160 KB (a 40 KB code block last), in 40-character deltas, redrawn every 50:
    bytes sent and Markdown rendered stay linear."""
    rendered: list[int] = []

    def counting(text: str, **options: Any) -> str:
        rendered.append(len(text))
        return markdown_html(text, **options)

    monkeypatch.setattr("claude_kernel.render.markdown_html", counting)
    closed = "\n\n".join(CORPUS[name] for name in ("lists", "tables", "headings", "quotes", "mixed"))
    code = "```python\n" + "\n".join(f"result_{n} = transform(data, step={n})" for n in range(1000)) + "\n```"
    text = "\n\n".join([closed] * 40 + ["A paragraph of words. " * 5] * 400 + [code])
    clock = Clock()
    sink = _CountingDisplays()
    display = TurnDisplay(TurnView(clock=clock, freeze_at=freeze_at), sink, interval=0.25, clock=clock)
    thinking = "A line of thinking about the data, one of many.\n" * 600  # 29 KB, before the answer
    chunks = [(0, thinking[i : i + 40]) for i in range(0, len(thinking), 40)]
    chunks += [(1, text[i : i + 40]) for i in range(0, len(text), 40)]
    for number, (index, piece) in enumerate(chunks):
        clock.now = number * 0.005
        if index == 1 and chunks[number - 1][0] == 0:
            display.view.apply(block_end("m1", 0))
        display.view.apply(stream("m1", piece, index=index, kind="thinking" if index == 0 else "text")[0])
        display.changed()
        display.flush()
    display.view.apply(message_end("m1"))
    display.view.finish("done")
    display.finish({})
    final = sum(len(value) for bundle in sink.latest.values() for value in bundle.values())
    assert sink.sent <= 3 * final, (sink.sent, final)
    assert sum(rendered) <= 4 * len(text), (sum(rendered), len(text))
    assert plain([{"text/plain": text[:1000]}]).rsplit("\n", 1)[0] in plain(list(sink.latest.values()))
