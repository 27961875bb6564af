"""What undoing a cell's file changes would do, said before it is done and checked after.

The CLI restores files from its checkpoints (``rewind_files``) without looking at them: a line
added by hand since the cell ran is lost, a file the cell created is deleted, and a restore run from
another working directory quietly does nothing (``skippedLinks``). So the kernel records what each
changed file held at the end of its turn (a hash), compares before restoring, asks for a second
confirmation when the restore would lose or delete something, and compares again afterwards to
report each file that was not restored.

The CLI's checkpoints restore to *before a message*: every file changed since then goes back,
including the changes of later cells. Those later cells are therefore part of the undo, named in
the confirmation and marked undone with it, so that a later undo of one of them never re-applies
what was undone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .notebook_state import CellTurn

__all__ = ["UndoPlan", "file_hash", "hashes", "plan_undo", "unrestored"]


def file_hash(path: str) -> str | None:
    """The sha256 of a file's bytes; None when there is no file (deleted, or never created)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as data:
            for chunk in iter(lambda: data.read(1 << 20), b""):
                digest.update(chunk)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        return "directory"
    return digest.hexdigest()


def hashes(paths: Iterable[str], cwd: str) -> dict[str, str | None]:
    """What each file holds now; relative paths are relative to the turn's working directory."""
    return {path: file_hash(os.path.join(cwd, path)) for path in paths}


@dataclass(frozen=True)
class UndoPlan:
    """What restoring to before ``turns[0]`` would do, from the records and the CLI's dry run."""

    #: The cell being undone, then the later cells whose changes the restore undoes too.
    turns: tuple[CellTurn, ...]
    #: Every file the restore touches: the cells' records and the dry run's ``filesChanged``.
    files: tuple[str, ...]
    #: Files that hold something else than the last of those cells left (edited by hand since).
    changed_since: tuple[str, ...]
    #: Files the first cell that touched them created: the restore deletes them.
    deleted: tuple[str, ...]
    #: Files the dry run names that no recorded cell changed.
    unrecorded: tuple[str, ...]

    def warning(self, name_cell: Callable[[CellTurn], str], show: Callable[[str], str]) -> str | None:
        """Why a second, explicit confirmation is needed; None when the undo loses nothing."""
        parts: list[str] = []
        later = self.turns[1:]
        if later:
            named = "; ".join(
                f"{name_cell(turn)} ({', '.join(show(path) for path in turn.files_changed)})" for turn in later
            )
            parts.append(f"the CLI restores to before this cell, so it also undoes what later cells changed: {named}")
        if self.changed_since:
            shown = ", ".join(show(path) for path in self.changed_since)
            parts.append(f"{shown} changed since the cell ran (by hand or another program): those edits would be lost")
        if self.deleted:
            parts.append(f"{', '.join(show(path) for path in self.deleted)} did not exist before: undo deletes it")
        if self.unrecorded:
            parts.append(f"it also restores {', '.join(show(path) for path in self.unrecorded)}")
        return "; ".join(parts) if parts else None


def plan_undo(turns: Sequence[CellTurn], preview: Mapping[str, Any], cwd: str) -> UndoPlan:
    """Compare the cells' records with the files now and with the CLI's dry run (``preview``)."""
    expected: dict[str, str | None] = {}
    first_touch: dict[str, CellTurn] = {}
    for turn in turns:
        for path in turn.files_changed:
            first_touch.setdefault(path, turn)
            if path in turn.file_hashes:
                expected[path] = turn.file_hashes[path]
    named = preview.get("filesChanged")
    dry_run = [path for path in named if isinstance(path, str)] if isinstance(named, list) else []
    recorded = set(first_touch)
    files = tuple(dict.fromkeys([*first_touch, *dry_run]))
    now = hashes(files, cwd)
    changed_since = tuple(path for path, digest in expected.items() if now[path] != digest)
    deleted = tuple(path for path, turn in first_touch.items() if path in turn.files_created and now[path] is not None)
    unrecorded = tuple(path for path in dry_run if path not in recorded)
    return UndoPlan(tuple(turns), files, changed_since, deleted, unrecorded)


def unrestored(plan: UndoPlan, before: Mapping[str, str | None], after: Mapping[str, str | None]) -> list[str]:
    """The files a restore left as they were (it answered, but did not change them)."""
    return [path for path in plan.files if before[path] == after[path] and before[path] is not None]
