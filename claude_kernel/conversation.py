"""The state both hosts keep between cells: one Session, its options, the notebook's conversation.

The Claude kernel and the ``%%claude`` magic each own one :class:`Conversation`, so both hosts
continue, rewind and undo the same way. The line magics (``line_magics.py``) parse their arguments and
call the operations here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import slash
from ._gateway import default_cwd
from .attachments import Attachments
from .notebook_identity import NotebookFile, find_moved, moved_here, same_notebook, stamp_of
from .notebook_state import Branch, CellTurn, NotebookState, StateFileDamaged, StateStore
from .session import (
    BudgetExceededError,
    HostTool,
    ProcessDiedError,
    RewindError,
    Session,
    SessionError,
    SessionOptions,
)
from .trust import OPT_IN, SETTINGS_OFF, ProjectCommands, TrustStore, project_commands
from .turn import TurnOutcome, shown_path, usd
from .undo import hashes, plan_undo, unrestored

__all__ = ["ASK_USER", "Conversation", "MagicError", "UndoNeedsConfirmation", "UndoOffer"]

ASK_USER = HostTool(
    "ask_user",
    "Ask the person at the notebook a question and wait for their typed answer. Use it when you need "
    "a decision or information only they have.",
    {
        "type": "object",
        "properties": {"question": {"type": "string", "description": "The question"}},
        "required": ["question"],
    },
)

log = logging.getLogger("claude_kernel")

#: What the CLI prints (and exits 1) when ``--resume`` names a session it has no transcript of.
_TRANSCRIPT_GONE = "No conversation found with session ID"


class MagicError(Exception):
    """What was asked of the conversation cannot be done (a magic used wrongly, a folder gone).

    The message says why and what to do instead; both hosts show it as the cell's error.
    """


class UndoNeedsConfirmation(MagicError):
    """The undo would lose or delete something, or undo later cells too; the message says what.

    Asked again with ``confirmed=True`` (the panel's *Undo anyway*, ``%undo force``), it goes ahead.
    """


@dataclass(frozen=True)
class UndoOffer:
    """Files a turn changed that can be put back as they were before that turn's message."""

    prompt_uuid: str
    files: tuple[str, ...]
    #: The conversation that turn belongs to: after a rewind it is the branch left behind, whose
    #: file checkpoints the new branch does not have.
    session_id: str | None
    #: The turns whose changes the restore undoes, as known when offered (a rewind's dropped cells
    #: are no longer in the chain to look them up).
    turns: tuple[CellTurn, ...] = ()


class Conversation:
    """One conversation with Claude Code, across cells, CLI restarts and kernel restarts.

    With a notebook name (``notebook_state.notebook_name``), the conversation is the notebook's:
    its session id and chain of cells live in a state file, so a restarted kernel continues it,
    and a cell that runs again rewinds the conversation to just before its earlier turn.
    """

    def __init__(
        self,
        options: SessionOptions | None = None,
        *,
        host_tool_server: str = "notebook",
        notebook: str | None = None,
        state_root: Path | None = None,
    ) -> None:
        base = options or SessionOptions()
        self.options = replace(
            base,
            host_tool_server=host_tool_server,
            host_tools=[ASK_USER, *base.host_tools],
            cwd=base.cwd or default_cwd(),
        )
        self.headless_policy = "deny"
        #: What re-running a cell already in the conversation does: "rewind" or "append".
        self.rerun = "rewind"
        #: Host-side tools the user chose "Always allow" for in this conversation (the CLI keeps its own
        #: rules for its tools); emptied when another conversation starts or is resumed.
        self.always_allowed: set[str] = set()
        #: Images for the next message (``%attach``), in the Claude kernel.
        self.attachments = Attachments()
        self.session: Session | None = None
        self._store = StateStore(notebook, root=state_root) if notebook else None
        self.state = NotebookState(notebook or "")
        #: The notebook's saved conversation this kernel picked up, until the first turn decides on it.
        self._restored: NotebookState | None = None
        #: Whether this conversation is written to the notebook's state file (not a fresh headless run's).
        self._persist = True
        #: What went wrong with the notebook's state file, for the next cell to show (once each).
        self._notices: list[str] = []
        #: What happened to the conversation that ``%session`` should say (a transcript found gone).
        self.history_note: str | None = None
        self._trust = TrustStore()
        #: The folder's project commands while nobody has answered whether to trust them.
        self._trust_question: ProjectCommands | None = None
        #: This kernel's answers (they hold even where the data directory cannot keep them).
        self._answered: dict[ProjectCommands, bool] = {}
        #: The notebook file as found at start (None: no file to tell notebooks apart by).
        self._file: NotebookFile | None = None
        #: A conversation saved under this notebook's name that may be another notebook's, until
        #: the first cell's id decides (see notebook_identity); nothing is written meanwhile.
        self._undecided: NotebookState | None = None
        #: Whether another kernel owns the notebook's conversation: this one then works on a fork.
        self._guest = False
        if self._store is not None and not base.resume and not self._claim(self._store):
            self._become_guest(self._load_saved())
        elif self._store is not None and not base.resume:
            self._file = NotebookFile.read(self._store.notebook)
            saved = self._load_saved()
            moved = self._adopt_moved(self._file) if not saved.session_id and self._file is not None else None
            if moved is not None:
                self._continue(moved)  # found by this very file: it is this notebook's
            elif saved.session_id and same_notebook(saved, self._file, None):
                self._continue(saved)
            elif saved.session_id:
                self._undecided, self._persist = saved, False

    def _claim(self, store: StateStore) -> bool:
        """Whether this kernel is the notebook's one writer (see ``StateStore.claim``)."""
        try:
            return store.claim()
        except OSError:  # no lock to be had (a read-only data directory): nothing is written either
            return True

    def _become_guest(self, saved: NotebookState) -> None:
        """Another kernel runs this notebook's conversation: continue it on a fork, never in it.

        Two processes appending to one transcript interleave their turns, and a restart then
        loses some. The fork starts from everything the notebook said so far; its turns are
        listed among the notebook's branches and its cost counts against the notebook's budget.
        """
        self._guest, self._persist = True, False
        if not saved.session_id:
            return
        self.state = saved
        self.options = replace(
            self.options,
            resume=saved.session_id,
            fork_session=True,
            spent_usd=0.0,
            max_budget_usd=saved.budget_usd or self.options.max_budget_usd,
        )
        self._notices.append(
            f"Another kernel is running this notebook's conversation (session {saved.session_id}): this one "
            "continues it on a branch of its own, so the two never mix; `%history` lists the branch, and "
            "the budget counts both."
        )

    def _continue(self, saved: NotebookState) -> None:
        """Take up the notebook's saved conversation: the next start resumes it, with its cost and budget."""
        self.state, self._restored, self._persist = saved, saved, True
        self.options = replace(
            self.options,
            resume=saved.session_id,
            spent_usd=saved.cost_usd,
            max_budget_usd=saved.budget_usd or self.options.max_budget_usd,
        )

    def _adopt_moved(self, notebook: NotebookFile) -> NotebookState | None:
        """The conversation of this notebook saved under the name it had before a rename, taken over."""
        assert self._store is not None
        try:
            for candidate in find_moved(self._store.path.parent, notebook):
                previous = StateStore.of_file(candidate)
                if previous is None or previous.path == self._store.path:
                    continue
                state = previous.load()
                if moved_here(state, notebook):
                    old_name = state.notebook
                    self._store.adopt(state, previous)
                    self._notices.append(f"This notebook was {old_name} before: its conversation came with it.")
                    return state
        except Exception:  # looking for a renamed notebook's conversation must never stop the kernel
            log.warning("could not look for this notebook's conversation under an earlier name", exc_info=True)
        return None

    async def _decide_identity(self, cell_id: str | None) -> list[str]:
        """At the first cell: continue the conversation saved under this name, or set it aside."""
        undecided, self._undecided = self._undecided, None
        if undecided is None or self._store is None:
            return []
        if same_notebook(undecided, self._file, cell_id):
            self._continue(undecided)
            await self.restart(
                resume=undecided.session_id, spent_usd=undecided.cost_usd, max_budget_usd=self.options.max_budget_usd
            )
            return []
        self._persist = True
        try:
            aside = str(self._store.set_aside())
        except OSError as exc:
            aside = f"not moved ({exc})"
        return [
            f"A conversation was kept for a notebook at this path, but not for this one (none of these cells "
            f"ran in it): this notebook starts its own. The other one was set aside as {aside}; "
            f"`%resume {undecided.session_id}` would continue it here."
        ]

    # -- the process --------------------------------------------------------------------------

    async def ensure_session(self) -> Session:
        if self.session is None:
            self.session = await self._spawn()
        return self.session

    def _guarded(self, options: SessionOptions) -> tuple[SessionOptions, ProjectCommands | None]:
        """``options`` with project settings off where the folder would run commands and is not trusted,
        and the question to ask about that folder (None: nothing to ask).

        Every process this conversation starts goes through here (a ``%cwd`` to another folder
        asks again), so nothing of an untrusted folder's settings ever runs. It only answers: the
        conversation's own process (``_spawn``) keeps the question, a short-lived one (an undo in
        another folder) must not replace it.
        """
        try:
            commands = project_commands(options.cwd)
            if commands is None:
                allowed: bool | None = True
            elif commands in self._answered:
                allowed = self._answered[commands]
            else:
                allowed = self._trust.allows(commands)
        except Exception:  # the question must never stop a start: keep the settings off then
            log.warning("could not check the folder's project settings", exc_info=True)
            commands, allowed = None, False
        question = commands if allowed is None else None
        if allowed:
            return options, question
        return replace(options, extra_args=[*options.extra_args, *SETTINGS_OFF]), question

    async def _answer_trust(self, commands: ProjectCommands, trusted: bool) -> None:
        """Remember the answer for the folder; trusted, the CLI restarts with its project settings."""
        self._answered[commands] = trusted
        try:
            self._trust.remember(commands, trusted)
        except OSError as exc:
            self._notices.append(f"Could not save the answer for {commands.folder} ({exc}): it holds in this kernel.")
        if trusted:
            await self.restart()

    async def _spawn(self, *, strict: bool = False) -> Session:
        """Start the CLI; a conversation whose transcript is gone starts afresh, unless ``strict``
        (an explicit ``%resume ID``: that one must fail and say so)."""
        cwd = self.options.cwd
        if cwd and not os.path.isdir(cwd):
            raise MagicError(f"the working directory {cwd} no longer exists; choose another with %cwd PATH")
        try:
            return await self._spawn_guarded()
        except ProcessDiedError as exc:
            lost = self.options.resume
            if strict or not lost or _TRANSCRIPT_GONE not in str(exc):
                raise
        # The transcript is gone (the CLI deletes them after `cleanupPeriodDays`, 30 by default; a
        # kernel on another host has none): every cell would fail the same way. Start afresh, once.
        self.options = replace(self.options, resume=None, fork_session=False)
        session = await self._spawn_guarded()
        self._restored = None
        self.state.keep_cells(0)  # the cells' turns were in the lost transcript: nothing to rewind to
        self.state.set_session(None)
        self._save()
        why = (
            "the CLI no longer has its transcript (it deletes transcripts after `cleanupPeriodDays`, 30 days "
            "by default, and a kernel on another host has none)"
        )
        self.history_note = (
            f"session {lost} could not be continued: {why}; a fresh conversation started "
            f"{time.strftime('%Y-%m-%d %H:%M')}, and what the old one cost still counts"
        )
        self._notices.append(
            f"This notebook's conversation (session {lost}) could not be continued: {why}. "
            "A fresh conversation starts here; `%session` says so too."
        )
        return session

    async def _spawn_guarded(self) -> Session:
        """Start the conversation's own process; the one place that sets the trust question."""
        options, question = self._guarded(self.options)
        session = await Session.spawn(options)
        self._trust_question = question
        # A guest's fork (``_become_guest``) is made by its first start: from then on the session
        # id is the fork's own, and forking it again at every later start (a restart, an idle
        # stop) would leave the notebook a new branch each time, none of them continued.
        self.options = replace(self.options, fork_session=False)
        return session

    async def restart(self, *, strict: bool = False, **changes: Any) -> None:
        """Start a new process with changed options; it keeps the conversation unless ``resume`` is given.

        What the conversation has spent carries over (the budget holds across restarts). If the new
        process cannot start (a bad id, a folder that is gone), the options go back to what they
        were, so the next cell continues the conversation as before.
        """
        changes.setdefault("spent_usd", self.spent_usd)
        if changes.get("resume", self.current_session_id) == self.current_session_id:
            # The same conversation: close() says how to continue it (a fork with no turn yet is
            # forked again from where it began; its own id has no transcript to resume).
            changes.pop("resume", None)
        else:
            # Another conversation: an "Always allow" lasts as long as its own, like the CLI's
            # session rules, which end with the process.
            self.always_allowed.clear()
            changes.update(fork_session=False, resume_session_at=None, resume_drops_turn=None)
        await self.close()
        previous = self.options
        self.options = replace(self.options, **changes)
        try:
            self.session = await self._spawn(strict=strict)
        except BaseException:
            self.options = previous
            raise

    def has_pending_work(self) -> bool:
        """Whether the CLI must keep running now: what an idle stop (``idle_stop.py``) waits for.

        A turn in progress (and with it any panel waiting for a person), a rewind not yet in the
        transcript, or work the CLI does by itself: background tasks (their questions too), a turn
        of its own, a wake-up it was asked for (all of which live in the process).
        """
        session = self.session
        return session is not None and (
            not session.is_finished() or session.has_unsaved_rewind or session.has_background_work
        )

    @property
    def current_session_id(self) -> str | None:
        """The conversation's id: the running session's, or the one the next start resumes."""
        if self.session is not None and self.session.session_id:
            return self.session.session_id
        return self.options.resume

    @property
    def permission_mode(self) -> str:
        """The CLI's permission mode: the running session follows it as the CLI changes it (plans)."""
        options = self.session.options if self.session is not None else self.options
        return options.permission_mode or "default"

    @property
    def spent_usd(self) -> float:
        """What this conversation has cost so far, across processes (and kernel restarts)."""
        return self.session.total_cost_usd if self.session is not None else self.options.spent_usd

    @property
    def background_tasks(self) -> dict[str, dict[str, Any]]:
        """The work the CLI reports running in the background (agents, commands), by task id."""
        return dict(self.session.background_tasks) if self.session is not None else {}

    async def stop_background(self, task_ids: Sequence[str]) -> None:
        """Stop background tasks by id (the CLI's ``stop_task``); each reports that it stopped."""
        if self.session is not None:
            for task_id in task_ids:
                await self.session.stop_task(task_id)

    async def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            # Whatever happens next, a later start resumes this conversation, in the mode the CLI was in.
            where = session.resume_point
            self.options = replace(
                self.options,
                resume=where.resume or self.options.resume,
                fork_session=where.fork_session,
                resume_session_at=where.resume_session_at,
                resume_drops_turn=where.resume_drops_turn,
                spent_usd=session.total_cost_usd,
                permission_mode=session.options.permission_mode,
            )
            code, stderr = await session.close()
            if code:  # 0 is the CLI's answer to end of input; anything else needed a signal or failed
                log.warning("the claude CLI exited with code %s on close: %s", code, stderr[-500:].strip())

    # -- what the line magics change ------------------------------------------------------------

    @property
    def notebook(self) -> str | None:
        """The notebook whose state file keeps this conversation, if any."""
        return self._store.notebook if self._store is not None else None

    async def set_model(self, name: str) -> None:
        await (await self.ensure_session()).set_model(name)
        self.options = replace(self.options, model=name)

    async def set_permission_mode(self, mode: str) -> None:
        await (await self.ensure_session()).set_permission_mode(mode)

    async def allow_tools(self, tools: Sequence[str]) -> None:
        """Pre-allow tools. The CLI reads them only when it starts, so it restarts (session kept)."""
        await self.restart(allowed_tools=[*self.options.allowed_tools, *tools])

    async def declare_tool(self, tool: HostTool) -> None:
        """Add a host tool, or replace the one of that name (the CLI restarts, session kept)."""
        tools = [t for t in self.options.host_tools if t.name != tool.name]
        await self.restart(host_tools=[*tools, tool])

    async def set_cwd(self, path: str) -> None:
        await self.restart(cwd=path)

    async def set_budget(self, cap: float | None) -> None:
        """Cap what the conversation may spend (None: no cap); kept with the notebook's conversation."""
        await self.restart(max_budget_usd=cap)
        self._save()

    async def start_new(self) -> None:
        """A fresh conversation, with nothing spent; the one left stays resumable as a branch."""
        await self.restart(resume=None, spent_usd=0.0)
        self._leave_branch("%new")
        self.state.keep_cells(0)
        self.state.forget_cleared()
        self.state.set_cost(0.0)
        self.state.set_session(self.current_session_id)
        self._persist = True
        self._save()

    def saved_session_id(self) -> str | None:
        """The conversation in the notebook's state file (what a restarted kernel would continue)."""
        return self._load_saved().session_id if self._store is not None else None

    async def resume(self, session_id: str) -> None:
        """Continue the conversation ``session_id``; the notebook's own comes back with its cells and cost.

        If the CLI cannot resume it, the exception propagates and the current conversation stays.
        """
        saved = self._load_saved() if self._store is not None else None
        if saved is None or saved.session_id != session_id:
            saved = None
        await self.restart(strict=True, resume=session_id, spent_usd=saved.cost_usd if saved else 0.0)
        self._restored = None  # asked for explicitly: a headless run keeps it too
        if saved is not None:
            self.state = saved
        else:
            self._leave_branch("%resume")
            self.state.reset()
            self.state.set_session(session_id)
        self._persist = True
        self._save()

    # -- the notebook's conversation ------------------------------------------------------------

    def _load_saved(self) -> NotebookState:
        assert self._store is not None
        try:
            return self._store.load()
        except StateFileDamaged as exc:
            log.warning("%s", exc)
            self._notices.append(f"{exc}. This notebook starts a fresh conversation.")
        except Exception as exc:  # an unreadable data directory: carry on without the saved state
            log.warning("could not read the notebook's conversation", exc_info=True)
            self._notices.append(f"Could not read this notebook's saved conversation ({exc}); starting fresh.")
        return NotebookState(self._store.notebook)

    def _save(self) -> None:
        """Append what changed to the notebook's state file; a failure becomes a notice, never an exception.

        The cell's reply must go out whatever the disk does (a full or read-only data directory, an
        encoding the host cannot write), so nothing here may raise.
        """
        self.state.set_budget(self.options.max_budget_usd)
        if self._store is None or not self._persist or self._guest:
            self.state.take_journal()
            return
        try:
            self._store.save(self.state)
        except Exception as exc:
            log.warning("could not save the notebook's conversation", exc_info=True)
            self._notices.append(
                f"Could not save this notebook's conversation ({type(exc).__name__}: {exc}); "
                "the conversation goes on, but a restarted kernel may not continue it."
            )

    def take_notices(self) -> list[str]:
        """Problems with the notebook's state file since the last call, for the cell to show."""
        notices, self._notices = self._notices, []
        return notices

    def _leave_branch(self, reason: str, *, resumable: bool = True) -> None:
        """Remember the conversation being left (by %new, a rewind, %resume), the newest ``KEPT_BRANCHES``.

        A rewind in place cuts the dropped turns out of the CLI's conversation for good (on CLI
        2.1.337 not even ``--resume-session-at`` reaches them again), so its branch is recorded as
        not resumable: what it dropped, not a way back. Keeping it resumable would need a copy of
        the transcript per rewind.
        """
        if self.state.session_id and self.state.cells:
            self.state.add_branch(Branch(self.state.session_id, len(self.state.cells), reason, resumable))

    async def before_turn(
        self,
        *,
        cell_id: str | None,
        interactive: bool,
        ask_trust: Callable[[ProjectCommands], Awaitable[bool]] | None = None,
    ) -> tuple[list[str], UndoOffer | None]:
        """Notes for the start of a turn, after continuing or rewinding the notebook's conversation.

        Both hosts start every message here, in this order: the notebook's identity is decided
        before the CLI is started (deciding it may mean resuming another conversation, and a
        start before it would be thrown away: the CLI started twice), and the folder-trust
        question is asked before any rewind is decided (a "trust" answer restarts the CLI, and a
        rewind done in the process it replaces would be lost with it). ``ask_trust`` asks the
        person; without it (nobody to ask: a headless run, a terminal) project settings stay off
        and a note says so.

        Returns the notes and the file changes a rewind left in place (offered for undo, never
        undone silently).
        """
        identity = await self._decide_identity(cell_id)
        await self.ensure_session()  # a start that found the transcript gone has its notice ready
        # Taken, not just read: asked (or told) once per start of the CLI, which sets it again.
        untrusted, self._trust_question = self._trust_question, None
        if untrusted is not None and ask_trust is not None:
            await self._answer_trust(untrusted, await ask_trust(untrusted))
        await self._share_budget()  # after a restart for trust: it caps the process that runs the turn
        notes = [*self.take_notices(), *identity]
        if untrusted is not None and ask_trust is None:
            notes.append(
                f"This folder's project settings would run commands ({'; '.join(untrusted.items)}). Nobody is "
                f"here to ask, so they stay off; trust the folder in an interactive run, or set {OPT_IN}=1."
            )
        restored, self._restored = self._restored, None
        if restored is not None and self.current_session_id == restored.session_id:
            if interactive:
                notes.append(
                    f"Continuing this notebook's conversation (session {restored.session_id}, "
                    f"{len(restored.cells)} turns); `%new` starts afresh."
                )
            else:
                # A scheduled run is reproducible: it starts fresh and leaves the notebook's own alone.
                await self.restart(resume=None, spent_usd=0.0)
                self._persist = False
                self.state = NotebookState(self.state.notebook)
                notes.append("Headless run: a fresh conversation; `%resume last` continues the notebook's own.")
        index = self.state.index_of(cell_id) if cell_id and self.rerun == "rewind" else None
        if index is None:
            return [*notes, *self._rerun_after_clear(cell_id)], None
        note, offer = await self._rewind_to_before(index)
        return [*notes, note], offer

    async def _rewind_to_before(self, index: int) -> tuple[str, UndoOffer | None]:
        chain = self.state.cells
        dropped = chain[index:]
        keep = next((i for i in range(index - 1, -1, -1) if chain[i].last_uuid), None)
        if keep is not None and chain[keep].compacted:
            # The CLI keeps no message from before a compaction to resume at ("No message found").
            return (
                "This cell ran before the conversation was compacted, and a compacted conversation cannot "
                "go back to before its summary: the cell is sent as a new message."
            ), None
        session = await self.ensure_session()
        left = session.session_id
        first_dropped = chain[keep + 1 if keep is not None else 0].prompt_uuid
        forked: str | None = None
        try:
            if keep is None:
                try:  # nothing before this cell: the whole conversation goes, in place if the CLI can
                    await session.rewind(None, first_dropped=first_dropped, latest=chain[-1].prompt_uuid)
                except RewindError as exc:
                    # Only the CLI's refusal means a fresh conversation instead. Any other error (a
                    # turn of the CLI's own running, a process gone) says nothing about the rewind:
                    # throwing the whole conversation away for it would lose it for nothing.
                    await self.restart(resume=None)
                    forked = str(exc)
            else:
                last_turn = index == len(chain) - 1 and keep == index - 1
                to = chain[keep].last_uuid
                assert to is not None
                rewound = await session.rewind(
                    to,
                    first_dropped=first_dropped,
                    latest=chain[-1].prompt_uuid,
                    dropping_turn=chain[index].prompt_uuid if last_turn else None,
                )
                forked = rewound.refused
        except SessionError as exc:
            return f"Could not rewind ({exc}); this cell continues the conversation as it is.", None
        self._leave_branch(f"rewound at cell {index + 1}", resumable=forked is not None)
        self.state.keep_cells((keep + 1) if keep is not None else 0)
        self.state.set_session(self.current_session_id)
        self._save()
        later = len(dropped) - 1
        if later == 0:
            note = "Re-ran the last cell: it replaces its earlier exchange."
        else:
            note = (
                f"Rewound to before this cell's earlier turn: {later} later cell{'s' if later > 1 else ''} "
                "no longer in the conversation."
            )
        if forked is not None:
            note += (
                f" (The CLI could not rewind in place: {forked}. It restarted on a copy of the conversation; "
                f"`%resume {left}` goes back to the branch left behind.)"
            )
        # Restoring to before the earliest dropped change undoes every later one too: one offer.
        changed = [t for t in dropped if t.files_changed and not t.files_undone]
        if not changed:
            return note, None
        files = tuple(dict.fromkeys(path for t in changed for path in t.files_changed))
        return note, UndoOffer(changed[0].prompt_uuid, files, left, tuple(changed))

    async def _share_budget(self) -> None:
        """Hold the notebook's budget across every kernel on it: this one may spend what others left.

        The owner's cap is its own (``%budget``); a guest follows the notebook's, as its file says.
        """
        if self._store is None or (not self._guest and self.options.max_budget_usd is None):
            return
        session = await self.ensure_session()
        try:
            elsewhere = self._store.spent_elsewhere(session.session_id if self._guest else None)
        except Exception:
            log.warning("could not read what other kernels spent", exc_info=True)
            return
        cap = self._store.ledger.budget_usd if self._guest else self.options.max_budget_usd
        if cap is None or (elsewhere <= 0 and not self._guest):
            return
        if cap - elsewhere <= 0 or cap - elsewhere <= session.total_cost_usd:
            spent = elsewhere + session.total_cost_usd
            exhausted = BudgetExceededError(cap, spent)
            exhausted.args = (
                f"this notebook reached its budget of {usd(cap)} (spent ${spent:.4f} by its kernels together); "
                "raise it with `%budget USD`, or `%budget off`",
            )
            raise exhausted
        session.options = replace(session.options, max_budget_usd=cap - elsewhere)

    def _record_guest_turn(self, session: Session) -> None:
        """A guest's turn: its branch among the notebook's (once) and what it spent, in the owner's file."""
        if self._store is None or not session.session_id:
            return
        # The same operations the owner writes, built on a scratch state.
        record = NotebookState(self._store.notebook)
        if session.session_id not in self._store.ledger.guest_costs:
            record.add_branch(Branch(session.session_id, len(self.state.cells), "a second kernel on this notebook"))
        record.set_guest_cost(session.session_id, session.total_cost_usd)
        ops = record.take_journal()
        try:
            self._store.append(ops)
        except Exception as exc:
            log.warning("could not record this kernel's branch", exc_info=True)
            self._notices.append(f"Could not record this kernel's branch in the notebook's state ({exc}).")

    def _rerun_after_clear(self, cell_id: str | None) -> list[str]:
        """A cell from before a ``/clear`` runs again: it goes to the cleared conversation as a new message.

        It cannot rewind (its turn is in the conversation ``/clear`` left), so it says so; from now
        on the cell belongs to the current conversation.
        """
        if not cell_id or not any(turn.cell_id == cell_id for turn in self.state.cleared):
            return []
        self.state.forget_cleared(cell_id)
        return [
            "This cell ran before `/clear`: it is sent as a new message in the cleared conversation, "
            "which does not have its earlier exchange."
        ]

    def _clear(self) -> None:
        """``/clear`` moved the CLI to a new, empty conversation: the cells so far are out of it.

        They stay listed (``%history``), and the conversation they were in stays resumable.
        """
        self._leave_branch("/clear")
        self.state.clear_cells()

    def after_turn(self, *, cell_id: str | None, prompt: str, outcome: TurnOutcome) -> UndoOffer | None:
        """Record the turn as the cell's; the offer to undo its file changes, if it made any."""
        session = self.session
        result = outcome.view.result
        if session is None:
            return None
        if slash.local_command(result) == "clear":
            # Not a turn of the new conversation, whose transcript starts after it.
            self._clear()
        elif outcome.prompt_uuid and result is not None:
            if outcome.view.compacted:
                self.state.mark_compacted()
            first_line = next((line.strip() for line in prompt.splitlines() if line.strip()), "")[:120]
            cwd = session.options.cwd or os.getcwd()
            turn = CellTurn(
                cell_id or "",
                outcome.prompt_uuid,
                result.last_message_uuid,
                first_line=first_line,
                cost_usd=result.cost_usd,
                files_changed=list(outcome.changed_files),
                cwd=cwd,
                # What the turn left in each file: an undo compares, so hand edits since are never lost silently.
                file_hashes=hashes(outcome.changed_files, cwd),
                files_created=list(outcome.created_files),
            )
            self.state.append_cell(turn)
        self.state.set_session(session.session_id)
        self.state.set_cost(session.total_cost_usd)
        if self._store is not None:
            self.state.set_file_stamp(stamp_of(self._store.notebook))
        self._save()
        if self._guest:
            self._record_guest_turn(session)
        if outcome.prompt_uuid and outcome.changed_files and result is not None:
            return UndoOffer(outcome.prompt_uuid, outcome.changed_files, session.session_id, (turn,))
        return None

    async def undo(self, offer: UndoOffer, confirmed: bool = False) -> str:
        """Put the offer's files back as they were before its turn; says exactly what was restored.

        Without ``confirmed``, an undo that would lose edits made since, delete a file, or undo later
        cells too raises :class:`UndoNeedsConfirmation` and changes nothing. The restore runs in the
        turn's own working directory (the CLI resolves its checkpoints against it), and each file
        is checked afterwards: one left as it was is reported, and the cells stay not undone.
        """
        turns = self._turns_undone_with(offer)
        if not turns:
            raise MagicError("that cell's file changes were undone already")
        cwd = turns[0].cwd or self.options.cwd or os.getcwd()

        def show(path: str) -> str:
            return f"`{shown_path(path, cwd)}`"

        try:
            async with self._checkpoints(offer.session_id, cwd) as session:
                preview = await session.rewind_files(offer.prompt_uuid, dry_run=True)
                if not preview.get("canRewind", False):
                    why = preview.get("error") or "it has no checkpoint for that cell"
                    raise MagicError(f"the CLI cannot undo that cell's file changes: {why}")
                plan = plan_undo(turns, preview, cwd)
                warning = plan.warning(self._name_cell, show)
                if warning and not confirmed:
                    raise UndoNeedsConfirmation(f"Nothing was changed yet: {warning}.")
                before = hashes(plan.files, cwd)
                answer = await session.rewind_files(offer.prompt_uuid)
        except SessionError as exc:
            raise MagicError(f"could not undo the file changes: {exc}") from exc
        after = hashes(plan.files, cwd)
        left = unrestored(plan, before, after)
        if left or not answer.get("canRewind", False):
            skipped = answer.get("skippedLinks")
            restored = [path for path in plan.files if path not in left and before[path] != after[path]]
            raise MagicError(
                f"not restored: {', '.join(show(path) for path in left) or 'none'}"
                + (f" (the CLI skipped {skipped} file{'s' if skipped != 1 else ''})" if skipped else "")
                + (f"; restored: {', '.join(show(path) for path in restored)}" if restored else "")
                + "; the cell's changes are still marked as not undone"
            )
        for turn in turns:
            self.state.mark_undone(turn.prompt_uuid)
        self._save()
        deleted = [path for path in plan.files if before[path] is not None and after[path] is None]
        restored = [path for path in plan.files if path not in deleted and before[path] != after[path]]
        words = []
        if restored:
            words.append("restored as before the cell: " + ", ".join(shown_path(path, cwd) for path in restored))
        if deleted:
            words.append("deleted (the cell had created them): " + ", ".join(shown_path(path, cwd) for path in deleted))
        if len(turns) > 1:
            words.append("undone with it: " + ", ".join(self._name_cell(turn) for turn in turns[1:]))
        return "; ".join(words) or "nothing to restore: the files were already as before the cell"

    def _turns_undone_with(self, offer: UndoOffer) -> list[CellTurn]:
        """The offer's turn and every later one of its conversation whose changes the restore undoes."""
        chain = self.state.cells
        index = next((i for i, turn in enumerate(chain) if turn.prompt_uuid == offer.prompt_uuid), None)
        if index is not None and offer.session_id in (None, self.state.session_id):
            later = [turn for turn in chain[index + 1 :] if turn.files_changed and not turn.files_undone]
            return [] if chain[index].files_undone else [chain[index], *later]
        return list(offer.turns)

    def _name_cell(self, turn: CellTurn) -> str:
        index = self.state.index_of(turn.cell_id) if turn.cell_id else None
        where = f"cell {index + 1}" if index is not None else "a cell"
        return f"{where} `{turn.first_line[:40]}`" if turn.first_line else where

    @contextlib.asynccontextmanager
    async def _checkpoints(self, session_id: str | None, cwd: str) -> AsyncIterator[Session]:
        """A process that can restore the turn's checkpoints: in its conversation and working directory.

        The running one when it matches; otherwise a short-lived one resuming that conversation
        there (after ``%cwd`` the running CLI would resolve the checkpoints against the wrong
        folder and skip them all).
        """
        current = session_id in (None, self.current_session_id)
        if current and cwd == (self.options.cwd or os.getcwd()):
            yield await self.ensure_session()
            return
        resume = self.current_session_id if current else session_id
        other = replace(self.options, resume=resume, cwd=cwd, max_budget_usd=None, spent_usd=0.0)
        guarded, _ = self._guarded(other)  # a question about that folder is for its own process, not asked here
        async with await Session.spawn(guarded) as session:
            yield session

    async def undo_last(self, confirmed: bool = False) -> str:
        """Undo the file changes of the latest cell whose changes are still in place."""
        for turn in reversed(self.state.cells):
            if turn.files_changed and not turn.files_undone:
                offer = UndoOffer(turn.prompt_uuid, tuple(turn.files_changed), self.state.session_id, (turn,))
                return await self.undo(offer, confirmed)
        raise MagicError("no cell in this conversation changed files (or their changes were undone)")
