"""Whose conversation is it: the notebook's, not its path's.

A kernel learns two things about its notebook: the path of its file (jupyter_server's
``JPY_SESSION_NAME``) and the ids of the cells it is asked to run (``cellId`` in each
execute_request). Neither alone says which notebook it is: a new ``Untitled.ipynb`` can take the
name of a deleted one, a notebook can be renamed, and after a restart the first cell run may be a
new one, in a notebook never saved. The rule, applied to the conversation saved under the path:

1. It is the same notebook when the cell being run is one that ran in the conversation, or when
   the notebook file holds such a cell (saved since), or when the file is untouched since the last
   turn (same device, inode and ctime: not saved since, so not replaced either).
2. Otherwise, at the first cell, it is another notebook: the saved conversation is set aside
   (still resumable by its id, ``%history`` names it) and a fresh one starts, cost and budget
   included.
3. With no conversation under the path, a conversation saved under another path is adopted when
   its notebook file is this one moved (the same inode, and holding its cells or not modified
   since) and no file at the old path is still that notebook: a rename keeps the conversation, a copy starts
   its own.
4. Without a notebook file to look at (a gateway's ``CLAUDE_KERNEL_NOTEBOOK`` name, a remote
   kernel, a path not created yet), the name alone identifies the notebook, as before.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .notebook_state import NotebookState

__all__ = ["NotebookFile", "find_moved", "moved_here", "same_notebook", "stamp_of"]

#: A notebook bigger than this is not parsed for its cell ids (its stamp still counts).
_MAX_PARSE = 64 * 1024 * 1024


@dataclass(frozen=True)
class NotebookFile:
    """The notebook file as found on disk: its stamp and the ids of the cells it holds."""

    path: str
    stamp: tuple[int, int, int, int]
    cell_ids: frozenset[str]

    @classmethod
    def read(cls, path: str | None) -> NotebookFile | None:
        """The file at ``path``; None when there is none (or it cannot be read as a file)."""
        stamp = stamp_of(path)
        if path is None or stamp is None:
            return None
        ids: frozenset[str] = frozenset()
        with contextlib.suppress(OSError, ValueError, RecursionError):
            if os.path.getsize(path) <= _MAX_PARSE:
                with open(path, encoding="utf-8") as source:
                    content = json.load(source)
                cells = content.get("cells") if isinstance(content, dict) else None
                if isinstance(cells, list):
                    ids = frozenset(c["id"] for c in cells if isinstance(c, dict) and isinstance(c.get("id"), str))
        return cls(path, stamp, ids)

    def holds(self, state: NotebookState) -> bool:
        """Whether this file is the notebook of ``state`` (rule 1, without the cell being run)."""
        return bool(self.cell_ids & state.known_cells) or state.file_stamp == self.stamp

    def moved_from(self, state: NotebookState) -> bool:
        """Whether this file is the notebook of ``state`` moved here (rule 3: a rename moves the ctime)."""
        stamp = state.file_stamp
        if stamp is None or stamp[:2] != self.stamp[:2]:
            return False
        return bool(self.cell_ids & state.known_cells) or stamp[3] == self.stamp[3]


def stamp_of(path: str | None) -> tuple[int, int, int, int] | None:
    """(device, inode, ctime, mtime; in ns) of a regular file; None if there is none.

    jupyter_server saves a notebook in place (its "atomic" writing copies the old file aside and
    rewrites this one), so the inode stays with the notebook across saves and renames; the ctime
    moves with every save and rename, the mtime with every save only. A new file gets new times
    even where the file system hands it a freed inode number.
    """
    if not path:
        return None
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return None
    if not os.path.isfile(path):
        return None
    return (found.st_dev, found.st_ino, found.st_ctime_ns, found.st_mtime_ns)


def same_notebook(state: NotebookState, notebook: NotebookFile | None, cell_id: str | None) -> bool | None:
    """Whether the conversation ``state`` belongs to this notebook; None: undecided until a cell runs."""
    if not state.session_id or notebook is None or state.file_stamp is None:
        return True  # nothing to protect, or nothing to compare: the name decides (rule 4)
    if (cell_id and cell_id in state.known_cells) or notebook.holds(state):
        return True
    return None if cell_id is None else False


def moved_here(state: NotebookState, notebook: NotebookFile) -> bool:
    """Whether ``state``, saved under another path, is this notebook's moved there (rule 3)."""
    if not notebook.moved_from(state):
        return False
    old = stamp_of(state.notebook)
    return old is None or old[:2] != notebook.stamp[:2]


def find_moved(folder: Path, notebook: NotebookFile) -> list[Path]:
    """State files in ``folder`` that may be ``notebook``'s under an old name (a cheap text match first)."""
    needle = f'"ino": {notebook.stamp[1]},'
    found = []
    for candidate in sorted(folder.glob("*.jsonl")):
        if ".damaged-" in candidate.name or ".set-aside-" in candidate.name:
            continue
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if needle in candidate.read_text(encoding="utf-8"):
                found.append(candidate)
    return found
