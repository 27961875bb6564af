"""Terminal escapes in an error's text (an API or gateway message) reach no terminal, in either host."""

from __future__ import annotations

import pytest

from claude_kernel.testing.fake_api import ErrorReply, FakeMessagesAPI

pytestmark = pytest.mark.real_cli

# A clipboard write, a title change, clearing the screen, a C1 OSC and a bell.
HOSTILE = "boom\x1b]52;c;cHduZWQ=\x07 \x1b]0;pwned\x07\x1b[2J\x9d2;x\x9c\x07 done"


@pytest.mark.parametrize("host", ["claude_kernel", "python_kernel"])
def test_an_error_message_is_shown_without_its_escapes(
    host: str, request: pytest.FixtureRequest, fake_api: FakeMessagesAPI
) -> None:
    kernel = request.getfixturevalue(host)
    fake_api.enqueue(ErrorReply(500, "api_error", HOSTILE))
    run = kernel.run(("%%claude\n" if host == "python_kernel" else "") + "hello?")
    assert run.reply["status"] == "error" and run.reply["ename"] == "ClaudeError"
    errors = [m["content"] for m in run.outputs if m["msg_type"] == "error"]
    evalue = errors[-1]["evalue"]
    assert "boom" in evalue and " done" in evalue
    for trace in ("52;c;", "pwned", "\x1b", "\x9d", "\x07"):
        assert trace not in evalue, repr(trace)
    # The traceback may colour its own header, never carry the message's sequences.
    assert not any("pwned" in line or "52;c;" in line for line in errors[-1]["traceback"])
