"""Characters that change how text looks without showing themselves, made visible.

Bidirectional controls (U+202A to 202E, U+2066 to 2069) reorder what follows them, so a file named
``report\\u202egnp.sh`` reads as ``reporths.png``; zero-width characters and marks (U+200B to 200F) and
the byte-order mark (U+FEFF) hide inside names and commands. Wherever a person approves what runs
(commands, paths, diffs, saved records) they are written as ``⟨U+202E⟩`` and a warning says so.
"""

from __future__ import annotations

import re

__all__ = ["WARNING", "has_invisible", "show_invisible"]

_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]")

WARNING = "contains invisible or text-direction characters, shown here as ⟨U+…⟩: what you see is not what it reads"


def has_invisible(text: str) -> bool:
    return _INVISIBLE.search(text) is not None


def show_invisible(text: str) -> str:
    """``text`` with each such character replaced by its code point, as ``⟨U+202E⟩``."""
    return _INVISIBLE.sub(lambda found: f"⟨U+{ord(found.group()):04X}⟩", text)
