"""An answer whose stream breaks mid-way: the real CLI retries the request, and the cell shows the answer once."""

from __future__ import annotations

from typing import Any

import pytest

from claude_kernel.session import Session
from claude_kernel.testing.fake_api import Disconnect, FakeMessagesAPI, Reply
from claude_kernel.turn import HeadlessResponder, run_turn

pytestmark = [pytest.mark.anyio, pytest.mark.real_cli]


class _Sink:
    def __init__(self) -> None:
        self.updates: list[list[dict[str, str]]] = []

    def update(self, bundles: list[dict[str, str]]) -> None:
        self.updates.append(bundles)

    def finish(self, bundles: list[dict[str, str]], metadata: dict[str, Any]) -> None:
        self.updates.append(bundles)

    def image(self, media_type: str, data: str) -> None:
        raise AssertionError("no image expected")


async def test_a_stream_cut_mid_answer_shows_the_answer_once(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(
        Disconnect("The first chunks of the answer. " * 200, delay=0.002),
        Reply.text("The first chunks of the answer. Then the rest, in full."),
    )
    # The fake API's environment turns the CLI's retries off; this test needs one.
    async with await Session.spawn(make_options(env={"CLAUDE_CODE_MAX_RETRIES": "2"})) as session:
        sink = _Sink()
        view = (await run_turn(session, "Tell me", sink=sink, responder=HeadlessResponder(), interval=0)).view
    assert len(fake_api.requests) == 2  # the broken request and its retry
    # The broken stream was on screen while it lasted (the case this test is about)...
    assert any("answer. The first chunks" in update[-1]["text/plain"] for update in sink.updates)
    # ...and once the retry streams, only the retried answer is there.
    view.finish("done")
    # A display the broken stream froze (the CLI may end its block before the stream breaks) is
    # emptied, not removed: it keeps its place among the cell's outputs.
    (bundle,) = [bundle for bundle in view.bundles() if bundle["text/plain"]]
    assert bundle["text/plain"] == "The first chunks of the answer. Then the rest, in full.\n\ndone"
    assert bundle["text/html"].count("The first chunks") == 1
    assert sink.updates[-1][-1]["text/plain"].count("The first chunks") == 1
