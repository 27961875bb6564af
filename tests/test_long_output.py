"""Long output through the kernel, real CLI and fake API: complete, and a few times its size on iopub, not quadratic.

The byte counts are counts, not timings: what a frontend receives (``display_data`` and
``update_display_data`` data) against what it keeps in the end (each display's latest data).
``./dev bench`` measures the same for a 1 MB answer and 50 tool calls, before and after freezing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from claude_kernel._html import markdown_html
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply
from claude_kernel.testing.long_answer import long_answer

from .kernel_client import Execution, visible_text

pytestmark = pytest.mark.real_cli


def sent_and_kept(run: Execution) -> tuple[int, int]:
    sent = sum(
        len(json.dumps(msg["content"]["data"]))
        for msg in run.outputs
        if msg["msg_type"] in ("display_data", "update_display_data")
    )
    return sent, sum(len(json.dumps(data)) for data in run.displays().values())


def test_a_long_answer_arrives_whole_for_a_few_times_its_size(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    answer = long_answer(120_000)
    fake_api.enqueue(Reply.text(answer, chunk=32, delay=0.0005))  # about 2 s: a few dozen redraws
    run = claude_kernel.run("Write a long report", timeout=120)
    assert run.reply is not None and run.reply["status"] == "ok"
    displays = list(run.displays().values())
    assert len(displays) > 3
    # The visible text is the answer's, rendered whole, then the footer.
    expected = visible_text(markdown_html(answer)).split()
    shown = run.text().split()
    assert shown[: len(expected)] == expected and "(session" in shown[len(expected) :]
    plain = re.sub(r"\n\n+", "\n\n", "\n\n".join(d["text/plain"] for d in displays))
    assert plain.startswith(re.sub(r"\n\n+", "\n\n", answer))
    sent, kept = sent_and_kept(run)
    assert sent <= 3 * kept, (sent, kept)


def test_many_tool_calls_show_each_card_once_for_a_few_times_their_size(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    for n in range(20):
        (workdir / f"file{n}.txt").write_text(f"contents of file {n}\n")
    fake_api.enqueue(
        *(Reply.tool("Read", {"file_path": str(workdir / f"file{n}.txt")}) for n in range(20)),
        Reply.text("Read them all."),
    )
    run = claude_kernel.run("Read the files", timeout=120)
    assert run.reply is not None and run.reply["status"] == "ok"
    plain = "\n\n".join(d["text/plain"] for d in run.displays().values())
    assert all(plain.count(f"file{n}.txt") == 1 for n in range(20)), plain
    assert plain.count("[Read]") == 20 and "Read them all." in plain
    sent, kept = sent_and_kept(run)
    assert sent <= 3 * kept, (sent, kept)
