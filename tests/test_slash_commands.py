"""Slash commands and the context meter, through the kernel on the real CLI and the fake API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, Text, user_text

pytestmark = pytest.mark.real_cli

METER = re.compile(r"context [\d.]+k? / [\d.]+[kM] \(\d+%\)")


@pytest.fixture
def cli_env(cli_env: dict[str, str]) -> dict[str, str]:
    # The smallest auto-compaction window the CLI takes (100k; it compacts at 67k), so a reply that
    # reports a large usage brings auto-compaction near.
    return {**cli_env, "CLAUDE_CODE_AUTO_COMPACT_WINDOW": "100000"}


@pytest.fixture
def workdir(workdir: Path) -> Path:
    commands = workdir / ".claude" / "commands"
    commands.mkdir(parents=True)
    (commands / "greet.md").write_text("Say hello to $ARGUMENTS\n")
    return workdir


def ok(run: Any) -> Any:
    assert run.reply is not None and run.reply["status"] == "ok", run.outputs[-3:]
    return run


def test_compact_after_context_and_cost_says_compacted_and_shows_no_earlier_output(
    claude_kernel: Any, fake_api: FakeMessagesAPI
) -> None:
    ok(claude_kernel.run("Remember HERON"))
    context = ok(claude_kernel.run("/context"))
    cost = ok(claude_kernel.run("/cost"))
    # The command's output, as printed: a preformatted block, not the model's words or the user's.
    assert "Context Usage" in context.text() and '<pre class="claude-command-output"' in context.html()
    assert "Estimated cost" in cost.text() and '<pre class="claude-command-output"' in cost.html()
    requests = len(fake_api.requests)
    compact = ok(claude_kernel.run("/compact"))
    assert len(fake_api.requests) == requests + 1  # the summary request
    shown = compact.text()
    assert "Compacted" in shown and "earlier turns are now a summary" in shown
    assert re.search(r"context [\d.]+k? → [\d.]+k? tokens", shown)
    assert "Context Usage" not in shown and "Estimated cost" not in shown and "HERON" not in shown
    for run in (context, cost, compact):
        assert METER.search(run.text()), run.text()[-300:]
    after = ok(claude_kernel.run("Still there?"))
    assert "Still there?" in user_text(fake_api.requests[-1])
    assert METER.search(after.text())


def test_footer_meter_warns_near_auto_compaction_and_notes_the_compaction(
    claude_kernel: Any, fake_api: FakeMessagesAPI
) -> None:
    fake_api.enqueue(
        Reply.text("one"),
        Reply.text("two"),
        Reply((Text("big"),), input_tokens=60_000),
        Reply((Text("bigger"),), input_tokens=70_000),
    )
    first = ok(claude_kernel.run("first"))
    assert METER.search(first.text()) and "/ 100k" in first.text() and "auto-compaction" not in first.text()
    ok(claude_kernel.run("second"))
    near = ok(claude_kernel.run("third"))
    assert "context 60k / 100k (60%) · auto-compaction near (at 67k" in near.text()
    ok(claude_kernel.run("fourth"))
    compacted = ok(claude_kernel.run("fifth"))  # over the threshold: the CLI compacts before sending it
    shown = compacted.text()
    assert "Compacted the conversation automatically" in shown and "70k →" in shown and "freed" in shown
    assert "You said: fifth" in shown and "auto-compaction near" not in shown


def test_clear_then_rerunning_a_cell_from_before_it(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    ok(claude_kernel.run("Remember HERON", cell_id="cell-a"))
    ok(claude_kernel.run("Remember OTTER", cell_id="cell-b"))
    cleared = ok(claude_kernel.run("/clear", cell_id="cell-c"))
    assert "Cleared" in cleared.text() and METER.search(cleared.text())
    history = ok(claude_kernel.run("%history")).streamed()
    assert "out of the conversation since /clear" in history and "Remember HERON" in history
    assert "(/clear)" in history  # the conversation it left, resumable
    rerun = ok(claude_kernel.run("Remember HERON", cell_id="cell-a"))
    assert "ran before /clear" in rerun.text() and "Could not rewind" not in rerun.text()
    sent = str(fake_api.requests[-1]["messages"])
    assert "Remember HERON" in sent and "Remember OTTER" not in sent
    history = ok(claude_kernel.run("%history")).streamed()
    listed = history.split("out of the conversation since /clear")
    assert "Remember HERON" in listed[0] and "Remember OTTER" in listed[1] and "Remember HERON" not in listed[1]


def test_help_and_unavailable_commands_point_to_the_magic_help(claude_kernel: Any) -> None:
    shown = ok(claude_kernel.run("/help")).text()
    assert "isn't available in this environment" in shown and "%help" in shown
    listed = "".join(m["content"].get("text", "") for m in ok(claude_kernel.run("%help")).outputs)
    assert "/compact" in listed and "Tab after /" in listed


def test_tab_completes_slash_commands_custom_commands_and_skills(claude_kernel: Any) -> None:
    ok(claude_kernel.run("/context"))  # a turn: the CLI's system/init lists its commands
    assert "/compact" in claude_kernel.ask("complete", "/comp")["matches"]
    assert claude_kernel.ask("complete", "/gre")["matches"] == ["/greet"]  # .claude/commands/greet.md
    skills = claude_kernel.ask("complete", "%model sonnet\n/")
    assert "/clear" in skills["matches"] and "/greet" in skills["matches"]
    types = {m["text"]: m["type"] for m in skills["metadata"]["_jupyter_types_experimental"]}
    assert "skill" in types.values() and types["/greet"] == "command"
    assert "/doctor" not in skills["matches"]  # the terminal's only
    assert claude_kernel.ask("complete", "Hello /comp")["matches"] == []
    about = claude_kernel.ask("inspect", "/greet")
    assert about["found"] and "Say hello to" in about["data"]["text/plain"]


def test_rerunning_cells_around_a_compaction(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    """CLI 2.1.337 cannot resume at a message from before a compaction: such a cell is sent anew, and says so."""
    for text, cell in (("Remember HERON", "a"), ("Remember OTTER", "b"), ("/compact", "c"), ("Remember WREN", "d")):
        ok(claude_kernel.run(text, cell_id=cell))
    after = ok(claude_kernel.run("Remember WREN", cell_id="d"))
    assert "Re-ran the last cell" in after.text()  # a turn after the compaction rewinds as before
    before = ok(claude_kernel.run("Remember OTTER", cell_id="b"))
    assert "ran before the conversation was compacted" in before.text() and "Could not rewind" not in before.text()
    assert user_text(fake_api.requests[-1]) == "Remember OTTER"
