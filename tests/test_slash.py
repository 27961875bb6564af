"""Slash commands and compactions drawn from the CLI's events (no CLI here), and the context meter's figures."""

from __future__ import annotations

from typing import Any

import pytest

from claude_kernel import slash
from claude_kernel.context_meter import ContextUsage, LastRequest, measure
from claude_kernel.render import TurnView
from claude_kernel.session import ControlRequestError, Event, Result, SessionOptions
from claude_kernel.session._events import parse_message

pytestmark = pytest.mark.anyio


def stdout(text: str, *, stream: str = "stdout", **fields: Any) -> Event:
    """2.1.332's shape (and /compact's own in 2.1.337): a user line wrapping the output."""
    content = f"<local-command-{stream}>{text}</local-command-{stream}>"
    return parse_message({"type": "user", "message": {"role": "user", "content": content}, **fields})


def synthetic(text: str, **fields: Any) -> Event:
    """2.1.337's shape: a synthetic assistant line."""
    message = {"id": "m", "model": "<synthetic>", "content": [{"type": "text", "text": text}]}
    source = f"<local-command-stdout>{text}</local-command-stdout>"
    return parse_message({"type": "assistant", "message": message, "local_command_source": source, **fields})


def system(subtype: str, **fields: Any) -> Event:
    return parse_message({"type": "system", "subtype": subtype, **fields})


def shown(*events: Event) -> tuple[str, str]:
    """The turn's text and HTML after ``events``."""
    view = TurnView()
    for event in events:
        view.apply(event)
    view.finish("footer")
    bundles = view.bundles()
    return "\n".join(b["text/plain"] for b in bundles), "\n".join(b["text/html"] for b in bundles)


def test_a_commands_output_is_shown_as_printed_in_either_shape() -> None:
    for event in (stdout("Total cost: $0.01\n**not bold**"), synthetic("Total cost: $0.01\n**not bold**")):
        text, html = shown(event)
        assert "Total cost: $0.01\n**not bold**" in text
        assert '<pre class="claude-command-output"' in html and "<strong>" not in html
    _, html = shown(stdout("<script>alert(1)</script>"))
    assert "<script>" not in html and "&lt;script&gt;" in html
    _, html = shown(stdout("no such thing", stream="stderr"))
    assert "no such thing" in html and "error-color" in html


def test_messages_that_are_no_command_output_are_not_taken_for_one() -> None:
    said = parse_message({"type": "user", "message": {"role": "user", "content": "I typed <local-command-stdout>"}})
    assert slash.command_output(said) is None
    answer = parse_message({"type": "assistant", "message": {"id": "m", "content": [{"type": "text", "text": "Hi"}]}})
    assert slash.command_output(answer) is None
    assert shown(answer)[0].startswith("Hi")


def test_compact_says_compacted_and_how_much_it_freed_and_no_earlier_output_again() -> None:
    """2.1.332 re-emitted earlier commands' outputs after compacting; 2.1.337 marks its own Compacted a replay."""
    text, _ = shown(
        system("status", status="compacting"),
        system("status", status=None, compact_result="success"),
        system("compact_boundary", compact_metadata={"trigger": "manual", "pre_tokens": 15_400, "post_tokens": 3_100}),
        parse_message(
            {
                "type": "user",
                "message": {"role": "user", "content": "This session is being continued…"},
                "isSynthetic": True,
            }
        ),
        stdout("Estimated cost: $0.0005"),
        stdout("## Context Usage"),
        stdout("Compacted ", isReplay=True, local_command_run={"command": "compact", "args": ""}),
    )
    assert "Compacted: earlier turns are now a summary (context 15.4k → 3.1k tokens, 12.3k freed)." in text
    assert "Estimated cost" not in text and "Context Usage" not in text and "continued" not in text


def test_automatic_and_failed_compactions_are_notes() -> None:
    text, _ = shown(
        system("compact_boundary", compact_metadata={"trigger": "auto", "pre_tokens": 70_003, "post_tokens": 3_120})
    )
    assert (
        "Compacted the conversation automatically: earlier turns are now a summary (context 70k → 3.1k tokens" in text
    )
    text, _ = shown(
        system("status", status="compacting"),
        system("status", status=None, compact_result="failed", compact_error="too_few_groups"),
        stdout("Error: not enough messages to compact", stream="stderr"),
    )
    assert "Compaction failed (too_few_groups)" in text and "not enough messages" in text
    text, _ = shown(system("compact_boundary"))  # no figures: still a note
    assert "Compacted: earlier turns are now a summary." in text


def test_help_and_unavailable_commands_point_to_the_magic_help() -> None:
    text, _ = shown(
        synthetic("/help isn't available in this environment.", local_command_outcome={"kind": "unavailable_headless"})
    )
    assert "/help isn't available in this environment." in text and "%help" in text
    text, _ = shown(stdout("/login isn't available in this environment."))  # 2.1.332's shape
    assert "%help" in text


def test_clear_is_a_note_and_its_result_names_the_command() -> None:
    text, _ = shown(parse_message({"type": "conversation_reset", "new_conversation_id": "x", "trigger": "clear"}))
    assert "Cleared" in text and "%history" in text
    result = parse_message({"type": "result", "subtype": "success", "local_command": "clear"})
    assert isinstance(result, Result) and slash.local_command(result) == "clear"
    assert slash.local_command(None) == ""


@pytest.mark.parametrize(
    ("count", "text"), [(0, "0"), (950, "950"), (1000, "1k"), (14_622, "14.6k"), (367_000, "367k"), (1_000_000, "1M")]
)
def test_token_counts_read_as_people_write_them(count: int, text: str) -> None:
    assert slash.tokens(count) == text


# -- the context meter --------------------------------------------------------------------------


def test_the_meter_reads_the_clis_answer_and_warns_near_auto_compaction() -> None:
    """The get_context_usage answer of CLI 2.1.337 (its other fields left out)."""
    answer = {
        "totalTokens": 14_622,
        "maxTokens": 400_000,
        "autoCompactThreshold": 367_000,
        "isAutoCompactEnabled": True,
    }
    usage = ContextUsage.of(answer)
    assert usage is not None and usage.meter() == "context 14.6k / 400k (4%)"
    near = ContextUsage.of({**answer, "totalTokens": 320_000})
    assert near is not None and near.meter().startswith("context 320k / 400k (80%) · auto-compaction near (at 367k")
    off = ContextUsage.of({**answer, "totalTokens": 320_000, "isAutoCompactEnabled": False})
    assert off is not None and "auto-compaction" not in off.meter()
    for broken in ({}, {"totalTokens": "many", "maxTokens": 1}, {"totalTokens": 5, "maxTokens": 0}):
        assert ContextUsage.of(broken) is None


class _Session:
    """Stands in for a Session: counts the CLI's answers to get_context_usage (``answers``: in turn)."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.asked = 0
        self.session_id: str | None = "s1"
        self.init = None
        self.options = SessionOptions()

    async def context_usage(self) -> dict[str, Any]:
        self.asked += 1
        if not self.answers:
            raise ControlRequestError("get_context_usage: Unsupported control request subtype")
        return self.answers.pop(0)


def request(used: int) -> Event:
    """A main-chain assistant line from a model request that filled ``used`` tokens."""
    usage = {"input_tokens": used - 1000, "cache_read_input_tokens": 500, "output_tokens": 500}
    return parse_message({"type": "assistant", "message": {"id": "m", "model": "opus", "content": [], "usage": usage}})


async def turn(session: _Session, *events: Event) -> str:
    last = LastRequest()
    for event in events:
        last.see(event)
    return await measure(session, last, None)  # type: ignore[arg-type]


async def test_the_cli_is_asked_only_when_its_last_count_may_no_longer_hold() -> None:
    answer = {"totalTokens": 14_622, "maxTokens": 400_000, "autoCompactThreshold": 367_000}
    session = _Session(answer, {**answer, "totalTokens": 3_000}, {**answer, "totalTokens": 2_000})
    assert await turn(session, request(105)) == "context 14.6k / 400k (4%)" and session.asked == 1
    # The context only grows: the CLI's count stands until a request reports more.
    assert await turn(session, request(205)) == "context 14.6k / 400k (4%)" and session.asked == 1
    assert await turn(session, request(20_000)) == "context 20k / 400k (5%)" and session.asked == 1
    compaction = system("compact_boundary", compact_metadata={"trigger": "auto"})
    assert await turn(session, compaction, request(25_000)) == "context 3k / 400k (1%)" and session.asked == 2
    assert await turn(session) == "context 2k / 400k (0%)" and session.asked == 3  # a slash command: no request
    # Near auto-compaction the CLI is asked every time; a CLI that cannot answer leaves the estimate.
    assert (
        await turn(session, request(330_000))
        == "context 330k / 400k (82%) · auto-compaction near (at 367k; `/compact` now chooses when)"
    )
    assert session.asked == 4
    session.session_id = "s2"  # /clear, a rewind: another conversation, nothing known of it
    assert await turn(session, request(1_000)) == "" and session.asked == 5


async def test_the_cli_is_not_asked_while_the_context_is_far_from_full() -> None:
    """The CLI's first count costs it about a second: the first cell after a start must not wait for it."""
    answer = {"totalTokens": 90_000, "maxTokens": 200_000, "autoCompactThreshold": 100_000}
    session = _Session(answer)
    result = parse_message({"type": "result", "modelUsage": {"opus": {"contextWindow": 200_000}}})
    assert isinstance(result, Result)
    far, filling = LastRequest(), LastRequest()
    far.see(request(15_500))
    filling.see(request(90_000))
    assert await measure(session, far, result) == "context 15.5k / 200k (8%)" and session.asked == 0  # type: ignore[arg-type]
    near = await measure(session, filling, result)  # type: ignore[arg-type]
    assert near.startswith("context 90k / 200k (45%) · auto-compaction near (at 100k") and session.asked == 1
    # A window the CLI was told to cap is the window the turn's own figure is read against.
    capped = _Session({**answer, "maxTokens": 100_000})
    capped.options = SessionOptions(env={"CLAUDE_CODE_AUTO_COMPACT_WINDOW": "100000"})
    assert await measure(capped, far, result) == "context 15.5k / 100k (16%)" and capped.asked == 0  # type: ignore[arg-type]
    assert (await measure(capped, filling, result)).startswith("context 90k / 100k (90%)") and capped.asked == 1  # type: ignore[arg-type]


async def test_without_the_clis_answer_the_meter_uses_the_last_requests_usage() -> None:
    last = LastRequest()
    last.see(request(15_500))
    # Neither a subagent's request nor a command's synthetic line is the conversation's.
    last.see(parse_message({"type": "assistant", "parent_tool_use_id": "t", "message": {"usage": {"input_tokens": 1}}}))
    last.see(parse_message({"type": "assistant", "message": {"model": "<synthetic>", "usage": {"input_tokens": 0}}}))
    result = parse_message({"type": "result", "modelUsage": {"opus": {"contextWindow": 200_000}}})
    assert isinstance(result, Result)
    assert await measure(_Session(), last, result) == "context 15.5k / 200k (8%)"  # type: ignore[arg-type]
    assert await measure(_Session(), LastRequest(), result) == ""  # type: ignore[arg-type]
