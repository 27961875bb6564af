"""Which conversation belongs to which notebook, and which turn each of its cells sent.

One small JSON file per notebook under Jupyter's data directory
(``<jupyter_data_dir>/claude_kernel/notebooks/``), so that a restarted kernel continues the
notebook's conversation and a re-run cell can rewind it. The file is meant to be read by a person
too: indented JSON naming the notebook, its current session, the chain of cells (cell id, the uuid
of the user message it sent, the uuid of the last message of its turn, its cost, the files it
changed) and the earlier branches a rewind or ``%new`` left behind.

Writes are atomic (a temporary file renamed over the old one) and serialised with ``flock`` on a
lock file, so two kernels on the same notebook never leave a torn or mixed file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir

__all__ = ["Branch", "CellTurn", "NotebookState", "StateStore", "notebook_name"]


def notebook_name(environ: dict[str, str] | None = None) -> str | None:
    """The notebook a kernel serves: ``CLAUDE_KERNEL_NOTEBOOK``, else jupyter_server's ``JPY_SESSION_NAME``."""
    env = os.environ if environ is None else environ
    return env.get("CLAUDE_KERNEL_NOTEBOOK") or env.get("JPY_SESSION_NAME") or None


@dataclass
class CellTurn:
    """One cell's turn in the conversation."""

    cell_id: str
    prompt_uuid: str
    #: The uuid of the last stream-json message of the turn: a rewind to "after this turn" targets it.
    last_uuid: str | None
    first_line: str = ""
    cost_usd: float = 0.0
    files_changed: list[str] = field(default_factory=list)
    #: True once the cell's file changes were undone.
    files_undone: bool = False
    #: A later turn compacted the conversation: the CLI cannot rewind to this turn any more.
    compacted: bool = False


@dataclass
class Branch:
    """A conversation left behind by a rewind or ``%new``; still resumable by its id."""

    session_id: str
    turns: int
    reason: str
    #: False for the turns a rewind cut in place: listed, but no longer reachable by ``%resume``.
    resumable: bool = True


@dataclass
class NotebookState:
    notebook: str
    session_id: str | None = None
    cells: list[CellTurn] = field(default_factory=list)
    branches: list[Branch] = field(default_factory=list)
    cost_usd: float = 0.0
    #: The spending cap set with ``%budget`` (None: no cap); it holds across kernel restarts.
    budget_usd: float | None = None
    #: Cells that ran before a ``/clear``: out of the conversation, still listed by ``%history``.
    cleared: list[CellTurn] = field(default_factory=list)

    def index_of(self, cell_id: str) -> int | None:
        for index, turn in enumerate(self.cells):
            if turn.cell_id == cell_id:
                return index
        return None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> NotebookState:
        raw: dict[str, Any] = json.loads(text)
        return cls(
            notebook=str(raw.get("notebook", "")),
            session_id=raw.get("session_id"),
            cells=[CellTurn(**cell) for cell in raw.get("cells", [])],
            branches=[Branch(**branch) for branch in raw.get("branches", [])],
            cost_usd=float(raw.get("cost_usd", 0.0)),
            budget_usd=raw.get("budget_usd"),
            cleared=[CellTurn(**cell) for cell in raw.get("cleared", [])],
        )


class StateStore:
    """Reads and writes one notebook's state file."""

    def __init__(self, notebook: str, *, root: Path | None = None) -> None:
        self.notebook = notebook
        folder = root or Path(jupyter_data_dir()) / "claude_kernel" / "notebooks"
        # A readable prefix, and a hash so that any path maps to one safe file name.
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(notebook).name)[:60]
        digest = hashlib.sha256(notebook.encode()).hexdigest()[:12]
        self.path = folder / f"{stem}-{digest}.json"

    def load(self) -> NotebookState:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return NotebookState(self.notebook)
        try:
            return NotebookState.from_json(text)
        except (ValueError, TypeError) as exc:
            # A damaged file must not stop the kernel: keep it aside and start over.
            self.path.replace(self.path.with_suffix(".damaged.json"))
            raise StateFileDamaged(self.path, exc) from exc

    @contextlib.contextmanager
    def update(self) -> Iterator[NotebookState]:
        """Read, let the caller change, and write back, holding the lock throughout."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self.load()
            except StateFileDamaged:
                state = NotebookState(self.notebook)
            yield state
            self._write(state)

    def _write(self, state: NotebookState) -> None:
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(state.to_json())
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise


class StateFileDamaged(Exception):
    """The notebook's state file was not valid; it was moved aside (its path is in the message)."""

    def __init__(self, path: Path, cause: Exception) -> None:
        super().__init__(f"{path} was damaged ({cause}); it was kept as {path.with_suffix('.damaged.json')}")
