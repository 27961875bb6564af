"""The turn path without a session: throttled redraws, the cut before a panel, error hints."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from claude_kernel.render import TurnView
from claude_kernel.session import Result, TextDelta
from claude_kernel.session._events import parse_message
from claude_kernel.turn import TurnDisplay, UpdatableDisplays, error_hint


class RecordingSink:
    def __init__(self) -> None:
        self.updates: list[list[dict[str, str]]] = []
        self.finished: list[dict[str, str]] | None = None
        self.images: list[tuple[str, str]] = []

    def update(self, bundles: list[dict[str, str]]) -> None:
        self.updates.append(bundles)

    def finish(self, bundles: list[dict[str, str]], metadata: dict[str, Any]) -> None:
        self.finished = bundles

    def image(self, media_type: str, data: str) -> None:
        self.images.append((media_type, data))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def delta(text: str) -> TextDelta:
    return TextDelta(message_id="m1", index=0, text=text)


def make_display(interval: float = 0.25) -> tuple[TurnDisplay, RecordingSink, Clock]:
    clock = Clock()
    sink = RecordingSink()
    return TurnDisplay(TurnView(clock=clock), sink, interval=interval, clock=clock), sink, clock


def bash_call() -> Any:
    tool_use = {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}
    return parse_message({"type": "assistant", "message": {"id": "m1", "content": [tool_use]}})


def test_updates_are_throttled_to_one_per_interval() -> None:
    display, sink, clock = make_display()
    display.flush(force=True)
    for step in range(100):  # 100 deltas within 0.99 s
        clock.now = step * 0.01
        display.view.apply(delta("x"))
        display.changed()
        display.flush()
    # The forced redraw, then one per interval (the forced one, instant, holds nothing back).
    assert 5 <= len(sink.updates) <= 6
    display.flush(force=True)
    assert "x" * 100 in sink.updates[-1][-1]["text/plain"]


def test_the_first_text_is_drawn_at_once_after_a_forced_redraw() -> None:
    """The status redraw after sending, and the tick, do not hold back the first words."""
    display, sink, clock = make_display()
    display.flush(force=True)  # the status line, right after sending
    clock.now = 0.01
    first = delta("Hello")
    display.view.apply(first)
    display.changed(first)
    display.flush()
    assert len(sink.updates) == 2 and "Hello" in sink.updates[-1][-1]["text/plain"]
    # Later deltas are throttled again.
    for step in range(2, 20):
        clock.now = step * 0.01
        more = delta(" more")
        display.view.apply(more)
        display.changed(more)
        display.flush()
    assert len(sink.updates) == 2
    clock.now = 0.27
    display.flush()
    assert len(sink.updates) == 3


def test_the_first_text_of_a_message_is_drawn_inside_the_throttle_window() -> None:
    display, sink, clock = make_display()
    earlier = TextDelta(message_id="m0", index=0, text="Earlier answer.")
    display.view.apply(earlier)
    display.changed()
    display.flush()  # a redraw: the throttle window opens
    clock.now = 0.05
    reply = TextDelta(message_id="m2", index=0, text="Next message.")
    display.view.apply(reply)
    display.changed(reply)
    display.flush()
    assert len(sink.updates) == 2 and "Next message." in sink.updates[-1][-1]["text/plain"]


def test_a_tick_does_not_delay_the_next_redraw() -> None:
    display, sink, clock = make_display()
    display.view.apply(delta("a"))
    display.changed()
    display.flush()
    clock.now = 0.9
    display.flush(force=True)  # the tick
    clock.now = 0.95
    display.view.apply(delta("b"))
    display.changed()
    display.flush()
    assert len(sink.updates) == 3


def test_nothing_is_sent_when_nothing_changed() -> None:
    display, sink, clock = make_display()
    display.flush(force=True)
    clock.now = 10.0
    display.flush()
    assert len(sink.updates) == 1


def test_the_cut_before_a_panel_redraws_only_the_displays_above_it() -> None:
    display, sink, clock = make_display()
    display.view.apply(delta("Let me run it."))
    display.view.apply(bash_call())
    display.flush(force=True)
    display.before_panel("t1", "waiting for your approval below", panel_below=True)
    above = sink.updates[-1]
    assert len(above) == 1  # the display above the panel, without the status line
    assert "waiting for your approval below" in above[0]["text/plain"]
    assert "●" not in above[0]["text/plain"]
    display.view.apply(TextDelta(message_id="m2", index=0, text="Done."))
    display.changed()
    clock.now = 1.0
    display.flush()
    assert len(sink.updates[-1]) == 2  # a new display, below the panel, carries the rest
    assert "Done." in sink.updates[-1][1]["text/plain"] and "●" in sink.updates[-1][1]["text/plain"]


def test_without_a_panel_the_card_is_redrawn_in_place() -> None:
    display, sink, _ = make_display()
    display.view.apply(bash_call())
    display.before_panel("t1", "waiting", panel_below=False)
    assert len(sink.updates[-1]) == 1 and "waiting" in sink.updates[-1][0]["text/plain"]


def test_finish_sends_the_final_bundles_once() -> None:
    display, sink, _ = make_display()
    display.view.apply(delta("All done."))
    display.view.finish("model · 1.0 s")
    display.finish({})
    assert sink.finished is not None and sink.finished[-1]["text/plain"].endswith("model · 1.0 s")


def result(**fields: Any) -> Result:
    parsed = parse_message({"type": "result", "subtype": "success", "is_error": True, **fields})
    assert isinstance(parsed, Result)
    return parsed


@pytest.mark.parametrize(
    ("fields", "hint"),
    [
        ({"result": "Invalid API key · Fix external API key", "api_error_status": 401}, "ANTHROPIC_API_KEY"),
        ({"result": "Not logged in · Please run /login"}, "ANTHROPIC_API_KEY"),
        ({"result": "Forbidden", "api_error_status": 403}, "log in once"),
        ({"result": "Rate limited", "api_error_status": 429}, "wait a moment"),
        ({"result": "Overloaded", "api_error_status": 529}, None),
    ],
)
def test_error_hints(fields: dict[str, Any], hint: str | None) -> None:
    message = error_hint(result(**fields))
    assert message.startswith(fields["result"])
    if hint is None:
        assert message == fields["result"]
    else:
        assert hint in message


def test_the_cut_before_a_panel_keeps_working_with_frozen_displays() -> None:
    """A long answer froze into several displays; the panel still lands under its card, the answer below it."""
    clock = Clock()
    sink = RecordingSink()
    display = TurnDisplay(TurnView(clock=clock, freeze_at=1), sink, interval=0.25, clock=clock)
    for n in range(6):
        clock.now += 1
        display.view.apply(delta(f"Paragraph {n}.\n\n"))
        display.changed()
        display.flush()
    display.view.apply(TextDelta(message_id="m1", index=0, text="Let me run it."))
    display.view.apply(
        parse_message({"type": "stream_event", "api_message_id": "m1", "event": {"type": "message_delta"}})
    )
    display.view.apply(bash_call())
    display.flush(force=True)
    before = len(sink.updates[-1])
    assert before > 2  # frozen displays, then the live one
    display.before_panel("t1", "waiting for your approval below", panel_below=True)
    above = sink.updates[-1]
    assert len(above) == before and "waiting for your approval" in above[-1]["text/plain"]
    assert not any("●" in bundle["text/plain"] for bundle in above)
    display.view.apply(TextDelta(message_id="m2", index=0, text="Done."))
    display.changed()
    clock.now += 1
    display.flush()
    after = sink.updates[-1]
    assert len(after) == before + 1 and after[:-1] == above
    assert after[-1]["text/plain"].startswith("Done.") and "●" in after[-1]["text/plain"]


def test_only_changed_displays_are_published_again() -> None:
    class Published(UpdatableDisplays):
        def __init__(self) -> None:
            super().__init__()
            self.sent: list[tuple[str, bool, dict[str, Any] | None]] = []

        def publish(
            self, bundle: dict[str, Any], display_id: str, *, new: bool, metadata: dict[str, Any] | None = None
        ) -> None:
            self.sent.append((bundle["text/plain"], new, metadata))

    sink = Published()
    frozen = {"text/html": "<p>a</p>", "text/plain": "a"}
    sink.update([frozen, {"text/html": "", "text/plain": "b"}])
    sink.update([frozen, {"text/html": "", "text/plain": "b"}])  # nothing changed
    sink.update([dict(frozen), {"text/html": "", "text/plain": "bc"}, {"text/html": "", "text/plain": "d"}])
    sink.finish([frozen, {"text/html": "", "text/plain": "bc"}, {"text/html": "", "text/plain": "d."}], {"k": 1})
    assert sink.sent == [
        ("a", True, None),
        ("b", True, None),
        ("bc", False, None),
        ("d", True, None),
        ("d.", False, {"k": 1}),
    ]


def test_a_slow_redraw_waits_as_long_as_it_took() -> None:
    """Redrawing never takes more than half the time: between two redraws the turn's events are read."""
    clock = Clock()
    starts: list[float] = []

    class SlowSink(RecordingSink):
        def update(self, bundles: list[dict[str, str]]) -> None:
            starts.append(clock.now)
            clock.now += 2.0  # rendering and sending a huge block

    display = TurnDisplay(TurnView(clock=clock), SlowSink(), interval=0.25, clock=clock)
    display.flush(force=True)
    for _ in range(100):
        clock.now += 0.1
        display.view.apply(delta("x"))
        display.changed()
        display.flush()
    assert len(starts) > 3
    assert all(later - earlier >= 4.0 - 1e-9 for earlier, later in itertools.pairwise(starts))
