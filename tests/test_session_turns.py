"""Turns on one persistent real CLI process: text, memory, images, streaming deltas."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from claude_kernel.session import (
    AssistantMessage,
    Result,
    Session,
    SystemInit,
    TextBlock,
    TextDelta,
    ThinkingDelta,
)
from claude_kernel.testing.fake_api import (
    FakeMessagesAPI,
    Reply,
    Text,
    Thinking,
    last_user_content,
    user_text,
)

from .cli_pin import pinned_cli_version
from .helpers import collect_turn, of_type

pytestmark = [pytest.mark.anyio, pytest.mark.real_cli]

# A 1x1 PNG.
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2a7b4"
        "d10000000049454e44ae426082"
    )
).decode()

PINNED_CLI_VERSION = pinned_cli_version()


async def test_text_turn(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(Reply.text("Hello from the fake model."))
    async with await Session.spawn(make_options()) as session:
        await session.send_message("Say hello")
        events = await collect_turn(session)
    init = of_type(events, SystemInit)[0]
    assert init.session_id and init.claude_code_version == PINNED_CLI_VERSION
    texts = [b.text for m in of_type(events, AssistantMessage) for b in m.content if isinstance(b, TextBlock)]
    assert texts == ["Hello from the fake model."]
    result = events[-1]
    assert isinstance(result, Result) and not result.is_error
    assert result.text == "Hello from the fake model."
    assert result.session_id == init.session_id and result.cost_usd > 0
    assert user_text(fake_api.requests[0]) == "Say hello"
    assert await session.next_event() is None


async def test_two_turns_share_one_process_and_memory(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(Reply.text("The secret word is MANGO."), Reply.text("You told me MANGO."))
    async with await Session.spawn(make_options()) as session:
        pid = session.pid
        await session.send_message("Remember MANGO")
        first = of_type(await collect_turn(session), Result)[0]
        await session.send_message("What was the word?")
        second = of_type(await collect_turn(session), Result)[0]
        assert session.pid == pid
    assert first.session_id == second.session_id
    # The second request carries the first exchange: that is what makes the notebook one conversation.
    history = str(fake_api.requests[-1]["messages"])
    assert "Remember MANGO" in history and "The secret word is MANGO." in history
    assert user_text(fake_api.requests[-1]) == "What was the word?"
    # Costs are per turn, and add up to the session total.
    assert second.total_cost_usd > first.total_cost_usd
    assert session.total_cost_usd == pytest.approx(first.cost_usd + second.cost_usd)
    assert second.cost_usd == pytest.approx(second.total_cost_usd - first.total_cost_usd)


async def test_image_message_reaches_the_model(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(Reply.text("A single pixel."))
    async with await Session.spawn(make_options()) as session:
        await session.send_message_with_images("What is this?", [("image/png", PIXEL)])
        result = of_type(await collect_turn(session), Result)[0]
    assert result.text == "A single pixel."
    images = [b for b in last_user_content(fake_api.requests[0]) if b.get("type") == "image"]
    assert images[0]["source"] == {"type": "base64", "media_type": "image/png", "data": PIXEL}
    assert user_text(fake_api.requests[0]).startswith("What is this?")


async def test_bad_images_are_refused_before_sending(make_options: Any) -> None:
    async with await Session.spawn(make_options()) as session:
        with pytest.raises(ValueError, match="unsupported image type"):
            await session.send_message_with_images("x", [("image/bmp", PIXEL)])
        with pytest.raises(ValueError, match="not valid base64"):
            await session.send_message_with_images("x", [("image/png", "not base64!")])


async def test_partial_deltas_stream_before_the_full_message(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    answer = "Streaming arrives in many small pieces, " * 5
    fake_api.enqueue(Reply((Thinking("Let me think about it."), Text(answer, chunk=7))))
    async with await Session.spawn(make_options()) as session:
        await session.send_message("stream please")
        events = await collect_turn(session)
    deltas = of_type(events, TextDelta)
    assert len(deltas) >= len(answer) // 7
    assert "".join(d.text for d in deltas) == answer
    assert "".join(d.thinking for d in of_type(events, ThinkingDelta)) == "Let me think about it."
    # Every delta comes before the complete text block.
    full = next(
        i
        for i, e in enumerate(events)
        if isinstance(e, AssistantMessage) and any(isinstance(b, TextBlock) for b in e.content)
    )
    assert all(events.index(d) < full for d in deltas)


async def test_without_partial_messages_no_deltas(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(Reply.text("whole"))
    async with await Session.spawn(make_options(include_partial_messages=False)) as session:
        await session.send_message("hi")
        events = await collect_turn(session)
    assert not of_type(events, TextDelta)
    assert of_type(events, Result)[0].text == "whole"
