"""The Claude kernel and ``%%claude`` end turns alike: the same notes, hints and footers."""

from __future__ import annotations

import re
from typing import Any

import pytest

from claude_kernel.testing.fake_api import ErrorReply, FakeMessagesAPI, Reply

pytestmark = pytest.mark.real_cli


def final_text(run: Any) -> str:
    """Every display's plain text, with the clock readings (which differ run to run) blanked.

    So are the context meter's figures: the CLI counts each host's working directory and tools.
    """
    text = "\n".join(bundle.get("text/plain", "") for bundle in run.displays().values())
    text = re.sub(r"context [\d.]+[kM]? / [\d.]+[kM]? \(\d+%\)", "context N / N (N%)", text)
    return re.sub(r"\d+\.\d s\b", "N s", text)


def error_of(run: Any) -> tuple[str, str] | None:
    errors = [m["content"] for m in run.outputs if m["msg_type"] == "error"]
    return (errors[-1]["ename"], errors[-1]["evalue"]) if errors else None


def run_script(kernel: Any, fake_api: FakeMessagesAPI, prefix: str) -> list[tuple[str, Any]]:
    """The same turns, in the same order, on a fresh conversation; what each cell showed."""
    seen: list[tuple[str, Any]] = []
    fake_api.enqueue(Reply.text("Hello **there**, it costs $5 and $6."))
    run = kernel.run(prefix + "greet me")
    seen.append((final_text(run), error_of(run)))

    fake_api.enqueue(Reply.tool("Bash", {"command": "touch x.txt", "description": "Create"}), Reply.text("Denied."))
    run = kernel.run(prefix + "make a file", allow_stdin=False)
    seen.append((final_text(run), error_of(run)))

    fake_api.enqueue(ErrorReply(401, "authentication_error", "invalid x-api-key"))
    run = kernel.run(prefix + "hello?")
    seen.append((final_text(run), error_of(run)))

    fake_api.enqueue(Reply.text("word " * 400, delay=0.02, chunk=5))
    run = kernel.start(prefix + "talk a lot")
    kernel.pump(run, until=lambda e: "word word" in final_text(e))
    kernel.manager.interrupt_kernel()
    kernel.pump(run, timeout=15)
    # How much streamed before the interrupt (and so its tokens and cost) differs; the rest must not.
    ending = re.sub(r"[\d,.]+", "#", final_text(run).rsplit("word", 1)[-1])
    error = error_of(run)
    seen.append((ending, error[0] if error else None))
    return seen


def test_kernel_and_magic_show_the_same_notes_hints_and_footers(
    claude_kernel: Any, python_kernel: Any, fake_api: FakeMessagesAPI
) -> None:
    in_kernel = run_script(claude_kernel, fake_api, "")
    in_magic = run_script(python_kernel, fake_api, "%%claude\n")
    for (kernel_text, kernel_error), (magic_text, magic_error) in zip(in_kernel[:3], in_magic[:3], strict=True):
        assert kernel_text == magic_text
        assert kernel_error == magic_error
    # The interrupted turn ends with the same display; the error's name is each host's own word for
    # an interrupt (ipykernel reports a cancelled async cell as CancelledError).
    assert in_kernel[3][0] == in_magic[3][0]
    assert in_magic[3][1] == "CancelledError"
    greeting, denial, api_error, interrupted = in_kernel
    assert "tokens" in greeting[0] and "(session $" in greeting[0]
    assert "headless" in denial[0]
    assert api_error[1] is not None and api_error[1][0] == "ClaudeError" and "ANTHROPIC_API_KEY" in api_error[1][1]
    assert api_error[0].count("Invalid API key") == 0  # shown once, in the error, not also in the display
    assert "Interrupted" in interrupted[0] and interrupted[1] == "KeyboardInterrupt"
