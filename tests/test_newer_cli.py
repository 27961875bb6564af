"""A newer CLI degrades gracefully: unknown events, control requests and tools never break a turn."""

from __future__ import annotations

from typing import Any

import pytest

from claude_kernel.session import Session
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, tool_results
from claude_kernel.turn import HeadlessResponder, TurnOutcome, run_turn

pytestmark = pytest.mark.anyio


class _Sink:
    def update(self, bundles: list[dict[str, str]]) -> None:
        pass

    def finish(self, bundles: list[dict[str, str]], metadata: dict[str, Any]) -> None:
        pass

    def image(self, media_type: str, data: str) -> None:
        pass


async def _turn(session: Session, prompt: str) -> tuple[TurnOutcome, str]:
    outcome = await run_turn(session, prompt, sink=_Sink(), responder=HeadlessResponder(), interval=0)
    return outcome, "\n".join(bundle["text/plain"] for bundle in outcome.view.bundles())


async def test_unknown_events_requests_and_tools_never_break_a_turn(fake_cli_options: Any) -> None:
    async with await Session.spawn(fake_cli_options()) as session:
        outcome, text = await _turn(session, "NEW_TYPES")  # an unknown type, system subtype and block
        assert outcome.status == "ok" and "still fine" in text
        # An unknown control request is answered with an error at once (the CLI would wait for ever).
        outcome, text = await _turn(session, "NEW_REQUEST")
        assert outcome.status == "ok"
        assert "host replied error: unsupported control request: brand_new_request" in text
        # An unknown tool is a card with its name and its input; its odd result does not matter.
        outcome, text = await _turn(session, "NEW_TOOL")
        assert outcome.status == "ok" and "arrived" in text
        assert '[Teleport] {"destination": "Mars", "speed": 9}' in text
        outcome, text = await _turn(session, "after")
        assert outcome.status == "ok" and "echo: after" in text


@pytest.mark.real_cli
async def test_a_tool_the_cli_does_not_have_is_a_card(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(Reply.tool("FutureTool", {"target": "the moon", "mode": 3}), Reply.text("No such tool, then."))
    async with await Session.spawn(make_options()) as session:
        outcome, text = await _turn(session, "use the future tool")
    assert outcome.status == "ok" and "No such tool, then." in text
    assert '[FutureTool] {"target": "the moon", "mode": 3}' in text
    assert tool_results(fake_api.requests[1])[0]["is_error"]
