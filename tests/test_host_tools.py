"""Host tools: the SDK MCP server inside the session, answered with ``send_tool_result``."""

from __future__ import annotations

from typing import Any

import pytest

from claude_kernel.session import HostTool, HostToolRequest, Result, Session, ToolResult, UserMessage
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, tool_results

from .helpers import collect_turn, of_type

pytestmark = [pytest.mark.anyio, pytest.mark.real_cli]

ASK = HostTool(
    "ask_user",
    "Ask the notebook user a question.",
    {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]},
)


async def test_tool_is_listed_for_the_model(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    async with await Session.spawn(make_options(host_tools=[ASK], host_tool_server="notebook")) as session:
        await session.send_message("hi")
        await collect_turn(session)
        assert session.init is not None and "mcp__notebook__ask_user" in session.init.tools
    tool = next(t for t in fake_api.requests[0]["tools"] if t["name"] == "mcp__notebook__ask_user")
    assert tool["description"] == ASK.description
    assert tool["input_schema"]["required"] == ["question"]


async def test_tool_result_reaches_the_next_api_request(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(Reply.tool("mcp__host__ask_user", {"question": "Favourite colour?"}), Reply.text("Teal, noted."))
    async with await Session.spawn(make_options(host_tools=[ASK])) as session:
        await session.send_message("ask me something")
        events = []
        while (event := await session.next_event()) is not None:
            events.append(event)
            if isinstance(event, HostToolRequest):
                assert await session.send_tool_result(ToolResult(event.tool_use_id, "teal"))
    request = of_type(events, HostToolRequest)[0]
    assert request.tool_name == "ask_user" and request.input == {"question": "Favourite colour?"}
    sent = tool_results(fake_api.requests[1])[0]
    assert sent["tool_use_id"] == request.tool_use_id
    assert "teal" in str(sent["content"]) and not sent.get("is_error")
    echoed = [b for m in of_type(events, UserMessage) for b in m.content]
    assert echoed and of_type(events, Result)[0].text == "Teal, noted."


async def _answer_once(fake_api: FakeMessagesAPI, make_options: Any, result: Any) -> dict[str, Any]:
    fake_api.enqueue(Reply.tool("mcp__host__ask_user", {"question": "plot?"}), Reply.text("ok"))
    async with await Session.spawn(make_options(host_tools=[ASK])) as session:
        await session.send_message("go")
        while (event := await session.next_event()) is not None:
            if isinstance(event, HostToolRequest):
                await session.send_tool_result(result(event.tool_use_id))
    return tool_results(fake_api.requests[1])[0]


async def test_error_result(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    sent = await _answer_once(
        fake_api, make_options, lambda tool_use_id: ToolResult(tool_use_id, "no user here", is_error=True)
    )
    assert sent["is_error"] and "no user here" in str(sent["content"])


async def test_image_result(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    from .test_session_turns import PIXEL

    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}
    sent = await _answer_once(
        fake_api,
        make_options,
        lambda tool_use_id: ToolResult(tool_use_id, [{"type": "text", "text": "the user drew this"}, image]),
    )
    assert {"type": "text", "text": "the user drew this"} in sent["content"]
    assert image in sent["content"] and not sent.get("is_error")


async def test_answering_an_unknown_call_is_refused_quietly(make_options: Any) -> None:
    async with await Session.spawn(make_options(host_tools=[ASK])) as session:
        assert await session.send_tool_result(ToolResult("toolu_nope", "x")) is False
