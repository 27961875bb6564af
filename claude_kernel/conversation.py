"""The state both hosts keep between cells: one Session, its options, and the line magics.

The Claude kernel and the ``%%claude`` magic each own one :class:`Conversation`; ``%model``,
``%new``, ``%resume`` and the rest are methods here, so both hosts behave the same way. Each magic
is declared once, in :data:`MAGICS`, with its usage and help: dispatch, ``%help`` and completion
all read that one table.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import shlex
import textwrap
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema

from ._gateway import default_cwd
from .notebook_state import Branch, CellTurn, NotebookState, StateFileDamaged, StateStore
from .session import HostTool, Session, SessionError, SessionOptions
from .turn import TurnOutcome, shown_path, usd

__all__ = ["ASK_USER", "MAGICS", "Conversation", "MagicError", "MagicSpec", "help_text", "magic_docs", "split_magics"]

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

# MCP tool names the CLI accepts (it builds mcp__<server>__<name> from them).
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: The Messages API refuses a request with a longer tool name ("String should have at most 64 characters").
_API_TOOL_NAME_MAX = 64


class MagicError(Exception):
    """A line magic was used wrongly; the message says how to use it."""


MagicHandler = Callable[["Conversation", str], Awaitable[str]]


@dataclass(frozen=True)
class MagicSpec:
    """One line magic: its forms (``(usage, what it does)`` pairs) and the method that runs it."""

    name: str
    forms: tuple[tuple[str, str], ...]
    run: MagicHandler

    @property
    def help(self) -> str:
        lines = []
        for usage, summary in self.forms:
            # Usages longer than the column get their summary on the next line.
            if len(usage) < 30:
                lines.append(f"  {usage:<30}{summary}")
            else:
                lines += [f"  {usage}", f"  {'':<30}{summary}"]
        return "\n".join(lines)


#: Every line magic, by name, in the order ``%help`` lists them.
MAGICS: dict[str, MagicSpec] = {}


def _magic(*forms: tuple[str, str]) -> Callable[[MagicHandler], MagicHandler]:
    def register(handler: MagicHandler) -> MagicHandler:
        name = forms[0][0].split()[0].lstrip("%")
        MAGICS[name] = MagicSpec(name, forms, handler)
        return handler

    return register


def magic_docs() -> dict[str, str]:
    """Each magic's own help (its forms and what they do), for Shift-Tab and completion."""
    return {name: textwrap.dedent(spec.help) for name, spec in MAGICS.items()}


def help_text() -> str:
    return (
        "Line magics (each on its own line at the top of a cell; the rest of the cell is the message):\n\n"
        + "\n".join(spec.help for spec in MAGICS.values())
        + "\n"
    )


def _words(args: str, usage: str) -> list[str]:
    try:
        return shlex.split(args)
    except ValueError as exc:  # an unclosed quote
        raise MagicError(f"{exc}; usage: {usage}") from exc


def parse_tool_declaration(args: str) -> HostTool:
    """``NAME "DESCRIPTION" [JSON-SCHEMA]``: the schema is the raw rest of the line, quotes and all."""
    usage = '%tool NAME "DESCRIPTION" [JSON-SCHEMA]'
    stream = io.StringIO(args)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    try:
        name, description = lexer.get_token(), lexer.get_token()
    except ValueError as exc:
        raise MagicError(f"{exc}; usage: {usage}") from exc
    if not name or not description:
        raise MagicError(f"usage: {usage}")
    if not _TOOL_NAME.fullmatch(name):
        raise MagicError(f"a tool name is 1-64 letters, digits, '_' or '-', not {name!r}")
    rest = stream.read().strip()
    if not rest:
        return HostTool(name, description)
    try:
        schema = json.loads(rest)
    except ValueError as exc:
        raise MagicError(f"the input schema is not JSON ({exc}): {rest}") from exc
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        raise MagicError(
            'the input schema must be a JSON object describing an object, e.g. {"type": "object", '
            '"properties": {"city": {"type": "string"}}}'
        )
    try:
        # The API checks tool schemas against JSON Schema 2020-12 and would reject every later turn.
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise MagicError(f"the input schema is not a valid JSON Schema: {exc.message}") from exc
    return HostTool(name, description, {"type": "object", **schema})


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
        #: Host-side tools the user chose "Always allow" for (the CLI keeps its own rules for its tools).
        self.always_allowed: set[str] = set()
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
        previous = replace(self.options, resume=self.current_session_id, spent_usd=self.spent_usd)
        await self.close()
        self.options = replace(self.options, **changes)
        try:
            self.session = await self._spawn()
        except BaseException:
            self.options = previous
            raise

    @property
    def current_session_id(self) -> str | None:
        """The conversation's id: the running session's, or the one the next start resumes."""
        if self.session is not None and self.session.session_id:
            return self.session.session_id
        return self.options.resume

    @property
    def spent_usd(self) -> float:
        """What this conversation has cost so far, across processes (and kernel restarts)."""
        return self.session.total_cost_usd if self.session is not None else self.options.spent_usd

    async def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            # Whatever happens next, a later start resumes this conversation.
            self.options = replace(
                self.options, resume=session.session_id or self.options.resume, spent_usd=session.total_cost_usd
            )
            await session.close()

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
        except OSError as exc:  # a read-only data directory must not fail the cell
            log.warning("could not save the notebook's conversation: %s", exc)

    def _leave_branch(self, reason: str) -> None:
        """Remember the conversation being left (by %new, a rewind, %resume) as resumable."""
        if self.state.session_id and self.state.cells:
            self.state.branches.append(Branch(self.state.session_id, len(self.state.cells), reason))

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
            return notes, None
        note, offer = await self._rewind_to_before(index)
        return [*notes, note], offer

    async def _rewind_to_before(self, index: int) -> tuple[str, UndoOffer | None]:
        chain = self.state.cells
        dropped = chain[index:]
        keep = next((i for i in range(index - 1, -1, -1) if chain[i].last_uuid), None)
        session = await self.ensure_session()
        left = session.session_id
        try:
            if keep is None:
                await self.restart(resume=None)  # nothing before this cell: a fresh conversation
            else:
                last_turn = index == len(chain) - 1 and keep == index - 1
                to = chain[keep].last_uuid
                assert to is not None
                await session.rewind(to, dropping_turn=chain[index].prompt_uuid if last_turn else None)
        except SessionError as exc:
            return f"Could not rewind ({exc}); this cell continues the conversation as it is.", None
        self._leave_branch(f"rewound at cell {index + 1}")
        self.state.cells = chain[: (keep + 1) if keep is not None else 0]
        self.state.session_id = self.current_session_id
        self._save()
        later = len(dropped) - 1
        if later == 0:
            note = "Re-ran the last cell: it replaces its earlier exchange."
        else:
            note = (
                f"Rewound to before this cell's earlier turn: {later} later cell{'s' if later > 1 else ''} "
                f"no longer in the conversation (`%resume {left}` goes back to that branch)."
            )
        # Restoring to before the earliest dropped change undoes every later one too: one offer.
        changed = [t for t in dropped if t.files_changed and not t.files_undone]
        if not changed:
            return note, None
        files = tuple(dict.fromkeys(path for t in changed for path in t.files_changed))
        return note, UndoOffer(changed[0].prompt_uuid, files, left)

    def after_turn(self, *, cell_id: str | None, prompt: str, outcome: TurnOutcome) -> UndoOffer | None:
        """Record the turn as the cell's; the offer to undo its file changes, if it made any."""
        session = self.session
        result = outcome.view.result
        if session is None:
            return None
        if outcome.prompt_uuid and result is not None:
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

    async def run_magic(self, line: str) -> str:
        """Run one ``%name args`` line; returns what to show."""
        name, _, rest = line.lstrip("%").partition(" ")
        spec = MAGICS.get(name)
        if spec is None:
            raise MagicError(f"unknown magic %{name}; %help lists them")
        return await spec.run(self, rest.strip())

    # -- the line magics --------------------------------------------------------------------

    @_magic(("%help", "this help"))
    async def _help(self, args: str) -> str:
        return help_text()

    @_magic(("%model [NAME]", "show or switch the model (e.g. sonnet, opus, a full model name)"))
    async def _model(self, args: str) -> str:
        session = await self.ensure_session()
        if not args:
            current = session.init.model if session.init else (self.options.model or "the CLI's default")
            return f"model: {current}"
        await session.set_model(args)
        self.options = replace(self.options, model=args)
        return f"model set to {args}"

    @_magic(
        ("%permissions [MODE]", "show or set the permission mode (default, acceptEdits, plan, ...)"),
        ("%permissions allow TOOL...", "pre-allow tools (e.g. Bash Read), restarting the CLI with the session kept"),
        ("%permissions headless deny|allow", "what happens to prompts when nobody can click (nbclient, papermill)"),
    )
    async def _permissions(self, args: str) -> str:
        words = _words(args, "%permissions [MODE] | allow TOOL... | headless deny|allow")
        if not words:
            return (
                f"mode: {self.options.permission_mode or 'default'}; allowed tools: "
                f"{', '.join(self.options.allowed_tools) or 'none'}; headless: {self.headless_policy}"
            )
        if words[0] == "headless":
            if len(words) != 2 or words[1] not in ("deny", "allow"):
                raise MagicError("usage: %permissions headless deny|allow")
            self.headless_policy = words[1]
            return f"headless runs will {words[1]} tool calls that need approval"
        if words[0] == "allow":
            if len(words) < 2 or not all(words[1:]):
                raise MagicError("usage: %permissions allow TOOL [TOOL...]")
            await self.restart(allowed_tools=[*self.options.allowed_tools, *words[1:]])
            return f"pre-allowed: {', '.join(self.options.allowed_tools)}"
        session = await self.ensure_session()
        await session.set_permission_mode(words[0])
        self.options = replace(self.options, permission_mode=words[0])
        return f"permission mode set to {words[0]}"

    @_magic(("%session", "the session id, the CLI, this notebook's conversation and its cost"))
    async def _session(self, args: str) -> str:
        session = self.session
        current = self.current_session_id
        if current is None:
            return "no conversation yet: run a cell first"
        lines = [f"session id: {current} (continue it later with %resume {current})"]
        if session is None:
            lines[0] += "; the CLI is not running, the next cell resumes it"
        else:
            version = session.init.claude_code_version if session.init else "?"
            lines.append(f"claude CLI {version} at {session.cli_path}")
        budget = self.options.max_budget_usd
        spent = f"cost so far ${self.spent_usd:.4f}" + (f" of a {usd(budget)} budget" if budget else "")
        where = f"notebook {self.state.notebook}" if self._store is not None else "this kernel"
        lines.append(f"{where}: {len(self.state.cells)} turns in the conversation; {spent}")
        return "\n".join(lines)

    @_magic(("%new", "start a fresh conversation (the old one stays resumable)"))
    async def _new(self, args: str) -> str:
        await self.restart(resume=None, spent_usd=0.0)
        self._leave_branch("%new")
        self.state.cells, self.state.cost_usd = [], 0.0
        self.state.session_id = self.current_session_id
        self._persist = True
        self._save()
        return "started a new conversation"

    @_magic(
        ("%resume ID", "continue an earlier conversation by its session id"),
        ("%resume last", "continue this notebook's saved conversation (e.g. in a headless run)"),
    )
    async def _resume(self, args: str) -> str:
        current = self.current_session_id
        kept = f"; still in session {current}" if current else ""
        saved = self._load_saved() if self._store is not None else None
        if args == "last":
            if saved is None or not saved.session_id:
                raise MagicError(f"this notebook has no saved conversation{kept}")
            args = saved.session_id
        try:
            # The CLI knows only the lowercase, hyphenated form; UUID() also reads {...}, urn:uuid:...
            # and upper case, which the CLI would accept and then fail to find.
            args = str(uuid.UUID(args))
        except ValueError:
            raise MagicError(f"{args!r} is not a session id (%session shows one){kept}") from None
        same_as_saved = saved is not None and saved.session_id == args
        spent = saved.cost_usd if saved is not None and same_as_saved else 0.0
        try:
            await self.restart(resume=args, spent_usd=spent)
        except Exception as exc:
            raise MagicError(f"could not resume {args}: {exc}{kept}") from exc
        self._leave_branch("%resume")
        self.state = saved if saved is not None and same_as_saved else NotebookState(self.state.notebook, args)
        self._persist = True
        self._save()
        return f"resuming session {args}; the next message continues it"

    @_magic(("%rerun [rewind|append]", "what re-running a cell does: rewind to before it (default) or append"))
    async def _rerun(self, args: str) -> str:
        if args:
            if args not in ("rewind", "append"):
                raise MagicError("usage: %rerun rewind|append")
            self.rerun = args
        if self.rerun == "rewind":
            return "re-running a cell rewinds the conversation to just before its earlier turn"
        return "re-running a cell appends it to the conversation"

    @_magic(("%undo", "put back the files the most recent cell that changed files changed"))
    async def _undo(self, args: str) -> str:
        for turn in reversed(self.state.cells):
            if turn.files_changed and not turn.files_undone:
                return await self.undo(UndoOffer(turn.prompt_uuid, tuple(turn.files_changed), self.state.session_id))
        raise MagicError("no cell in this conversation changed files (or their changes were undone)")

    @_magic(("%history", "this notebook's conversation, cell by cell, and its earlier branches"))
    async def _history(self, args: str) -> str:
        if not self.state.cells:
            lines = ["no turns in this conversation yet"]
        else:
            lines = [f"{'#':>3}  {'cost':>8}  {'first line':<50}  files changed"]
            for number, turn in enumerate(self.state.cells, 1):
                files = ", ".join(turn.files_changed) + (" (undone)" if turn.files_undone else "")
                lines.append(f"{number:>3}  ${turn.cost_usd:>7.4f}  {turn.first_line[:50]:<50}  {files}")
        lines.append(f"session {self.current_session_id}; cost so far ${self.spent_usd:.4f}")
        if self.state.branches:
            lines.append("earlier branches (resume one with %resume ID):")
            lines += [f"  {b.session_id}  {b.turns} turns  ({b.reason})" for b in self.state.branches]
        return "\n".join(lines)

    @_magic(("%budget [USD|off]", "show or cap what this conversation may spend (the CLI stops at the cap)"))
    async def _budget(self, args: str) -> str:
        if args:
            if args == "off":
                cap = None
            else:
                try:
                    cap = float(args.lstrip("$"))
                except ValueError:
                    raise MagicError("usage: %budget USD (e.g. %budget 2.50) or %budget off") from None
                if not 0 < cap < math.inf:
                    raise MagicError("a budget is a positive number of dollars; %budget off removes it")
            await self.restart(max_budget_usd=cap)
            self._save()
        cap = self.options.max_budget_usd
        if cap is None:
            return f"no budget; spent ${self.spent_usd:.4f} so far"
        return f"budget {usd(cap)}; spent ${self.spent_usd:.4f} so far"

    @_magic(("%cwd [PATH]", "show or change the CLI's working directory (restarts it, session kept)"))
    async def _cwd(self, args: str) -> str:
        if not args:
            return f"working directory: {self.options.cwd}"
        if args[0] in "\"'":  # a quoted path (the rest of the line is the path without quotes, too)
            words = _words(args, "%cwd [PATH]")
            if len(words) != 1:
                raise MagicError("usage: %cwd PATH (one path, quoted or not)")
            args = words[0]
        path = os.path.abspath(os.path.expanduser(args))
        if not os.path.isdir(path):
            raise MagicError(f"not a directory: {path}")
        await self.restart(cwd=path)
        return f"working directory: {path}"

    @_magic(
        (
            '%tool NAME "DESCRIPTION" [JSON-SCHEMA]',
            "declare a tool that you answer in a widget (restarts the CLI, session kept)",
        )
    )
    async def _tool(self, args: str) -> str:
        tool = parse_tool_declaration(args)
        full_name = f"mcp__{self.options.host_tool_server}__{tool.name}"
        if len(full_name) > _API_TOOL_NAME_MAX:
            # The CLI sends it as is, and the API would refuse every later turn.
            room = _API_TOOL_NAME_MAX - len(full_name) + len(tool.name)
            raise MagicError(f"the tool's full name {full_name} is over 64 characters: use at most {room} for NAME")
        tools = [t for t in self.options.host_tools if t.name != tool.name]
        await self.restart(host_tools=[*tools, tool])
        return f"tool mcp__{self.options.host_tool_server}__{tool.name} declared; you answer it in a widget"


def split_magics(code: str) -> tuple[list[str], str]:
    """Leading ``%`` lines of a cell, and the message after them."""
    lines = code.splitlines()
    magics = []
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("%")):
        line = lines.pop(0).strip()
        if line:
            magics.append(line)
    return magics, "\n".join(lines).strip()
