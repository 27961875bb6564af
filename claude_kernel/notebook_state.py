"""Which conversation belongs to which notebook, and which turn each of its cells sent.

One small file per notebook under Jupyter's data directory
(``<jupyter_data_dir>/claude_kernel/notebooks/<name>-<hash>.jsonl``), so that a restarted kernel
continues the notebook's conversation and a re-run cell can rewind it.

The file is a log, one JSON object per line, each an operation on the state (``"op"`` names it):
``notebook`` (the first line: the notebook's path and the format), ``session``, ``cell`` (a cell's
turn joins the chain), ``keep`` (the chain is cut to its first N turns, by a rewind or ``%new``),
``branch``, ``cost``, ``budget``, ``undone``, ``reset``, and for the notebook's identity ``file``
(the notebook file's inode and ctime) and ``ran`` (cell ids that ran in it; see
``notebook_identity``). Saving after a cell appends the few
lines that cell changed, so the cost of saving does not grow with the notebook (rewriting the whole
state after each cell made a notebook's life quadratic). Loading replays the log and, when it has
grown well past the state it describes, rewrites it compacted (one line per turn and branch). A
person can still read it: ``jq`` or any editor shows one event per line.

Nothing in the file is trusted: every line is checked (types and ranges) as it is replayed. A file
that fails (not UTF-8, not JSON, too deep, wrong types, absurd numbers, a torn line) is moved aside
whole and the notebook starts a fresh conversation; :class:`StateFileDamaged` says where it went.
The file is read and written as UTF-8 whatever the locale. Appends and compactions hold ``flock``
on a lock file, and a compaction replaces the file atomically, so two kernels never tear it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir

__all__ = [
    "KEPT_BRANCHES",
    "Branch",
    "CellTurn",
    "NotebookState",
    "StateFileDamaged",
    "StateStore",
    "notebook_name",
]

FORMAT = 2
#: How many earlier branches a notebook keeps (the oldest are forgotten first; ``%history`` says so).
KEPT_BRANCHES = 20
#: Bounds that no real state reaches; anything past them is damage, not data.
_MAX_USD = 1e9
_MAX_TEXT = 100_000
_MAX_FILES = 10_000


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
    #: The working directory the turn ran in: its file checkpoints are relative to it.
    cwd: str = ""
    #: What each changed file held at the end of the turn (sha256 hex; None: the file was absent),
    #: so that an undo can tell a file edited by hand since from one only this turn touched.
    file_hashes: dict[str, str | None] = field(default_factory=dict)
    #: The changed files the turn created: undoing it deletes them.
    files_created: list[str] = field(default_factory=list)


@dataclass
class Branch:
    """A conversation left behind by a rewind or ``%new``; still resumable by its id."""

    session_id: str
    turns: int
    reason: str
    #: False for the turns a rewind cut in place: listed, but no longer reachable by ``%resume``.
    resumable: bool = True


class _Invalid(ValueError):
    """A line of the state file that is not a valid operation."""


def _text(raw: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    value = raw.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise _Invalid(f"{key!r} must be a string, not {type(value).__name__}")
    return value


def _usd(raw: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    value = raw.get(key)
    if value is None and optional:
        return None
    # bool is an int in Python, and no amount of money.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"{key!r} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or not 0 <= value <= _MAX_USD:
        raise _Invalid(f"{key!r} is out of range ({value})")
    return float(value)


def _whole(raw: dict[str, Any], key: str) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise _Invalid(f"{key!r} must be a whole number, not {value!r}")
    return value


def _paths(raw: dict[str, Any], key: str) -> list[str]:
    files = raw.get(key, [])
    if not isinstance(files, list) or len(files) > _MAX_FILES or not all(isinstance(f, str) for f in files):
        raise _Invalid(f"{key!r} must be a list of paths")
    return list(files)


def _cell(raw: dict[str, Any]) -> CellTurn:
    hashes = raw.get("file_hashes", {})
    if not isinstance(hashes, dict) or len(hashes) > _MAX_FILES:
        raise _Invalid("'file_hashes' must be an object")
    for path, digest in hashes.items():
        if len(path) > _MAX_TEXT:
            raise _Invalid("'file_hashes' has an overlong path")
        if digest is not None and not (isinstance(digest, str) and len(digest) <= 128):
            raise _Invalid("'file_hashes' values must be hashes or null")
    undone, compacted = raw.get("files_undone", False), raw.get("compacted", False)
    if not isinstance(undone, bool) or not isinstance(compacted, bool):
        raise _Invalid("'files_undone' and 'compacted' must be true or false")
    return CellTurn(
        cell_id=_text(raw, "cell_id"),
        prompt_uuid=_text(raw, "prompt_uuid"),
        last_uuid=_text(raw, "last_uuid", optional=True),
        first_line=_text(raw, "first_line") if "first_line" in raw else "",
        cost_usd=_usd(raw, "cost_usd") if "cost_usd" in raw else 0.0,
        files_changed=_paths(raw, "files_changed"),
        files_undone=undone,
        compacted=compacted,
        cwd=_text(raw, "cwd") if "cwd" in raw else "",
        file_hashes=dict(hashes),
        files_created=_paths(raw, "files_created"),
    )


@dataclass
class NotebookState:
    """The notebook's conversation, changed only through its methods.

    Each change is applied through :meth:`apply`, the same code that replays the file, and kept in
    a journal until the store appends it: what is saved is exactly what was done.
    """

    notebook: str
    session_id: str | None = None
    cells: list[CellTurn] = field(default_factory=list)
    branches: list[Branch] = field(default_factory=list)
    cost_usd: float = 0.0
    #: The spending cap set with ``%budget`` (None: no cap); it holds across kernel restarts.
    budget_usd: float | None = None
    #: Cells that ran before a ``/clear``: out of the conversation, still listed by ``%history``.
    cleared: list[CellTurn] = field(default_factory=list)
    #: Every cell id that ever sent a turn here (rewinds and ``%new`` included): the notebook's cells.
    known_cells: set[str] = field(default_factory=set)
    #: The notebook file as last seen after a turn: (device, inode, ctime, mtime; in ns). See notebook_identity.
    file_stamp: tuple[int, int, int, int] | None = None
    #: What kernels that found the notebook's conversation owned by another spent on their own
    #: branches, by session id: the notebook's budget counts them too.
    guest_costs: dict[str, float] = field(default_factory=dict)
    _journal: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    def index_of(self, cell_id: str) -> int | None:
        for index, turn in enumerate(self.cells):
            if turn.cell_id == cell_id:
                return index
        return None

    # -- changes ---------------------------------------------------------------------------------

    def set_session(self, session_id: str | None) -> None:
        if session_id != self.session_id:
            self._do({"op": "session", "session_id": session_id})

    def set_cost(self, cost_usd: float) -> None:
        if cost_usd != self.cost_usd:
            self._do({"op": "cost", "cost_usd": cost_usd})

    def set_guest_cost(self, session_id: str, cost_usd: float) -> None:
        if self.guest_costs.get(session_id) != cost_usd:
            self._do({"op": "guest_cost", "session_id": session_id, "cost_usd": cost_usd})

    def set_budget(self, budget_usd: float | None) -> None:
        if budget_usd != self.budget_usd:
            self._do({"op": "budget", "budget_usd": budget_usd})

    def append_cell(self, turn: CellTurn) -> None:
        self._do({"op": "cell", **asdict(turn)})

    def keep_cells(self, count: int) -> None:
        if count != len(self.cells):
            self._do({"op": "keep", "cells": count})

    def add_branch(self, branch: Branch) -> None:
        self._do({"op": "branch", **asdict(branch)})

    def mark_undone(self, prompt_uuid: str) -> None:
        self._do({"op": "undone", "prompt_uuid": prompt_uuid})

    def mark_compacted(self) -> None:
        """The conversation was compacted: none of its cells can be rewound to any more."""
        if any(not turn.compacted for turn in self.cells):
            self._do({"op": "compacted"})

    def clear_cells(self) -> None:
        """``/clear``: the conversation's cells leave it; they stay listed as cleared."""
        if self.cells:
            self._do({"op": "clear"})

    def forget_cleared(self, cell_id: str | None = None) -> None:
        """A cleared cell ran again (as a new message), or (None) the conversation they were cleared
        from was left: no longer listed as cleared."""
        if any(cell_id is None or turn.cell_id == cell_id for turn in self.cleared):
            self._do({"op": "forget_cleared", "cell_id": cell_id})

    def set_file_stamp(self, stamp: tuple[int, int, int, int] | None) -> None:
        if stamp is not None and stamp != self.file_stamp:
            self._do(_file_op(stamp))

    def reset(self) -> None:
        """Another conversation takes over: forget the one left, but not its branches.

        The branches stay listed (and resumable) in ``%history``: the conversation just left was
        recorded as one a moment before (``%resume``), and dropping them would lose the way back.
        """
        self._do({"op": "reset"})

    def _do(self, op: dict[str, Any]) -> None:
        self.apply(op)
        self._journal.append(op)

    def take_journal(self) -> list[dict[str, Any]]:
        journal, self._journal = self._journal, []
        return journal

    def apply(self, op: dict[str, Any]) -> None:
        """Apply one operation, checking it first; :class:`_Invalid` (a ValueError) if it is not valid."""
        kind = op.get("op")
        if kind == "session":
            self.session_id = _text(op, "session_id", optional=True)
        elif kind == "cost":
            self.cost_usd = _usd(op, "cost_usd")
        elif kind == "budget":
            budget = _usd(op, "budget_usd", optional=True)
            self.budget_usd = budget if budget else None
        elif kind == "cell":
            turn = _cell(op)
            self.cells.append(turn)
            if turn.cell_id:
                self.known_cells.add(turn.cell_id)
        elif kind == "guest_cost":
            self.guest_costs[_text(op, "session_id")] = _usd(op, "cost_usd")
        elif kind == "ran":
            ids = _paths(op, "cell_ids")
            self.known_cells.update(ids)
        elif kind == "file":
            self.file_stamp = (_whole(op, "dev"), _whole(op, "ino"), _whole(op, "ctime_ns"), _whole(op, "mtime_ns"))
        elif kind == "keep":
            count = op.get("cells")
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= len(self.cells):
                raise _Invalid(f"'keep' needs 0 to {len(self.cells)} cells, not {count!r}")
            del self.cells[count:]
        elif kind == "branch":
            turns = op.get("turns")
            if isinstance(turns, bool) or not isinstance(turns, int) or not 0 <= turns <= 10**9:
                raise _Invalid(f"a branch's 'turns' must be a count, not {turns!r}")
            resumable = op.get("resumable", True)
            if not isinstance(resumable, bool):
                raise _Invalid("a branch's 'resumable' must be true or false")
            self.branches.append(Branch(_text(op, "session_id"), turns, _text(op, "reason"), resumable))
            del self.branches[:-KEPT_BRANCHES]
        elif kind == "undone":
            uuid = _text(op, "prompt_uuid")
            for turn in self.cells:
                if turn.prompt_uuid == uuid:
                    turn.files_undone = True
        elif kind == "compacted":
            for turn in self.cells:
                turn.compacted = True
        elif kind == "clear":
            self.cleared += self.cells
            self.cells = []
        elif kind == "forget_cleared":
            cell_id = _text(op, "cell_id", optional=True)
            self.cleared = [turn for turn in self.cleared if cell_id is not None and turn.cell_id != cell_id]
        elif kind == "reset":
            self.session_id, self.cells, self.cost_usd = None, [], 0.0
            self.cleared = []
        elif kind == "notebook":
            if op.get("format") != FORMAT:
                raise _Invalid(f"format {op.get('format')!r}, this version reads {FORMAT}")
            _text(op, "notebook")
        else:
            raise _Invalid(f"unknown operation {kind!r}")

    def compacted(self) -> list[dict[str, Any]]:
        """The shortest log that rebuilds this state (what a compaction writes)."""
        ops: list[dict[str, Any]] = [{"op": "notebook", "format": FORMAT, "notebook": self.notebook}]
        ops += [{"op": "branch", **asdict(branch)} for branch in self.branches]
        if self.cleared:
            ops += [{"op": "cell", **asdict(turn)} for turn in self.cleared]
            ops.append({"op": "clear"})
        ops += [{"op": "cell", **asdict(turn)} for turn in self.cells]
        earlier = sorted(self.known_cells - {turn.cell_id for turn in self.cells})
        if earlier:
            ops.append({"op": "ran", "cell_ids": earlier})
        if self.file_stamp is not None:
            ops.append(_file_op(self.file_stamp))
        ops += [{"op": "guest_cost", "session_id": k, "cost_usd": v} for k, v in self.guest_costs.items()]
        ops.append({"op": "session", "session_id": self.session_id})
        ops.append({"op": "cost", "cost_usd": self.cost_usd})
        ops.append({"op": "budget", "budget_usd": self.budget_usd})
        return ops


def _file_op(stamp: tuple[int, int, int, int]) -> dict[str, Any]:
    dev, ino, ctime_ns, mtime_ns = stamp
    return {"op": "file", "dev": dev, "ino": ino, "ctime_ns": ctime_ns, "mtime_ns": mtime_ns}


def _line(op: dict[str, Any]) -> str:
    return json.dumps(op, ensure_ascii=False, allow_nan=False) + "\n"


#: The owner files this process holds (``StateStore.claim``): the lock is the process's, not a store's.
_CLAIMED: dict[Path, int] = {}


class StateStore:
    """Reads and appends to one notebook's state file."""

    def __init__(self, notebook: str, *, root: Path | None = None) -> None:
        self.notebook = notebook
        folder = root or Path(jupyter_data_dir()) / "claude_kernel" / "notebooks"
        # A readable prefix, and a hash so that any path maps to one safe file name.
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(notebook).name)[:60]
        digest = hashlib.sha256(notebook.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        self.path = folder / f"{stem}-{digest}.jsonl"
        #: Lines in the file as this store last saw it (replayed or appended): when to compact.
        self._lines = 0
        #: How far this store has read or written the file (bytes, and the file's inode): the
        #: lines past it are another kernel's.
        self._seen: tuple[int, int] = (0, 0)
        #: What every kernel on this notebook spent and the budget, as the file says (see spent_elsewhere).
        self.ledger = NotebookState(notebook)
        self._owner: int | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def load(self) -> NotebookState:
        """The notebook's state; a damaged file is moved aside and :class:`StateFileDamaged` raised."""
        with self._locked():
            return self._load_locked()

    def _load_locked(self) -> NotebookState:
        state = NotebookState(self.notebook)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self._lines = 0
            return self._migrate_locked()
        lines = 0
        try:
            text = data.decode("utf-8")
            if text and not text.endswith("\n"):
                raise _Invalid("the last line is cut short")
            for number, line in enumerate(text.splitlines(), 1):
                try:
                    op = json.loads(line)
                    if not isinstance(op, dict):
                        raise _Invalid(f"a {type(op).__name__} where an operation belongs")
                    if (number == 1) != (op.get("op") == "notebook"):
                        raise _Invalid("the first line, and only it, names the notebook")
                    state.apply(op)
                except (ValueError, RecursionError) as exc:
                    raise _Invalid(f"line {number}: {exc}") from exc
                lines = number
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise self._damaged(self.path, exc) from None
        self._lines = lines
        self._seen = (len(data), self.path.stat().st_ino)
        self.ledger = NotebookState(self.notebook)
        self.ledger.cost_usd, self.ledger.guest_costs = state.cost_usd, dict(state.guest_costs)
        self.ledger.budget_usd = state.budget_usd
        # Past twice what the state needs (and some slack), rewrite it: replay stays proportional. Not
        # while another kernel owns the notebook: it reads on from where it was in this file.
        if lines > 2 * (len(state.cells) + len(state.branches)) + 32 and self._owner is not None:
            self._rewrite(state)
        return state

    def claim(self) -> bool:
        """Become the notebook's one writer for as long as this process lives; False if another kernel is.

        An ``flock`` on the owner file: the system drops it when the process ends, however it ends.
        """
        owner_file = self.path.with_suffix(".owner")
        if self._owner is None and owner_file in _CLAIMED:  # this process owns it already (a reloaded magic)
            self._owner = _CLAIMED[owner_file]
        if self._owner is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(owner_file, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._owner = _CLAIMED[owner_file] = fd
        return True

    def _read_others(self) -> None:
        """Take in the spending other kernels appended since this store last read or wrote (lock held)."""
        offset, inode = self._seen
        try:
            with open(self.path, "rb") as source:
                found = os.fstat(source.fileno())
                if found.st_ino != inode or found.st_size < offset:
                    offset = 0  # replaced (compacted by a restarted owner): its totals are absolute
                source.seek(offset)
                data = source.read()
        except FileNotFoundError:
            return
        for line in data.decode("utf-8", "replace").splitlines():
            with contextlib.suppress(ValueError, RecursionError, AttributeError):
                op = json.loads(line)
                if op.get("op") in ("cost", "guest_cost", "budget"):
                    self.ledger.apply(op)
        self._seen = (offset + len(data), found.st_ino)

    def spent_elsewhere(self, own: str | None) -> float:
        """What the other kernels on this notebook spent: the owner's conversation unless ``own`` is
        None (the owner asks), and every guest branch but ``own``."""
        try:
            with self._locked():
                self._read_others()
        except OSError:
            pass  # then what was known last
        ledger = self.ledger
        guests = sum(cost for session, cost in ledger.guest_costs.items() if session != own)
        return guests + (ledger.cost_usd if own is not None else 0.0)

    def _migrate_locked(self) -> NotebookState:
        """The state of the first format (one indented JSON object, ``.json``), rewritten as a log.

        Checked the same way, through the same operations; a damaged one is moved aside.
        """
        old = self.path.with_suffix(".json")
        state = NotebookState(self.notebook)
        try:
            raw = json.loads(old.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            return state
        except (ValueError, RecursionError) as exc:
            raise self._damaged(old, exc) from None
        try:
            if not isinstance(raw, dict):
                raise _Invalid(f"a {type(raw).__name__} where the notebook's state belongs")
            for branch in raw.get("branches", []):
                state.apply({"op": "branch", **branch} if isinstance(branch, dict) else {"op": "branch"})
            for cell in raw.get("cells", []):
                state.apply({"op": "cell", **cell} if isinstance(cell, dict) else {"op": "cell"})
            state.apply({"op": "session", "session_id": raw.get("session_id")})
            state.apply({"op": "cost", "cost_usd": raw.get("cost_usd", 0.0)})
            state.apply({"op": "budget", "budget_usd": raw.get("budget_usd")})
        except (ValueError, TypeError, RecursionError) as exc:
            raise self._damaged(old, exc) from None
        self._rewrite(state)
        old.replace(old.with_suffix(".json.migrated"))
        return state

    def _damaged(self, path: Path, cause: Exception) -> StateFileDamaged:
        """Move a damaged file aside (never over an earlier one); the exception that says where."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = path.with_name(f"{self.path.stem}.damaged-{stamp}{path.suffix}")
        for again in range(1, 100):
            if not aside.exists():
                break
            aside = path.with_name(f"{self.path.stem}.damaged-{stamp}-{again}{path.suffix}")
        path.replace(aside)
        self._lines = 0
        return StateFileDamaged(path, aside, cause)

    @classmethod
    def of_file(cls, path: Path) -> StateStore | None:
        """The store whose file is ``path`` (its first line names the notebook); None if it names none."""
        try:
            with open(path, encoding="utf-8") as source:
                header = json.loads(source.readline())
            store = cls(header["notebook"], root=path.parent)
        except (OSError, ValueError, RecursionError, TypeError, KeyError):
            return None
        return store if store.path == path else None

    def set_aside(self) -> Path:
        """Move the file away (it is another notebook's); a later load starts empty.

        The ledger goes with it: what that notebook's kernels spent, and its budget, are not this
        notebook's, and counting them would refuse this one's turns for another's spending.
        """
        aside = self.path.with_name(f"{self.path.stem}.set-aside-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
        with self._locked():
            self.path.replace(aside)
            self._lines = 0
            self._seen = (0, 0)
            self.ledger = NotebookState(self.notebook)
        return aside

    def adopt(self, state: NotebookState, previous: StateStore) -> None:
        """Take over ``state``, loaded from ``previous`` (the notebook's file under its old name)."""
        state.notebook = self.notebook
        with self._locked():
            self._rewrite(state)
        with contextlib.suppress(FileNotFoundError):
            previous.path.unlink()

    def save(self, state: NotebookState) -> None:
        """Append what changed since the last save (nothing: no write)."""
        journal = state.take_journal()
        if not journal:
            return
        self.append(journal)

    def append(self, ops: list[dict[str, Any]]) -> None:
        """Append operations to the file (creating it with its header), taking in others' first."""
        with self._locked():
            self._read_others()
            header = [] if self.path.exists() else [{"op": "notebook", "format": FORMAT, "notebook": self.notebook}]
            payload = "".join(_line(op) for op in [*header, *ops]).encode("utf-8")
            # One write on an O_APPEND descriptor: the lines land whole, after any other writer's.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, payload)
                found = os.fstat(fd)
            finally:
                os.close(fd)
            self._lines += len(header) + len(ops)
            self._seen = (found.st_size, found.st_ino)
            for op in ops:
                if op["op"] in ("cost", "guest_cost", "budget"):
                    self.ledger.apply(op)

    def _rewrite(self, state: NotebookState) -> None:
        ops = state.compacted()
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-", suffix=".jsonl")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write("".join(_line(op) for op in ops))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        self._lines = len(ops)
        found = self.path.stat()
        self._seen = (found.st_size, found.st_ino)


class StateFileDamaged(Exception):
    """The notebook's state file was not valid; it was moved aside (its new path is in the message)."""

    def __init__(self, path: Path, aside: Path, cause: Exception) -> None:
        self.aside = aside
        super().__init__(f"the notebook's saved conversation ({path}) was damaged: {cause}; it was kept as {aside}")
