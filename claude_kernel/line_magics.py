"""The line magics: ``%model``, ``%new``, ``%resume`` and the rest, the same in both hosts.

Each magic is declared once, with its usage and help, in :data:`MAGICS`: dispatch, ``%help``,
Shift-Tab and Tab completion all read that one table. A magic parses its arguments, asks the
:class:`~claude_kernel.conversation.Conversation` for the change, and says what it did.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shlex
import textwrap
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .agent_progress import task_kind
from .conversation import Conversation, MagicError, UndoNeedsConfirmation
from .notebook_state import KEPT_BRANCHES
from .session import HostTool
from .turn import usd

__all__ = ["MAGICS", "MagicError", "MagicSpec", "help_text", "magic_docs", "run_magic", "split_magics"]

# MCP tool names the CLI accepts (it builds mcp__<server>__<name> from them).
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: The Messages API refuses a request with a longer tool name ("String should have at most 64 characters").
_API_TOOL_NAME_MAX = 64


MagicHandler = Callable[[Conversation, str], Awaitable[str]]


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
        + "\n\nSlash commands (a message that starts with /) go to Claude Code: /compact, /clear, /context, "
        "/cost, your own commands (.claude/commands) and skills; Tab after / lists them. Commands that need "
        "Claude Code's terminal (/help among them) do not work in a notebook.\n"
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
    # Imported here, not at the top: importing jsonschema takes over a second (its rfc3987 format
    # checker builds a grammar), which every kernel start would wait for, for a rare magic.
    import jsonschema

    try:
        # The API checks tool schemas against JSON Schema 2020-12 and would reject every later turn.
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise MagicError(f"the input schema is not a valid JSON Schema: {exc.message}") from exc
    return HostTool(name, description, {"type": "object", **schema})


def split_magics(code: str) -> tuple[list[str], str]:
    """Leading ``%`` lines of a cell, and the message after them."""
    lines = code.splitlines()
    magics = []
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("%")):
        line = lines.pop(0).strip()
        if line:
            magics.append(line)
    return magics, "\n".join(lines).strip()


async def run_magic(conversation: Conversation, line: str) -> str:
    """Run one ``%name args`` line; returns what to show."""
    name, _, rest = line.lstrip("%").partition(" ")
    spec = MAGICS.get(name)
    if spec is None:
        raise MagicError(f"unknown magic %{name}; %help lists them")
    return await spec.run(conversation, rest.strip())


# -- the magics, in the order %help lists them ----------------------------------------------


@_magic(("%help", "this help"))
async def _help(conversation: Conversation, args: str) -> str:
    return help_text()


@_magic(("%model [NAME]", "show or switch the model (e.g. sonnet, opus, a full model name)"))
async def _model(conversation: Conversation, args: str) -> str:
    session = await conversation.ensure_session()
    if not args:
        current = session.init.model if session.init else (conversation.options.model or "the CLI's default")
        return f"model: {current}"
    await conversation.set_model(args)
    return f"model set to {args}"


@_magic(
    ("%permissions [MODE]", "show or set the permission mode (default, acceptEdits, plan, ...)"),
    ("%permissions allow TOOL...", "pre-allow tools (e.g. Bash Read), restarting the CLI with the session kept"),
    ("%permissions headless deny|allow", "what happens to prompts when nobody can click (nbclient, papermill)"),
)
async def _permissions(conversation: Conversation, args: str) -> str:
    words = _words(args, "%permissions [MODE] | allow TOOL... | headless deny|allow")
    if not words:
        return (
            f"mode: {conversation.permission_mode}; allowed tools: "
            f"{', '.join(conversation.options.allowed_tools) or 'none'}; headless: {conversation.headless_policy}"
        )
    if words[0] == "headless":
        if len(words) != 2 or words[1] not in ("deny", "allow"):
            raise MagicError("usage: %permissions headless deny|allow")
        conversation.headless_policy = words[1]
        return f"headless runs will {words[1]} tool calls that need approval"
    if words[0] == "allow":
        if len(words) < 2 or not all(words[1:]):
            raise MagicError("usage: %permissions allow TOOL [TOOL...]")
        await conversation.allow_tools(words[1:])
        return f"pre-allowed: {', '.join(conversation.options.allowed_tools)}"
    await conversation.set_permission_mode(words[0])
    return f"permission mode set to {words[0]}"


@_magic(("%session", "the session id, the CLI, this notebook's conversation and its cost"))
async def _session(conversation: Conversation, args: str) -> str:
    session = conversation.session
    current = conversation.current_session_id
    if current is None:
        return "no conversation yet: run a cell first"
    lines = [f"session id: {current} (continue it later with %resume {current})"]
    if session is None:
        lines[0] += "; the CLI is not running, the next cell resumes it"
    else:
        version = session.init.claude_code_version if session.init else "?"
        lines.append(f"claude CLI {version} at {session.cli_path}")
    budget = conversation.options.max_budget_usd
    spent = f"cost so far ${conversation.spent_usd:.4f}" + (f" of a {usd(budget)} budget" if budget else "")
    where = f"notebook {conversation.notebook}" if conversation.notebook is not None else "this kernel"
    lines.append(f"{where}: {len(conversation.state.cells)} turns in the conversation; {spent}")
    if conversation.history_note:
        lines.append(conversation.history_note)
    running = conversation.background_tasks
    if running:
        lines.append("running in the background (`%stop` stops them):")
        lines += [f"  {_task_line(task_id, task)}" for task_id, task in running.items()]
    return "\n".join(lines)


def _task_line(task_id: str, task: dict[str, Any]) -> str:
    return f"{task_kind(task.get('task_type'))} \u201c{task.get('description') or '?'}\u201d (task {task_id})"


@_magic(("%stop [TASK_ID ...]", "stop work running in the background: the tasks named, or all of it"))
async def _stop(conversation: Conversation, args: str) -> str:
    running = conversation.background_tasks
    if not running:
        return "nothing is running in the background"
    chosen = _words(args, "%stop [TASK_ID ...]") or list(running)
    unknown = [task_id for task_id in chosen if task_id not in running]
    if unknown:
        raise MagicError(f"no background task {', '.join(unknown)}; running: {', '.join(running)}")
    await conversation.stop_background(chosen)
    return "stopped " + "; ".join(_task_line(task_id, running[task_id]) for task_id in chosen)


@_magic(("%new", "start a fresh conversation (the old one stays resumable)"))
async def _new(conversation: Conversation, args: str) -> str:
    await conversation.start_new()
    return "started a new conversation"


@_magic(
    ("%resume ID", "continue an earlier conversation by its session id"),
    ("%resume last", "continue this notebook's saved conversation (e.g. in a headless run)"),
)
async def _resume(conversation: Conversation, args: str) -> str:
    current = conversation.current_session_id
    kept = f"; still in session {current}" if current else ""
    if args == "last":
        saved = conversation.saved_session_id()
        if not saved:
            raise MagicError(f"this notebook has no saved conversation{kept}")
        args = saved
    try:
        # The CLI knows only the lowercase, hyphenated form; UUID() also reads {...}, urn:uuid:...
        # and upper case, which the CLI would accept and then fail to find.
        args = str(uuid.UUID(args))
    except ValueError:
        raise MagicError(f"{args!r} is not a session id (%session shows one){kept}") from None
    try:
        await conversation.resume(args)
    except Exception as exc:
        raise MagicError(f"could not resume {args}: {exc}{kept}") from exc
    return f"resuming session {args}; the next message continues it"


@_magic(("%rerun [rewind|append]", "what re-running a cell does: rewind to before it (default) or append"))
async def _rerun(conversation: Conversation, args: str) -> str:
    if args:
        if args not in ("rewind", "append"):
            raise MagicError("usage: %rerun rewind|append")
        conversation.rerun = args
    if conversation.rerun == "rewind":
        return "re-running a cell rewinds the conversation to just before its earlier turn"
    return "re-running a cell appends it to the conversation"


@_magic(
    ("%undo", "put back the files the most recent cell that changed files changed"),
    ("%undo force", "the same, even where it loses edits made since, deletes files or undoes later cells"),
)
async def _undo(conversation: Conversation, args: str) -> str:
    if args not in ("", "force"):
        raise MagicError("usage: %undo [force]")
    try:
        return await conversation.undo_last(confirmed=args == "force")
    except UndoNeedsConfirmation as exc:
        raise UndoNeedsConfirmation(f"{exc} `%undo force` goes ahead.") from None


@_magic(("%attach PATH", "send an image file with this cell's message (an @path mention in it works too)"))
async def _attach(conversation: Conversation, args: str) -> str:
    try:
        return conversation.attachments.attach(args, conversation.options.cwd or ".")
    except ValueError as exc:  # ImageError included: the message names the file and what is wrong
        raise MagicError(str(exc)) from exc


@_magic(("%history", "this notebook's conversation, cell by cell, and its earlier branches"))
async def _history(conversation: Conversation, args: str) -> str:
    if not conversation.state.cells:
        lines = ["no turns in this conversation yet"]
    else:
        lines = [f"{'#':>3}  {'cost':>8}  {'first line':<50}  files changed"]
        for number, turn in enumerate(conversation.state.cells, 1):
            files = ", ".join(turn.files_changed) + (" (undone)" if turn.files_undone else "")
            lines.append(f"{number:>3}  ${turn.cost_usd:>7.4f}  {turn.first_line[:50]:<50}  {files}")
    if conversation.state.cleared:
        lines.append("out of the conversation since /clear (re-running one sends it as a new message):")
        lines += [f"  {turn.first_line[:60]}  ${turn.cost_usd:.4f}" for turn in conversation.state.cleared]
    lines.append(f"session {conversation.current_session_id}; cost so far ${conversation.spent_usd:.4f}")
    if conversation.state.branches:
        lines.append(
            f"earlier branches, the {KEPT_BRANCHES} newest kept (resume one with %resume ID; "
            "turns a rewind dropped in place are gone from the conversation and cannot be resumed):"
        )
        lines += [
            f"  {b.session_id}  {b.turns} turns  ({b.reason}{'' if b.resumable else '; dropped in place'})"
            for b in conversation.state.branches
        ]
    return "\n".join(lines)


@_magic(("%budget [USD|off]", "show or cap what this conversation may spend (the CLI stops at the cap)"))
async def _budget(conversation: Conversation, args: str) -> str:
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
        await conversation.set_budget(cap)
    cap = conversation.options.max_budget_usd
    if cap is None:
        return f"no budget; spent ${conversation.spent_usd:.4f} so far"
    return f"budget {usd(cap)}; spent ${conversation.spent_usd:.4f} so far"


@_magic(("%cwd [PATH]", "show or change the CLI's working directory (restarts it, session kept)"))
async def _cwd(conversation: Conversation, args: str) -> str:
    if not args:
        return f"working directory: {conversation.options.cwd}"
    if args[0] in "\"'":  # a quoted path (the rest of the line is the path without quotes, too)
        words = _words(args, "%cwd [PATH]")
        if len(words) != 1:
            raise MagicError("usage: %cwd PATH (one path, quoted or not)")
        args = words[0]
    path = os.path.abspath(os.path.expanduser(args))
    if not os.path.isdir(path):
        raise MagicError(f"not a directory: {path}")
    await conversation.set_cwd(path)
    return f"working directory: {path}"


@_magic(
    (
        '%tool NAME "DESCRIPTION" [JSON-SCHEMA]',
        "declare a tool that you answer in a widget (restarts the CLI, session kept)",
    )
)
async def _tool(conversation: Conversation, args: str) -> str:
    tool = parse_tool_declaration(args)
    full_name = f"mcp__{conversation.options.host_tool_server}__{tool.name}"
    if len(full_name) > _API_TOOL_NAME_MAX:
        # The CLI sends it as is, and the API would refuse every later turn.
        room = _API_TOOL_NAME_MAX - len(full_name) + len(tool.name)
        raise MagicError(f"the tool's full name {full_name} is over 64 characters: use at most {room} for NAME")
    await conversation.declare_tool(tool)
    return f"tool mcp__{conversation.options.host_tool_server}__{tool.name} declared; you answer it in a widget"
