"""The lenient parser: known shapes become typed events, anything else is kept, never fatal."""

from __future__ import annotations

import dataclasses

import pytest

from claude_kernel.session import (
    AssistantMessage,
    Result,
    StreamEvent,
    SystemInit,
    TextBlock,
    TextDelta,
    ThinkingDelta,
    ToolInputDelta,
    ToolResultBlock,
    ToolUseBlock,
    UnknownEvent,
    UserMessage,
)
from claude_kernel.session._events import parse_message


def test_assistant_blocks() -> None:
    event = parse_message(
        {
            "type": "assistant",
            "message": {
                "id": "m1",
                "model": "x",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}},
                ],
            },
            "aborted": True,
        }
    )
    assert isinstance(event, AssistantMessage) and event.aborted
    assert event.content == [TextBlock("hi"), ToolUseBlock("t1", "Bash", {"command": "ls"})]


def test_user_tool_result_and_string_content() -> None:
    event = parse_message(
        {
            "type": "user",
            "message": {"content": [{"type": "tool_result", "tool_use_id": "t1", "content": "out", "is_error": True}]},
        }
    )
    assert isinstance(event, UserMessage) and event.content == [ToolResultBlock("t1", "out", True)]
    marker = parse_message({"type": "user", "message": {"content": "[Request interrupted by user]"}})
    assert isinstance(marker, UserMessage) and marker.content == [TextBlock("[Request interrupted by user]")]


def test_stream_events() -> None:
    def wrap(event: dict) -> dict:  # type: ignore[type-arg]
        return {"type": "stream_event", "event": event, "api_message_id": "m1"}

    assert parse_message(
        wrap({"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "a"}})
    ) == TextDelta("a", index=2, message_id="m1")
    assert parse_message(
        wrap({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{"}})
    ) == ToolInputDelta("{", index=0, message_id="m1")
    start = parse_message(wrap({"type": "content_block_start", "index": 1, "content_block": {"type": "text"}}))
    assert isinstance(start, StreamEvent) and start.event_type == "content_block_start" and start.index == 1


@pytest.mark.parametrize(
    ("kind", "delta_type", "name"),
    [
        (TextDelta, "text_delta", "text"),
        (ThinkingDelta, "thinking_delta", "thinking"),
        (ToolInputDelta, "input_json_delta", "partial_json"),
    ],
)
def test_a_parsed_delta_is_what_its_constructor_builds(kind: type, delta_type: str, name: str) -> None:
    """The parser fills a delta's fields directly (the hot path): every field, as the constructor would."""
    event = {"type": "content_block_delta", "index": 3, "delta": {"type": delta_type, name: "frag"}}
    parsed = parse_message({"type": "stream_event", "event": event, "api_message_id": "m9", "uuid": "u1"})
    built = kind("frag", index=3, message_id="m9", uuid="u1")
    assert type(parsed) is kind and parsed == built and repr(parsed) == repr(built)
    assert set(vars(parsed)) == {field.name for field in dataclasses.fields(kind)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.index = 4  # type: ignore[misc,union-attr]


def test_result_fields_and_missing_values() -> None:
    result = parse_message(
        {
            "type": "result",
            "subtype": "error_during_execution",
            "is_error": True,
            "terminal_reason": "aborted_streaming",
            "errors": ["x"],
        }
    )
    assert isinstance(result, Result) and result.interrupted and result.text is None
    assert result.errors == ["x"] and result.total_cost_usd == 0.0 and result.usage == {}


def test_system_init_and_unknown() -> None:
    init = parse_message({"type": "system", "subtype": "init", "session_id": "s", "permissionMode": "default"})
    assert isinstance(init, SystemInit) and init.permission_mode == "default" and init.tools == []
    unknown = parse_message({"type": "from_the_future", "x": 1})
    assert isinstance(unknown, UnknownEvent) and unknown.raw["x"] == 1
