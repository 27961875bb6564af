"""Rewinding on the real CLI: uuids of every turn, a rewound conversation, restored files."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest

from claude_kernel.session import (
    AssistantMessage,
    ControlRequestError,
    Result,
    RewindError,
    Session,
    SessionError,
    SystemInit,
)
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, user_text

from .helpers import collect_turn, of_type

pytestmark = [pytest.mark.anyio, pytest.mark.real_cli]


async def _ask(session: Session, text: str) -> Result:
    await session.send_message(text)
    return of_type(await collect_turn(session), Result)[0]


def _history(request: dict[str, Any]) -> str:
    return str(request["messages"])


async def test_every_turn_carries_its_uuids(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(Reply.text("Hello."))
    async with await Session.spawn(make_options()) as session:
        prompt = await session.send_message("hi")
        events = await collect_turn(session)
    init, answer, result = of_type(events, SystemInit)[0], of_type(events, AssistantMessage)[-1], events[-1]
    assert isinstance(result, Result)
    assert init.uuid and answer.uuid and result.uuid
    assert len({init.uuid, answer.uuid, result.uuid}) == 3
    assert result.prompt_uuid == prompt
    # The rewind point after this turn is its last transcript entry, not the result line.
    assert result.last_message_uuid == answer.uuid == session.last_message_uuid


def _transcripts(make_options: Any) -> list[Path]:
    home = Path(make_options().env["HOME"])
    return sorted(home.glob(".claude/projects/*/*.jsonl"))


async def test_rewind_in_place_to_after_the_first_turn(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    async with await Session.spawn(make_options()) as session:
        first = await _ask(session, "ALPHA")
        await _ask(session, "BRAVO")
        await _ask(session, "CHARLIE")
        session_id, pid = session.session_id, session.pid
        assert first.last_message_uuid is not None
        rewound = await session.rewind(first.last_message_uuid)
        assert rewound.in_place and rewound.refused is None
        # The same process and conversation: no restart, no fork.
        assert rewound.session_id == session.session_id == session_id and session.pid == pid
        await _ask(session, "DELTA")
        seen = _history(fake_api.requests[-1])
        assert "ALPHA" in seen and "DELTA" in seen
        assert "BRAVO" not in seen and "CHARLIE" not in seen
        assert (await _ask(session, "ECHO")).session_id == session_id
        seen = _history(fake_api.requests[-1])
        assert all(word in seen for word in ("ALPHA", "DELTA", "ECHO")) and "BRAVO" not in seen
    assert len(_transcripts(make_options)) == 1
    # The rewind is in the transcript: resuming the conversation continues the rewound branch.
    async with await Session.spawn(make_options(resume=session_id)) as again:
        await _ask(again, "FOXTROT")
    seen = _history(fake_api.requests[-1])
    assert all(word in seen for word in ("ALPHA", "DELTA", "ECHO", "FOXTROT")) and "BRAVO" not in seen


async def test_rewind_in_place_with_the_turns_named(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    """A Session that resumed a conversation rewinds in place when told the prompts involved."""
    async with await Session.spawn(make_options()) as session:
        first = await _ask(session, "ALPHA")
        second = await _ask(session, "BRAVO")
        third = await _ask(session, "CHARLIE")
        session_id = session.session_id
    async with await Session.spawn(make_options(resume=session_id)) as session:
        rewound = await session.rewind(
            first.last_message_uuid, first_dropped=second.prompt_uuid, latest=third.prompt_uuid
        )
        assert rewound.in_place and rewound.session_id == session_id
        await _ask(session, "DELTA")
    seen = _history(fake_api.requests[-1])
    assert "ALPHA" in seen and "DELTA" in seen and "BRAVO" not in seen and "CHARLIE" not in seen


async def test_the_whole_conversation_rewinds_in_place(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    async with await Session.spawn(make_options()) as session:
        first = await _ask(session, "ALPHA")
        second = await _ask(session, "BRAVO")
        assert first.prompt_uuid is not None
        rewound = await session.rewind(None, first_dropped=first.prompt_uuid, latest=second.prompt_uuid)
        assert rewound.in_place
        await _ask(session, "CHARLIE")
    seen = _history(fake_api.requests[-1])
    assert "CHARLIE" in seen and "ALPHA" not in seen and "BRAVO" not in seen


async def test_a_refused_in_place_rewind_forks(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    """The CLI refuses (a later turn it was not told of): the rewind forks, leaving the old branch resumable."""
    async with await Session.spawn(make_options()) as session:
        first = await _ask(session, "ALPHA")
        second = await _ask(session, "BRAVO")
        await _ask(session, "CHARLIE")
        old_id = session.session_id
    # A new Session, told an outdated latest turn (it did not see the turns itself).
    async with await Session.spawn(make_options(resume=old_id)) as session:
        assert first.last_message_uuid is not None
        rewound = await session.rewind(
            first.last_message_uuid, first_dropped=second.prompt_uuid, latest=second.prompt_uuid
        )
        assert not rewound.in_place and rewound.refused == "unseen_later_turn"
        assert rewound.session_id == session.session_id != old_id
        await _ask(session, "DELTA")
        seen = _history(fake_api.requests[-1])
        assert "ALPHA" in seen and "DELTA" in seen and "BRAVO" not in seen and "CHARLIE" not in seen
    # The branch left behind is still there under its own id.
    async with await Session.spawn(make_options(resume=old_id)) as old:
        await _ask(old, "FOXTROT")
    assert all(word in _history(fake_api.requests[-1]) for word in ("ALPHA", "BRAVO", "CHARLIE", "FOXTROT"))


async def test_retry_the_last_turn_with_dropping_turn(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    async with await Session.spawn(make_options()) as session:
        first = await _ask(session, "ALPHA")
        second = await _ask(session, "BRAVO")
        assert first.last_message_uuid is not None and second.prompt_uuid is not None
        assert (await session.rewind(first.last_message_uuid, dropping_turn=second.prompt_uuid)).in_place
        await _ask(session, "BRAVO again")
    seen = _history(fake_api.requests[-1])
    assert "ALPHA" in seen and "BRAVO again" in seen and "'BRAVO'" not in seen


async def test_three_rewinds_copy_no_transcript(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    async with await Session.spawn(make_options()) as session:
        results = [await _ask(session, f"turn {n}") for n in range(6)]
        before = sum(path.stat().st_size for path in _transcripts(make_options))
        for back in (4, 3, 2):
            keep = results[back - 1].last_message_uuid
            assert (await session.rewind(keep)).in_place
            results = [*results[:back], await _ask(session, f"again {back}")]
    after = _transcripts(make_options)
    assert len(after) == 1 and sum(path.stat().st_size for path in after) < 1.5 * before


async def test_a_refused_rewind_changes_nothing(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    async with await Session.spawn(make_options()) as session:
        first = await _ask(session, "ALPHA")
        second = await _ask(session, "BRAVO")
        await _ask(session, "CHARLIE")
        session_id = session.session_id
        assert first.last_message_uuid is not None and second.prompt_uuid is not None
        # Going back past two turns while declaring that only one is dropped: the CLI refuses.
        with pytest.raises(RewindError, match="resume-drops-turn"):
            await session.rewind(first.last_message_uuid, dropping_turn=second.prompt_uuid)
        with pytest.raises(RewindError, match="No message found"):
            await session.rewind("00000000-0000-4000-8000-000000000000")
        assert session.session_id == session_id
        await _ask(session, "DELTA")
    assert all(word in _history(fake_api.requests[-1]) for word in ("ALPHA", "BRAVO", "CHARLIE", "DELTA"))


async def test_a_fork_survives_a_crash_before_its_first_turn(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    """The fork has no transcript until its first turn: a restart before then forks again."""
    async with await Session.spawn(make_options()) as session:
        first = await _ask(session, "ALPHA")
        await _ask(session, "BRAVO")
        session_id = session.session_id
    # A new Session does not know the turns, so it rewinds by forking.
    async with await Session.spawn(make_options(resume=session_id)) as session:
        assert first.last_message_uuid is not None
        rewound = await session.rewind(first.last_message_uuid)
        assert not rewound.in_place
        assert session.pid is not None
        os.kill(session.pid, signal.SIGKILL)  # the forked process dies before any turn
        await anyio.sleep(0.2)
        assert (await _ask(session, "CHARLIE")).session_id == rewound.session_id
        assert session.restarts == 1
    seen = _history(fake_api.requests[-1])
    assert "ALPHA" in seen and "CHARLIE" in seen and "BRAVO" not in seen


async def test_an_in_place_rewind_survives_a_crash(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    async with await Session.spawn(make_options()) as session:
        first = await _ask(session, "ALPHA")
        await _ask(session, "BRAVO")
        assert first.last_message_uuid is not None
        assert (await session.rewind(first.last_message_uuid)).in_place
        assert session.pid is not None
        os.kill(session.pid, signal.SIGKILL)
        await anyio.sleep(0.2)
        await _ask(session, "CHARLIE")
        assert session.restarts == 1
    seen = _history(fake_api.requests[-1])
    assert "ALPHA" in seen and "CHARLIE" in seen and "BRAVO" not in seen


async def test_rewind_refuses_during_a_turn(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(Reply.text("One."), Reply.text("slow " * 200, delay=0.02, chunk=5))
    async with await Session.spawn(make_options()) as session:
        first = await _ask(session, "one")
        await session.send_message("two")
        assert first.last_message_uuid is not None
        with pytest.raises(SessionError, match="turn is running"):
            await session.rewind(first.last_message_uuid)
        await session.interrupt()
        await collect_turn(session)


async def test_rewind_files_restores_written_and_edited_files(
    fake_api: FakeMessagesAPI, make_options: Any, workdir: Path
) -> None:
    overwritten, edited, created = workdir / "notes.txt", workdir / "data.txt", workdir / "new.txt"
    overwritten.write_text("original notes\n")
    edited.write_text("alpha beta\n")
    fake_api.enqueue(
        Reply.tool("Read", {"file_path": str(overwritten)}),
        Reply.tool("Write", {"file_path": str(overwritten), "content": "overwritten\n"}),
        Reply.tool("Write", {"file_path": str(created), "content": "brand new\n"}),
        Reply.tool("Read", {"file_path": str(edited)}),
        Reply.tool("Edit", {"file_path": str(edited), "old_string": "beta", "new_string": "gamma"}),
        Reply.text("Done."),
    )
    async with await Session.spawn(make_options(allowed_tools=["Read", "Write", "Edit"])) as session:
        result = await _ask(session, "change the files")
        assert result.text == "Done."
        assert overwritten.read_text() == "overwritten\n" and edited.read_text() == "alpha gamma\n"
        assert created.exists()
        assert result.prompt_uuid is not None
        preview = await session.rewind_files(result.prompt_uuid, dry_run=True)
        assert preview.get("canRewind") is True and overwritten.read_text() == "overwritten\n"
        answer = await session.rewind_files(result.prompt_uuid)
        assert answer.get("canRewind") is True
        assert overwritten.read_text() == "original notes\n"
        assert edited.read_text() == "alpha beta\n"
        assert not created.exists()
        # The conversation itself goes on.
        assert (await _ask(session, "next")).text == "You said: next"
    assert user_text(fake_api.requests[-1]) == "next"


async def test_without_checkpointing_rewind_files_is_refused(
    fake_api: FakeMessagesAPI, make_options: Any, workdir: Path
) -> None:
    target = workdir / "notes.txt"
    fake_api.enqueue(Reply.tool("Write", {"file_path": str(target), "content": "x\n"}), Reply.text("Done."))
    options = make_options(allowed_tools=["Write"], file_checkpointing=False)
    async with await Session.spawn(options) as session:
        result = await _ask(session, "write")
        assert target.exists() and result.prompt_uuid is not None
        with pytest.raises(ControlRequestError):
            await session.rewind_files(result.prompt_uuid)
    assert target.exists()


async def test_rewind_files_after_the_process_was_replaced(
    fake_api: FakeMessagesAPI, make_options: Any, workdir: Path
) -> None:
    """The checkpoints live with the transcript, so an undo still works after a crash and resume."""
    target = workdir / "notes.txt"
    target.write_text("original\n")
    fake_api.enqueue(
        Reply.tool("Read", {"file_path": str(target)}),
        Reply.tool("Write", {"file_path": str(target), "content": "changed\n"}),
        Reply.text("Done."),
    )
    async with await Session.spawn(make_options(allowed_tools=["Read", "Write"])) as session:
        result = await _ask(session, "change it")
        assert target.read_text() == "changed\n" and result.prompt_uuid is not None
        assert session.pid is not None
        os.kill(session.pid, signal.SIGKILL)
        await anyio.sleep(0.2)
        assert (await session.rewind_files(result.prompt_uuid)).get("canRewind") is True
        assert session.restarts == 1
    assert target.read_text() == "original\n"
