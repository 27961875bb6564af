"""Typed events, and the lenient parser that turns the CLI's stdout messages into them.

The parser never raises on a message it does not understand: an unknown ``type`` becomes an
:class:`UnknownEvent` carrying the raw JSON, and unknown fields are ignored, because the CLI's
protocol grows new message types and fields from one release to the next.

Every event parsed from a stdout line that carries a ``uuid`` exposes it as ``uuid`` (``""`` when
the line has none). The uuids of ``assistant`` and ``user`` lines are the entries of the CLI's
transcript, the points a conversation can be rewound to (``Session.rewind``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AssistantMessage",
    "ContentBlock",
    "Event",
    "HostToolRequest",
    "OwnTurnStarted",
    "PermissionRequest",
    "RequestCancelled",
    "Result",
    "StreamEvent",
    "SystemInit",
    "SystemMessage",
    "TextBlock",
    "TextDelta",
    "ThinkingBlock",
    "ThinkingDelta",
    "ToolInputDelta",
    "ToolResultBlock",
    "ToolUseBlock",
    "UnknownBlock",
    "UnknownEvent",
    "UserMessage",
    "parse_message",
]

JSON = dict[str, Any]


# -- content blocks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TextBlock:
    text: str


@dataclass(frozen=True)
class ThinkingBlock:
    thinking: str


@dataclass(frozen=True)
class ToolUseBlock:
    """A tool call the model made; ``input`` holds its arguments as the model wrote them."""

    id: str
    name: str
    input: JSON


@dataclass(frozen=True)
class ToolResultBlock:
    """A tool's result as the model sees it; ``content`` is text or a list of API blocks."""

    tool_use_id: str
    content: str | list[JSON]
    is_error: bool


@dataclass(frozen=True)
class UnknownBlock:
    type: str
    raw: JSON = field(repr=False)


ContentBlock = TextBlock | ThinkingBlock | ToolUseBlock | ToolResultBlock | UnknownBlock


def _parse_block(block: JSON) -> ContentBlock:
    kind = block.get("type", "")
    if kind == "text":
        return TextBlock(block.get("text", ""))
    if kind == "thinking":
        return ThinkingBlock(block.get("thinking", ""))
    if kind == "tool_use":
        return ToolUseBlock(block.get("id", ""), block.get("name", ""), block.get("input") or {})
    if kind == "tool_result":
        content = block.get("content")
        return ToolResultBlock(
            block.get("tool_use_id", ""),
            content if isinstance(content, (str, list)) else "",
            bool(block.get("is_error")),
        )
    return UnknownBlock(kind, block)


def _parse_content(content: Any) -> list[ContentBlock]:
    if isinstance(content, str):
        return [TextBlock(content)]
    if isinstance(content, list):
        return [_parse_block(b) for b in content if isinstance(b, dict)]
    return []


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemInit:
    """Sent by the CLI at the start of every turn: who we are talking to and with which tools."""

    session_id: str
    model: str
    cwd: str
    tools: list[str]
    mcp_servers: list[JSON]
    permission_mode: str
    claude_code_version: str
    raw: JSON = field(repr=False)
    uuid: str = ""


@dataclass(frozen=True)
class SystemMessage:
    """Any other ``system`` message (``status``, ``permission_denied``, ``thinking_tokens``, ...)."""

    subtype: str
    raw: JSON = field(repr=False)
    uuid: str = ""


@dataclass(frozen=True)
class AssistantMessage:
    """One complete content block of the model's reply (the CLI sends one block per line)."""

    message_id: str
    model: str
    content: list[ContentBlock]
    parent_tool_use_id: str | None
    aborted: bool
    error: str | None
    raw: JSON = field(repr=False)
    uuid: str = ""


@dataclass(frozen=True)
class UserMessage:
    """A user-role message the CLI reports: tool results it produced, or interruption markers."""

    content: list[ContentBlock]
    parent_tool_use_id: str | None
    tool_use_result: Any
    raw: JSON = field(repr=False)
    uuid: str = ""


@dataclass(frozen=True, kw_only=True)
class _BlockDelta:
    """Where a streamed fragment belongs: content block ``index`` of message ``message_id``."""

    index: int
    message_id: str
    uuid: str = ""


@dataclass(frozen=True)
class TextDelta(_BlockDelta):
    """A fragment of answer text, streamed before the complete :class:`AssistantMessage`."""

    text: str


@dataclass(frozen=True)
class ThinkingDelta(_BlockDelta):
    thinking: str


@dataclass(frozen=True)
class ToolInputDelta(_BlockDelta):
    """A fragment of a tool call's JSON input, as the model writes it."""

    partial_json: str


@dataclass(frozen=True)
class StreamEvent:
    """Any other partial-message event (``message_start``, ``content_block_start``, ...)."""

    event_type: str
    index: int | None
    message_id: str
    data: JSON = field(repr=False)
    uuid: str = ""


@dataclass(frozen=True)
class Result:
    """The end of a turn (not of the session).

    ``total_cost_usd`` is what the CLI reports, cumulative for its process; ``cost_usd`` is this
    turn's share, which the session works out so callers never double count.

    The session also fills in ``prompt_uuid``, the uuid of the user message that began the turn
    (what ``Session.send_message`` returned; ``Session.rewind_files`` takes it), and
    ``last_message_uuid``, the last transcript entry of the turn (``Session.rewind(to=...)`` keeps
    everything up to the end of this turn). ``uuid`` is the result line's own, which is not a
    transcript entry.

    When the process ends while its turn is being interrupted (the CLI ignored the interrupt and was
    signalled, or it crashed meanwhile), the session makes the Result up: ``terminal_reason`` is
    ``"aborted_process_exited"`` (so ``interrupted`` is true), ``errors`` says what happened, and
    ``raw`` is empty.
    """

    subtype: str
    is_error: bool
    session_id: str
    text: str | None
    errors: list[str]
    total_cost_usd: float
    cost_usd: float
    usage: JSON
    duration_ms: int
    duration_api_ms: int
    num_turns: int
    stop_reason: str | None
    terminal_reason: str | None
    api_error_status: int | None
    permission_denials: list[JSON]
    raw: JSON = field(repr=False)
    uuid: str = ""
    prompt_uuid: str | None = None
    last_message_uuid: str | None = None

    @property
    def error_text(self) -> str:
        """The CLI's own words for a failed turn (its result text and errors), or the subtype."""
        return " ".join([self.text or "", *self.errors]).strip() or self.subtype

    @property
    def interrupted(self) -> bool:
        """True when the turn ended because it was interrupted."""
        return bool(self.terminal_reason and self.terminal_reason.startswith("aborted"))

    @property
    def origin(self) -> dict[str, Any] | None:
        """Why the CLI took this turn by itself (``{"kind": "task-notification", ...}``); None for a
        turn that answers a message of the host's."""
        origin = self.raw.get("origin")
        return origin if isinstance(origin, dict) else None

    @property
    def budget_exceeded(self) -> bool:
        """True when the CLI stopped the turn because ``--max-budget-usd`` was reached."""
        return self.subtype == "error_max_budget_usd"


@dataclass(frozen=True)
class PermissionRequest:
    """The CLI asks whether a tool may run; answer with ``Session.allow`` or ``Session.deny``."""

    request_id: str
    tool_name: str
    input: JSON
    tool_use_id: str
    suggestions: list[JSON]
    description: str
    blocked_path: str | None
    raw: JSON = field(repr=False)


@dataclass(frozen=True)
class HostToolRequest:
    """The model called one of the host's tools; answer with ``Session.send_tool_result``."""

    request_id: str
    tool_name: str
    input: JSON
    tool_use_id: str


@dataclass(frozen=True)
class RequestCancelled:
    """The CLI no longer wants an answer to an earlier request (usually after an interrupt)."""

    request_id: str
    tool_use_id: str


@dataclass(frozen=True)
class OwnTurnStarted:
    """The CLI began a turn by itself: no message of the host's started it.

    CLI 2.1.332 and later do this when a background agent reports (the turn answers a
    ``[SYSTEM NOTIFICATION - NOT USER INPUT]`` message the CLI writes into the conversation) or a
    wake-up the model scheduled comes due. The turn's events follow on the session's side channel
    (:meth:`Session.next_side_event`) and end with its :class:`Result`, whose ``origin`` says why
    the CLI took it. ``notified`` names the tool call (an ``Agent``, a background ``Bash``) whose
    task reported just before, when one did.
    """

    notified: str | None = None
    #: What woke the CLI when it was not a task: ``loop_wakeup`` for a ``ScheduleWakeup``.
    source: str | None = None


@dataclass(frozen=True)
class UnknownEvent:
    """A stdout message of a type this version does not model, kept whole."""

    type: str
    raw: JSON = field(repr=False)


Event = (
    SystemInit
    | SystemMessage
    | AssistantMessage
    | UserMessage
    | TextDelta
    | ThinkingDelta
    | ToolInputDelta
    | StreamEvent
    | Result
    | PermissionRequest
    | HostToolRequest
    | RequestCancelled
    | OwnTurnStarted
    | UnknownEvent
)


def _uuid(message: JSON) -> str:
    value = message.get("uuid")
    return value if isinstance(value, str) else ""


#: The streamed deltas, by ``delta.type``: their class and the field that holds the fragment.
_DELTAS: dict[str, tuple[type[TextDelta | ThinkingDelta | ToolInputDelta], str]] = {
    "text_delta": (TextDelta, "text"),
    "thinking_delta": (ThinkingDelta, "thinking"),
    "input_json_delta": (ToolInputDelta, "partial_json"),
}


def _parse_stream_event(message: JSON) -> Event:
    event = message.get("event") or {}
    event_type = event.get("type", "")
    index = event.get("index")
    message_id = message.get("api_message_id") or ""
    uuid = _uuid(message)
    if event_type == "content_block_delta":
        delta = event.get("delta") or {}
        known = _DELTAS.get(delta.get("type", ""))
        if known is not None:
            kind, name = known
            # One of these per streamed fragment: the hot path of a long answer. A frozen
            # dataclass's __init__ sets each field through object.__setattr__, which costs more
            # than the rest of the parsing; filling the instance's __dict__ at once halves it.
            # tests/test_events.py checks that this builds exactly what the constructor would.
            fragment = object.__new__(kind)
            vars(fragment).update(
                {name: delta.get(name, ""), "index": index or 0, "message_id": message_id, "uuid": uuid}
            )
            return fragment
    return StreamEvent(event_type, index, message_id, event, uuid)


def _parse_result(message: JSON) -> Result:
    errors = message.get("errors")
    text = message.get("result")
    return Result(
        subtype=message.get("subtype", ""),
        is_error=bool(message.get("is_error")),
        session_id=message.get("session_id", ""),
        text=text if isinstance(text, str) else None,
        errors=[str(e) for e in errors] if isinstance(errors, list) else [],
        total_cost_usd=float(message.get("total_cost_usd") or 0.0),
        cost_usd=float(message.get("total_cost_usd") or 0.0),
        usage=message.get("usage") or {},
        duration_ms=int(message.get("duration_ms") or 0),
        duration_api_ms=int(message.get("duration_api_ms") or 0),
        num_turns=int(message.get("num_turns") or 0),
        stop_reason=message.get("stop_reason"),
        terminal_reason=message.get("terminal_reason"),
        api_error_status=message.get("api_error_status"),
        permission_denials=message.get("permission_denials") or [],
        raw=message,
        uuid=_uuid(message),
    )


def parse_message(message: JSON) -> Event:
    """Turn one stdout message (not a control message) into a typed event."""
    kind = message.get("type", "")
    if kind == "stream_event":
        return _parse_stream_event(message)
    if kind == "assistant":
        body = message.get("message") or {}
        return AssistantMessage(
            message_id=body.get("id", ""),
            model=body.get("model", ""),
            content=_parse_content(body.get("content")),
            parent_tool_use_id=message.get("parent_tool_use_id"),
            aborted=bool(message.get("aborted")),
            error=message.get("error"),
            raw=message,
            uuid=_uuid(message),
        )
    if kind == "user":
        body = message.get("message") or {}
        return UserMessage(
            content=_parse_content(body.get("content")),
            parent_tool_use_id=message.get("parent_tool_use_id"),
            tool_use_result=message.get("tool_use_result"),
            raw=message,
            uuid=_uuid(message),
        )
    if kind == "result":
        return _parse_result(message)
    if kind == "system":
        subtype = message.get("subtype", "")
        if subtype == "init":
            return SystemInit(
                session_id=message.get("session_id", ""),
                model=message.get("model", ""),
                cwd=message.get("cwd", ""),
                tools=list(message.get("tools") or []),
                mcp_servers=list(message.get("mcp_servers") or []),
                permission_mode=message.get("permissionMode", ""),
                claude_code_version=message.get("claude_code_version", ""),
                raw=message,
                uuid=_uuid(message),
            )
        return SystemMessage(subtype, message, _uuid(message))
    return UnknownEvent(kind, message)
