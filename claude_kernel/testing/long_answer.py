"""Long model answers of any size, the same every time, for tests and benchmarks.

:func:`long_answer` cycles through what a model writes: headings, paragraphs with inline markup,
flat and nested lists, tables, fenced code with blank lines inside, quotes. Every construct is
closed, so the answer can be cut into sections anywhere between them. The others are one block
each, the whole answer long: a code block, a list, a table.
"""

from __future__ import annotations

__all__ = ["long_answer", "long_code_block", "long_list", "long_table"]

_SECTIONS = [
    "## Step {n}: reading the data\n\nThe loader reads **{n} files** with `pandas.read_csv`, then checks the "
    "*schema* against [the spec](https://example.org/spec/{n}). Missing columns are reported, not guessed.",
    "- parse the header\n- check the types:\n  - `int64` for counts\n  - `float64` for prices ($5 and $6)\n"
    "- drop empty rows\n\n1. first pass\n2. second pass",
    "| column | type | nulls |\n|:--|:--:|--:|\n| id | int64 | 0 |\n| price | float64 | {n} |\n| name | str | 2 |",
    "```python\ndef clean(frame):\n    frame = frame.dropna(how='all')\n\n    # step {n}\n    return frame\n```",
    "> Note: the cleaning is idempotent; running it twice changes nothing.\n>\n> - safe to re-run\n\n"
    "A closing paragraph for step {n}, long enough to wrap on a narrow screen, with _emphasis_ and ~~a "
    "strikethrough~~ and a final sentence.",
]


def long_answer(size: int) -> str:
    """An answer of at least ``size`` characters (a little more: it ends after a whole section)."""
    sections: list[str] = []
    total = 0
    n = 0
    while total < size:
        section = _SECTIONS[n % len(_SECTIONS)].format(n=n)
        sections.append(section)
        total += len(section) + 2
        n += 1
    return "\n\n".join(sections)


def long_code_block(size: int) -> str:
    """A script of at least ``size`` characters in one fenced code block."""
    lines = [f"    total_{n} = sum(row[{n}] for row in table)  # column {n}" for n in range(size // 50 + 1)]
    return "The script:\n\n```python\ndef main(table):\n" + "\n".join(lines) + "\n```\n\nRun it with `python main.py`."


def long_list(size: int) -> str:
    """Findings as one numbered list of at least ``size`` characters."""
    items = [
        f"{n + 1}. row {n}: the value **{n * 7}** is above the threshold by {n % 13}%" for n in range(size // 55 + 1)
    ]
    return "Findings:\n\n" + "\n".join(items) + "\n\nThat is all of them."


def long_table(size: int) -> str:
    """One Markdown table of at least ``size`` characters."""
    rows = [f"| {n} | item {n} | {n * 3.5:.1f} | {'yes' if n % 2 else 'no'} |" for n in range(size // 33 + 1)]
    return "The data:\n\n| id | name | value | flag |\n|---|---|--:|---|\n" + "\n".join(rows) + "\n\nDone."
