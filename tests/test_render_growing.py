"""A long table, quote or loose list streaming is looked at by its new lines only, with the same result.

At every step of a stream, what the incremental look says (``growing_block``, and the preview
from ``block_preview``) must be what parsing the whole text says: no cut, no cut inside, the same
preview; and where the text stops being one such block, the incremental look must step aside.
"""

from __future__ import annotations

import random

import pytest

from claude_kernel import _html
from claude_kernel._html import block_cut, block_preview, growing_block, markdown_blocks

BUDGET = 300

TEXTS = {
    "table, then a paragraph": (
        "| a | b |\n|---|--:|\n"
        + "".join(f"| {n} | {n * n} |\n" for n in range(60))
        + "no pipe here\n\nAfter the table.\n"
    ),
    "table rows without outer pipes": "a | b\n--|--\n" + "".join(f"{n} | x\n" for n in range(60)) + "\n# Heading\n",
    "quote, then a lazy line": "".join(f"> quoted line {n}\n" for n in range(60)) + "lazy line\n\nafter\n",
    "loose list, then a break": "".join(f"- item {n}\n\n  more of {n}\n\n" for n in range(40)) + "- - -\n\ntext\n",
    "loose ordered list, another marker": "".join(f"{n}. item\n\n" for n in range(1, 40)) + "1) other list\n",
    "loose list with a nested one": "".join(f"* top {n}\n\n  - nested\n  - also\n\n" for n in range(30)) + "end\n",
}


def full(text: str) -> tuple[tuple[int, str] | None, bool]:
    _html._growing = None
    preview = block_preview(text, budget=BUDGET)
    plain = not markdown_blocks(text).cuts and block_cut(text) is None
    return preview, plain


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_the_incremental_look_agrees_with_the_whole_parse(text: str) -> None:
    chunks = random.Random(7)
    _html._growing = None
    fast_steps = 0
    at = 0
    while at < len(text):
        at = min(len(text), at + chunks.randint(1, 25))
        live = text[:at]
        fast = growing_block(live)
        preview = block_preview(live, budget=BUDGET)
        fast_steps += fast
        remembered = _html._growing
        expected_preview, plain = full(live)
        _html._growing = remembered
        assert preview == expected_preview, live[-80:]
        if fast:
            assert plain, live[-80:]
    assert fast_steps > 10  # the incremental look did the work for most of the stream
