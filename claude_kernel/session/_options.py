"""Session options, finding the ``claude`` executable, and the command line built from both."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._control import HostTool
from ._errors import CLINotFoundError

__all__ = ["SessionOptions", "build_argv", "build_env", "bundled_cli", "find_cli"]

# The pinned CLI: the official claude-agent-sdk wheel (the `cli` extra) ships it as a native binary.
_BUNDLED_PACKAGE = "claude_agent_sdk"
_BUNDLED_CLI = ("_bundled", "claude.exe" if os.name == "nt" else "claude")

_CHECKPOINTING = "CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING"

_INSTALL_HINT = (
    "Install the pinned CLI with `pip install 'claude-kernel[cli]'` (no Node needed), or put Claude Code "
    "on PATH (`npm install -g @anthropic-ai/claude-code`, or its native installer), or point the "
    "CLAUDE_KERNEL_CLI environment variable at a `claude` executable."
)


@dataclass(frozen=True)
class SessionOptions:
    """How to start the CLI. Every field is optional; the defaults suit an interactive host.

    :param cli_path: the ``claude`` executable; by default ``$CLAUDE_KERNEL_CLI``, then the pinned
        CLI of the ``cli`` extra, then ``claude`` on ``PATH`` (see :func:`find_cli`).
    :param env: variables added to (and overriding) the inherited environment.
    :param include_partial_messages: stream text as it is generated (:class:`TextDelta` events).
    :param permission_prompts: route the CLI's "ask" decisions to the host as
        :class:`PermissionRequest` events; without them those calls are denied automatically.
    :param host_tools: tools the host answers itself, served as the SDK MCP server
        ``host_tool_server``; they are pre-allowed, since answering them is the host's decision.
    :param resume: a session id to continue.
    :param resume_session_at: with ``resume``, keep the conversation only up to this transcript
        entry (the ``uuid`` of an ``assistant`` or ``user`` line, e.g. ``Result.last_message_uuid``).
    :param fork_session: with ``resume``, continue under a new session id, leaving the resumed one
        as it was; the session mints the new id, so ``Session.session_id`` is known at once.
    :param resume_drops_turn: with ``resume_session_at``, the uuid of the one prompt whose turn the
        truncation may drop; the CLI refuses to start if it would drop anything else.
    :param file_checkpointing: let the CLI record file changes so ``Session.rewind_files`` can
        restore them (``CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING=1``).
    :param max_budget_usd: what this session may spend in all, across restarts: each process gets
        ``--max-budget-usd`` with what is left, and ``send_message`` refuses once nothing is.
    :param spent_usd: what the conversation had already cost before this Session (a conversation
        continued by a new Session object); it starts ``total_cost_usd`` and counts against the budget.
    :param extra_args: appended to the command line as they are.
    """

    cli_path: str | None = None
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    model: str | None = None
    permission_mode: str | None = None
    allowed_tools: Sequence[str] = ()
    disallowed_tools: Sequence[str] = ()
    system_prompt: str | None = None
    append_system_prompt: str | None = None
    resume: str | None = None
    include_partial_messages: bool = True
    host_tools: Sequence[HostTool] = ()
    host_tool_server: str = "host"
    permission_prompts: bool = True
    extra_args: Sequence[str] = ()
    resume_session_at: str | None = None
    fork_session: bool = False
    resume_drops_turn: str | None = None
    file_checkpointing: bool = True
    max_budget_usd: float | None = None
    spent_usd: float = 0.0

    def __post_init__(self) -> None:
        if self.spent_usd < 0:
            raise ValueError(f"spent_usd cannot be negative, not {self.spent_usd!r}")
        if self.max_budget_usd is not None and not self.max_budget_usd > 0:
            raise ValueError(f"max_budget_usd must be a positive number of dollars, not {self.max_budget_usd!r}")
        if (self.resume_session_at or self.fork_session) and not self.resume:
            raise ValueError("resume_session_at and fork_session need resume (the session id to start from)")
        if self.resume_drops_turn and not self.resume_session_at:
            raise ValueError("resume_drops_turn needs resume_session_at (the entry to rewind to)")


def bundled_cli() -> str | None:
    """The CLI inside an installed ``claude-agent-sdk`` wheel, or None.

    Found without importing the package: importing it would load the SDK and its MCP dependencies,
    and only the binary is used.
    """
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder).joinpath(*_BUNDLED_CLI)
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_cli(cli_path: str | None = None) -> str:
    """Resolve the ``claude`` executable; the first of these wins:

    1. ``cli_path`` (``SessionOptions.cli_path``), then ``$CLAUDE_KERNEL_CLI``: a path or a command
       name; an explicit choice that does not exist is an error, never silently replaced;
    2. the CLI bundled in an installed ``claude-agent-sdk`` (``pip install 'claude-kernel[cli]'``
       pins the version the tests run), so a Python-only install needs no Node;
    3. ``claude`` on ``PATH`` (npm's or the native installer's).

    ``Session.cli_path`` tells which one a session runs.
    """
    explicit = cli_path or os.environ.get("CLAUDE_KERNEL_CLI")
    if explicit:
        resolved = shutil.which(explicit)
        if resolved is None:
            raise CLINotFoundError(f"the claude CLI {explicit!r} does not exist or is not executable. " + _INSTALL_HINT)
        return resolved
    found = bundled_cli() or shutil.which("claude")
    if found is None:
        raise CLINotFoundError("the claude CLI was not found. " + _INSTALL_HINT)
    return found


def host_tool_names(options: SessionOptions) -> list[str]:
    return [f"mcp__{options.host_tool_server}__{tool.name}" for tool in options.host_tools]


def build_argv(
    cli: str, options: SessionOptions, *, session_id: str | None = None, budget_left: float | None = None
) -> list[str]:
    """The command line. ``-p`` plus stream-json both ways keeps one process for many turns.

    ``session_id`` names a forked session; ``budget_left`` is what the process may still spend.
    """
    argv = [cli, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"]
    if options.include_partial_messages:
        argv.append("--include-partial-messages")
    if options.permission_prompts:
        argv += ["--permission-prompt-tool", "stdio"]
    if options.model:
        argv += ["--model", options.model]
    if options.permission_mode:
        argv += ["--permission-mode", options.permission_mode]
    allowed = [*options.allowed_tools, *host_tool_names(options)]
    if allowed:
        argv += ["--allowedTools", ",".join(allowed)]
    if options.disallowed_tools:
        argv += ["--disallowedTools", ",".join(options.disallowed_tools)]
    if options.system_prompt is not None:
        argv += ["--system-prompt", options.system_prompt]
    if options.append_system_prompt:
        argv += ["--append-system-prompt", options.append_system_prompt]
    if options.host_tools:
        # alwaysLoad: list the host's few tools in every request rather than deferring them behind
        # the CLI's tool search, so the model sees them without having to search first.
        server = {"type": "sdk", "name": options.host_tool_server, "alwaysLoad": True}
        argv += ["--mcp-config", json.dumps({"mcpServers": {options.host_tool_server: server}})]
    if options.resume:
        # The = form: a value starting with "-" would otherwise parse as a flag.
        argv.append(f"--resume={options.resume}")
    if options.resume_session_at:
        argv.append(f"--resume-session-at={options.resume_session_at}")
    if options.resume_drops_turn:
        argv.append(f"--resume-drops-turn={options.resume_drops_turn}")
    if options.fork_session:
        argv.append("--fork-session")
    if session_id:
        argv.append(f"--session-id={session_id}")
    if budget_left is not None:
        argv.append(f"--max-budget-usd={budget_left:.10g}")
    argv += list(options.extra_args)
    return argv


def build_env(options: SessionOptions) -> dict[str, str]:
    env = dict(os.environ)
    if options.file_checkpointing:
        env[_CHECKPOINTING] = "1"
    else:
        env.pop(_CHECKPOINTING, None)
    env.update(options.env)
    # Set inside a Claude Code session; it can make a nested CLI refuse to start.
    env.pop("CLAUDECODE", None)
    if options.cwd:
        env["PWD"] = options.cwd
    return env
