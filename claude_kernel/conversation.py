"""The state both hosts keep between cells: one Session, its options, and the line magics.

The Claude kernel and the ``%%claude`` magic each own one :class:`Conversation`; ``%model``,
``%new``, ``%resume`` and the rest are methods here, so both hosts behave the same way. Each magic
is declared once, in :data:`MAGICS`, with its usage and help: dispatch, ``%help`` and completion
all read that one table.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import textwrap
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import jsonschema

from .session import HostTool, Session, SessionOptions

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

# MCP tool names the CLI accepts (it builds mcp__<server>__<name> from them).
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


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


class Conversation:
    """One conversation with Claude Code, across cells and CLI restarts."""

    def __init__(self, options: SessionOptions | None = None, *, host_tool_server: str = "notebook") -> None:
        base = options or SessionOptions()
        self.options = replace(
            base,
            host_tool_server=host_tool_server,
            host_tools=[ASK_USER, *base.host_tools],
            cwd=base.cwd or os.getcwd(),
        )
        self.headless_policy = "deny"
        #: Host-side tools the user chose "Always allow" for (the CLI keeps its own rules for its tools).
        self.always_allowed: set[str] = set()
        self.session: Session | None = None

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

        If the new process cannot start (a bad id, a folder that is gone), the options go back to
        what they were, so the next cell continues the conversation as before.
        """
        changes.setdefault("resume", self.current_session_id)
        previous = replace(self.options, resume=self.current_session_id)
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

    async def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            # Whatever happens next, a later start resumes this conversation.
            self.options = replace(self.options, resume=session.session_id or self.options.resume)
            await session.close()

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
            if len(words) < 2:
                raise MagicError("usage: %permissions allow TOOL [TOOL...]")
            await self.restart(allowed_tools=[*self.options.allowed_tools, *words[1:]])
            return f"pre-allowed: {', '.join(self.options.allowed_tools)}"
        session = await self.ensure_session()
        await session.set_permission_mode(words[0])
        self.options = replace(self.options, permission_mode=words[0])
        return f"permission mode set to {words[0]}"

    @_magic(("%session", "the session id, the CLI version and the cost so far"))
    async def _session(self, args: str) -> str:
        session = self.session
        if session is None or session.session_id is None:
            if self.current_session_id:
                return f"session id: {self.current_session_id} (the CLI is not running; the next cell resumes it)"
            return "no conversation yet: run a cell first"
        version = session.init.claude_code_version if session.init else "?"
        return (
            f"session id: {session.session_id} (continue it later with %resume {session.session_id})\n"
            f"claude CLI {version}; cost so far ${session.total_cost_usd:.4f}"
        )

    @_magic(("%new", "start a fresh conversation"))
    async def _new(self, args: str) -> str:
        await self.restart(resume=None)
        return "started a new conversation"

    @_magic(("%resume ID", "continue an earlier conversation (after a kernel restart, say)"))
    async def _resume(self, args: str) -> str:
        current = self.current_session_id
        kept = f"; still in session {current}" if current else ""
        try:
            uuid.UUID(args)
        except ValueError:
            raise MagicError(f"{args!r} is not a session id (%session shows one){kept}") from None
        try:
            await self.restart(resume=args)
        except Exception as exc:
            raise MagicError(f"could not resume {args}: {exc}{kept}") from exc
        return f"resuming session {args}; the next message continues it"

    @_magic(("%cwd [PATH]", "show or change the CLI's working directory (restarts it, session kept)"))
    async def _cwd(self, args: str) -> str:
        if not args:
            return f"working directory: {self.options.cwd}"
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
