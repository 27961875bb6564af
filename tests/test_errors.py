"""What users see when things go wrong: API errors, a dead server, a missing CLI."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.session import (
    CLINotFoundError,
    ProcessDiedError,
    Result,
    Session,
    SessionOptions,
    find_cli,
)
from claude_kernel.testing.fake_api import ErrorReply, FakeMessagesAPI

from .helpers import collect_turn, of_type

pytestmark = pytest.mark.anyio


async def _error_result(make_options: Any, **overrides: Any) -> Result:
    async with await Session.spawn(make_options(**overrides)) as session:
        await session.send_message("hello?")
        result = of_type(await collect_turn(session), Result)[0]
        assert isinstance(result, Result) and result.is_error
        return result


@pytest.mark.real_cli
async def test_401_is_an_error_result_with_the_api_message(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(ErrorReply(401, "authentication_error", "invalid x-api-key"))
    result = await _error_result(make_options)
    assert "invalid x-api-key" in result.error_text or "API key" in result.error_text
    assert result.api_error_status == 401


@pytest.mark.real_cli
async def test_529_overloaded_is_an_error_result(fake_api: FakeMessagesAPI, make_options: Any) -> None:
    fake_api.enqueue(ErrorReply(529, "overloaded_error", "Overloaded"))
    result = await _error_result(make_options)
    assert "overloaded" in result.error_text.lower()


@pytest.mark.real_cli
async def test_server_down_is_an_error_result_and_the_session_survives(
    fake_api: FakeMessagesAPI, make_options: Any
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    options = make_options(env={"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{dead_port}"})
    async with await Session.spawn(options) as session:
        await session.send_message("anyone?")
        result = of_type(await collect_turn(session), Result)[0]
        # The CLI's own message, not just the fallback subtype.
        assert result.is_error and (result.text or "").strip() + "".join(result.errors).strip()
        assert session.pid is not None and session.is_finished()


async def test_missing_cli_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CLINotFoundError, match="npm install -g @anthropic-ai/claude-code"):
        await Session.spawn(SessionOptions(cli_path=str(tmp_path / "no-such-claude")))
    monkeypatch.setenv("CLAUDE_KERNEL_CLI", str(tmp_path / "also-missing"))
    with pytest.raises(CLINotFoundError, match="CLAUDE_KERNEL_CLI"):
        find_cli()


async def test_cli_that_exits_at_start_reports_its_stderr(tmp_path: Path) -> None:
    broken = tmp_path / "claude"
    broken.write_text("#!/bin/sh\necho 'error: unknown option --frobnicate' >&2\nexit 2\n")
    broken.chmod(0o755)
    with pytest.raises(ProcessDiedError, match="unknown option") as died:
        await Session.spawn(SessionOptions(cli_path=str(broken)))
    assert died.value.exit_code == 2
