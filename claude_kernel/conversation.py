"""The state both hosts keep between cells: one Session, its options, and the line magics.

The Claude kernel and the ``%%claude`` magic each own one :class:`Conversation`; ``%model``,
``%new``, ``%resume`` and the rest are methods here, so both hosts behave the same way.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import replace
from typing import Any

from ._gateway import default_cwd
from .session import HostTool, Session, SessionOptions

__all__ = ["ASK_USER", "Conversation", "MagicError"]

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

HELP = """\
Line magics (each on its own line at the top of a cell; the rest of the cell is the message):

  %help                         this help
  %model [NAME]                 show or switch the model (e.g. sonnet, opus, a full model name)
  %permissions [MODE]           show or set the permission mode (default, acceptEdits, plan, ...)
  %permissions allow TOOL...    pre-allow tools (e.g. Bash Read), restarting the CLI with the session kept
  %permissions headless deny|allow
                                what happens to prompts when nobody can click (nbclient, papermill)
  %session                      the session id, the CLI version and the cost so far
  %new                          start a fresh conversation
  %resume ID                    continue an earlier conversation (after a kernel restart, say)
  %cwd [PATH]                   show or change the CLI's working directory (restarts it, session kept)
  %tool NAME "DESCRIPTION" [JSON-SCHEMA]
                                declare a tool that you answer in a widget (restarts the CLI, session kept)
"""


class MagicError(Exception):
    """A line magic was used wrongly; the message says how to use it."""


class Conversation:
    """One conversation with Claude Code, across cells and CLI restarts."""

    def __init__(self, options: SessionOptions | None = None, *, host_tool_server: str = "notebook") -> None:
        base = options or SessionOptions()
        self.options = replace(
            base,
            host_tool_server=host_tool_server,
            host_tools=[ASK_USER, *base.host_tools],
            cwd=base.cwd or default_cwd(),
        )
        self.headless_policy = "deny"
        #: Host-side tools the user chose "Always allow" for (the CLI keeps its own rules for its tools).
        self.always_allowed: set[str] = set()
        self.session: Session | None = None

    async def ensure_session(self) -> Session:
        if self.session is None:
            self.session = await Session.spawn(self.options)
        return self.session

    async def restart(self, **changes: Any) -> None:
        """Start a new process with changed options; it keeps the conversation unless ``resume`` is given."""
        changes.setdefault("resume", self.session.session_id if self.session else self.options.resume)
        await self.close()
        self.options = replace(self.options, **changes)
        self.session = await Session.spawn(self.options)

    async def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await session.close()

    # -- line magics ------------------------------------------------------------------------

    async def run_magic(self, line: str) -> str:
        """Run one ``%name args`` line; returns what to show."""
        name, _, rest = line.lstrip("%").partition(" ")
        handler = getattr(self, f"_magic_{name}", None)
        if handler is None:
            raise MagicError(f"unknown magic %{name}; %help lists them")
        result: str = await handler(rest.strip())
        return result

    async def _magic_help(self, args: str) -> str:
        return HELP

    async def _magic_model(self, args: str) -> str:
        session = await self.ensure_session()
        if not args:
            current = session.init.model if session.init else (self.options.model or "the CLI's default")
            return f"model: {current}"
        await session.set_model(args)
        self.options = replace(self.options, model=args)
        return f"model set to {args}"

    async def _magic_permissions(self, args: str) -> str:
        words = shlex.split(args)
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

    async def _magic_session(self, args: str) -> str:
        session = self.session
        if session is None or session.session_id is None:
            return "no conversation yet: run a cell first"
        version = session.init.claude_code_version if session.init else "?"
        return (
            f"session id: {session.session_id} (continue it later with %resume {session.session_id})\n"
            f"claude CLI {version}; cost so far ${session.total_cost_usd:.4f}"
        )

    async def _magic_new(self, args: str) -> str:
        await self.restart(resume=None)
        return "started a new conversation"

    async def _magic_resume(self, args: str) -> str:
        if not args:
            raise MagicError("usage: %resume SESSION_ID (%session shows the current one)")
        await self.restart(resume=args)
        return f"resuming session {args}; the next message continues it"

    async def _magic_cwd(self, args: str) -> str:
        if not args:
            return f"working directory: {self.options.cwd}"
        path = os.path.abspath(os.path.expanduser(args))
        if not os.path.isdir(path):
            raise MagicError(f"not a directory: {path}")
        await self.restart(cwd=path)
        return f"working directory: {path}"

    async def _magic_tool(self, args: str) -> str:
        words = shlex.split(args)
        if len(words) < 2:
            raise MagicError('usage: %tool NAME "DESCRIPTION" [JSON-SCHEMA]')
        try:
            schema = json.loads(" ".join(words[2:])) if len(words) > 2 else {"type": "object", "properties": {}}
        except ValueError as exc:
            raise MagicError(f"the input schema is not JSON: {exc}") from exc
        tools = [t for t in self.options.host_tools if t.name != words[0]]
        await self.restart(host_tools=[*tools, HostTool(words[0], words[1], schema)])
        return f"tool mcp__{self.options.host_tool_server}__{words[0]} declared; you answer it in a widget"


def split_magics(code: str) -> tuple[list[str], str]:
    """Leading ``%`` lines of a cell, and the message after them."""
    lines = code.splitlines()
    magics = []
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("%")):
        line = lines.pop(0).strip()
        if line:
            magics.append(line)
    return magics, "\n".join(lines).strip()
