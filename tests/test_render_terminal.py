"""Terminal escapes in model text never reach a terminal: ``%claude`` in terminal IPython, real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

from .helpers import terminal_ipython

pytestmark = pytest.mark.real_cli

# Clipboard write (OSC 52), window title, clear screen and home, cursor up and erase line, 8-bit CSI,
# a bell, a backspace, and a C1 OSC; the words between them must survive.
HOSTILE = (
    "alpha\x1b]52;c;ZWNobyBwd25lZA==\x07 bravo\x1b]0;pwned-title\x1b\\ charlie\x1b[2J\x1b[H"
    " delta\x1b[1A\x1b[2K echo\x9b5n foxtrot\x07\x08 golf\x9d2;pwned-c1\x9c hotel"
)


def test_escapes_in_an_answer_are_not_printed_or_stored(
    cli_env: dict[str, str], workdir: Path, fake_api: FakeMessagesAPI
) -> None:
    fake_api.enqueue(Reply.text(HOSTILE))
    ipython = terminal_ipython(cli_env, workdir)
    try:
        ipython.sendline("%claude -o answer say it")
        ipython.expect(r"In \[3\]: ")
        printed = ipython.before
        ipython.sendline("print(ascii(answer))")
        ipython.expect(r"In \[4\]: ")
        stored = ipython.before
    finally:
        ipython.sendline("exit")
        ipython.close(force=True)
    assert "alpha bravo charlie delta echo foxtrot golf hotel" in printed
    for trace in ("52;c;", "pwned", "\x1b]", "\x1b[2J", "\x1b[1A", "\x9b", "\x9d", "\x07", "\x08"):
        assert trace not in printed, repr(trace)
    assert "'alpha bravo charlie delta echo foxtrot golf hotel'" in stored
