"""The state both hosts keep between cells: one Session, its options, the notebook's conversation.

The Claude kernel and the ``%%claude`` magic each own one :class:`Conversation`, so both hosts
continue, rewind and undo the same way. The line magics (``line_magics.py``) parse their arguments and
call the operations here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import slash
from ._gateway import default_cwd
from .attachments import Attachments
from .notebook_state import Branch, CellTurn, NotebookState, StateFileDamaged, StateStore
from .session import HostTool, Session, SessionError, SessionOptions
from .turn import TurnOutcome, shown_path

__all__ = ["ASK_USER", "Conversation", "MagicError", "UndoOffer"]

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

#: How many earlier branches the notebook's state file keeps (the oldest are forgotten first).
KEPT_BRANCHES = 20


class MagicError(Exception):
    """What was asked of the conversation cannot be done (a magic used wrongly, a folder gone).

    The message says why and what to do instead; both hosts show it as the cell's error.
    """


@dataclass(frozen=True)
class UndoOffer:
    """Files a turn changed that can be put back as they were before that turn's message."""

    prompt_uuid: str
    files: tuple[str, ...]
    #: The conversation that turn belongs to: after a rewind it is the branch left behind, whose
    #: file checkpoints the new branch does not have.
    session_id: str | None


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
        if self._store is not None and not base.resume:
            saved = self._load_saved()
            if saved.session_id:
                self.state, self._restored = saved, saved
                self.options = replace(
                    self.options,
                    resume=saved.session_id,
                    spent_usd=saved.cost_usd,
                    max_budget_usd=saved.budget_usd or self.options.max_budget_usd,
                )

    # -- the process --------------------------------------------------------------------------

    async def ensure_session(self) -> Session:
        if self.session is None:
            self.session = await self._spawn()
        return self.session

    async def _spawn(self) -> Session:
        cwd = self.options.cwd
        if cwd and not os.path.isdir(cwd):
            raise MagicError(f"the working directory {cwd} no longer exists; choose another with %cwd PATH")
        return await Session.spawn(self.options)

    async def restart(self, **changes: Any) -> None:
        """Start a new process with changed options; it keeps the conversation unless ``resume`` is given.

        What the conversation has spent carries over (the budget holds across restarts). If the new
        process cannot start (a bad id, a folder that is gone), the options go back to what they
        were, so the next cell continues the conversation as before.
        """
        changes.setdefault("resume", self.current_session_id)
        changes.setdefault("spent_usd", self.spent_usd)
        if changes["resume"] != self.current_session_id:
            # Another conversation: an "Always allow" lasts as long as its own, like the CLI's
            # session rules, which end with the process.
            self.always_allowed.clear()
        previous = replace(self.options, resume=self.current_session_id, spent_usd=self.spent_usd)
        await self.close()
        self.options = replace(self.options, **changes)
        try:
            self.session = await self._spawn()
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
            self.options = replace(
                self.options,
                resume=session.session_id or self.options.resume,
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
        self.state.cells, self.state.cleared, self.state.cost_usd = [], [], 0.0
        self.state.session_id = self.current_session_id
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
        await self.restart(resume=session_id, spent_usd=saved.cost_usd if saved else 0.0)
        self._leave_branch("%resume")
        self.state = saved or NotebookState(self.state.notebook, session_id)
        self._persist = True
        self._save()

    # -- the notebook's conversation ------------------------------------------------------------

    def _load_saved(self) -> NotebookState:
        assert self._store is not None
        try:
            return self._store.load()
        except StateFileDamaged as exc:
            log.warning("%s", exc)
            return NotebookState(self._store.notebook)

    def _save(self) -> None:
        if self._store is None or not self._persist:
            return
        try:
            with self._store.update() as on_disk:
                on_disk.session_id = self.state.session_id
                on_disk.cells = self.state.cells
                on_disk.branches = self.state.branches
                on_disk.cost_usd = self.state.cost_usd
                on_disk.budget_usd = self.options.max_budget_usd
                on_disk.cleared = self.state.cleared
        except OSError as exc:  # a read-only data directory must not fail the cell
            log.warning("could not save the notebook's conversation: %s", exc)

    def _leave_branch(self, reason: str, *, resumable: bool = True) -> None:
        """Remember the conversation being left (by %new, a rewind, %resume), the newest ``KEPT_BRANCHES``.

        A rewind in place cuts the dropped turns out of the CLI's conversation for good (on CLI
        2.1.337 not even ``--resume-session-at`` reaches them again), so its branch is recorded as
        not resumable: what it dropped, not a way back. Keeping it resumable would need a copy of
        the transcript per rewind.
        """
        if self.state.session_id and self.state.cells:
            self.state.branches.append(Branch(self.state.session_id, len(self.state.cells), reason, resumable))
            del self.state.branches[:-KEPT_BRANCHES]

    async def before_turn(self, *, cell_id: str | None, interactive: bool) -> tuple[list[str], UndoOffer | None]:
        """Notes for the start of a turn, after continuing or rewinding the notebook's conversation.

        Returns the notes and the file changes a rewind left in place (offered for undo, never
        undone silently).
        """
        notes: list[str] = []
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
                except SessionError as exc:
                    await self.restart(resume=None)  # a fresh conversation instead
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
        self.state.cells = chain[: (keep + 1) if keep is not None else 0]
        self.state.session_id = self.current_session_id
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
        return note, UndoOffer(changed[0].prompt_uuid, files, left)

    def _rerun_after_clear(self, cell_id: str | None) -> list[str]:
        """A cell from before a ``/clear`` runs again: it goes to the cleared conversation as a new message.

        It cannot rewind (its turn is in the conversation ``/clear`` left), so it says so; from now
        on the cell belongs to the current conversation.
        """
        before = [turn for turn in self.state.cleared if cell_id and turn.cell_id == cell_id]
        if not before:
            return []
        self.state.cleared = [turn for turn in self.state.cleared if turn not in before]
        return [
            "This cell ran before `/clear`: it is sent as a new message in the cleared conversation, "
            "which does not have its earlier exchange."
        ]

    def _clear(self) -> None:
        """``/clear`` moved the CLI to a new, empty conversation: the cells so far are out of it.

        They stay listed (``%history``), and the conversation they were in stays resumable.
        """
        self._leave_branch("/clear")
        self.state.cleared = [*self.state.cleared, *self.state.cells]
        self.state.cells = []

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
                for turn in self.state.cells:
                    turn.compacted = True
            first_line = next((line.strip() for line in prompt.splitlines() if line.strip()), "")[:120]
            self.state.cells.append(
                CellTurn(
                    cell_id or "",
                    outcome.prompt_uuid,
                    result.last_message_uuid,
                    first_line=first_line,
                    cost_usd=result.cost_usd,
                    files_changed=list(outcome.changed_files),
                )
            )
        self.state.session_id = session.session_id
        self.state.cost_usd = session.total_cost_usd
        self._save()
        if outcome.prompt_uuid and outcome.changed_files:
            return UndoOffer(outcome.prompt_uuid, outcome.changed_files, session.session_id)
        return None

    async def undo(self, offer: UndoOffer) -> str:
        """Put the offer's files back as they were before its turn; says what was restored."""
        try:
            if offer.session_id is None or offer.session_id == self.current_session_id:
                await (await self.ensure_session()).rewind_files(offer.prompt_uuid)
            else:
                # The turn is on a branch a rewind left: its checkpoints are there, so ask it.
                branch = replace(self.options, resume=offer.session_id, max_budget_usd=None, spent_usd=0.0)
                async with await Session.spawn(branch) as other:
                    await other.rewind_files(offer.prompt_uuid)
        except SessionError as exc:
            raise MagicError(f"could not undo the file changes: {exc}") from exc
        for turn in self.state.cells:
            if turn.prompt_uuid == offer.prompt_uuid:
                turn.files_undone = True
        self._save()
        return "restored as before the cell: " + ", ".join(shown_path(path, self.options.cwd) for path in offer.files)

    async def undo_last(self) -> str:
        """Undo the file changes of the latest cell whose changes are still in place."""
        for turn in reversed(self.state.cells):
            if turn.files_changed and not turn.files_undone:
                return await self.undo(UndoOffer(turn.prompt_uuid, tuple(turn.files_changed), self.state.session_id))
        raise MagicError("no cell in this conversation changed files (or their changes were undone)")
