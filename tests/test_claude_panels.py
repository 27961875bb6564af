"""Claude Code's questions and plans as panels, and approvals that show all of what runs.

The real CLI asks; the widgets are clicked the way JupyterLab does (comm messages to the kernel);
what the model is told is read from the fake Messages API's recorded requests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, last_user_content, tool_results

from .kernel_client import visible_text

pytestmark = pytest.mark.real_cli

QUESTIONS = {
    "questions": [
        {
            "question": "Which plotting library?",
            "header": "Library",
            "multiSelect": False,
            "options": [
                {"label": "plotly", "description": "interactive charts"},
                {"label": "matplotlib", "description": "static images", "preview": "plt.plot(x, y)"},
            ],
        },
        {
            "question": "Which formats?",
            "header": "Formats",
            "multiSelect": True,
            "options": [
                {"label": "PNG", "description": "raster"},
                {"label": "SVG", "description": "vector"},
                {"label": "PDF", "description": "print"},
            ],
        },
    ]
}


def _widget(kernel: Any, run: Any, model_name: str, **state: Any) -> str:
    """The id of the widget of that model whose state has all of ``state``, once it is open."""

    def found(e: Any) -> list[str]:
        return [
            mid
            for mid, s in e.widgets.items()
            if s.get("_model_name") == model_name and all(s.get(k) == v for k, v in state.items())
        ]

    kernel.pump(run, until=found)
    return found(run)[-1]


def _html_widgets(run: Any) -> str:
    return "\n".join(str(s.get("value", "")) for s in run.widgets.values() if s.get("_model_name") == "HTMLModel")


def test_questions_are_answered_with_the_chosen_labels(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.tool("AskUserQuestion", QUESTIONS), Reply.text("PNG and SVG with plotly, then."))
    run = claude_kernel.start("make me a chart")
    submit = claude_kernel.wait_for_button(run, "Submit")
    shown = visible_text(_html_widgets(run))
    assert "Which plotting library?" in shown and "plt.plot(x, y)" in shown  # the descriptions: with the choices
    assert not any(s.get("description") == "Always allow" for s in run.widgets.values())
    radio = _widget(claude_kernel, run, "RadioButtonsModel")
    labels = ["plotly — interactive charts", "matplotlib — static images", "Other (write it below)"]
    assert run.widgets[radio]["_options_labels"] == labels
    claude_kernel.set_state(radio, index=0)
    claude_kernel.set_value(_widget(claude_kernel, run, "CheckboxModel", description="PNG — raster"), True)
    claude_kernel.set_value(_widget(claude_kernel, run, "CheckboxModel", description="SVG — vector"), True)
    claude_kernel.click(submit)
    claude_kernel.pump(run)
    assert run.reply is not None and run.reply["status"] == "ok"
    (result,) = tool_results(fake_api.requests[1])
    assert not result.get("is_error")
    assert '"Which plotting library?"="plotly", "Which formats?"="PNG, SVG"' in str(result["content"])
    # The saved notebook's record: the questions and the answers.
    record = run.plain()
    assert "Which plotting library? → plotly" in record and "Which formats? → PNG, SVG" in record


def test_an_own_answer_goes_back_as_written(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    one = {"questions": QUESTIONS["questions"][:1]}
    fake_api.enqueue(Reply.tool("AskUserQuestion", one), Reply.text("Bokeh it is."))
    run = claude_kernel.start("make me a chart")
    submit = claude_kernel.wait_for_button(run, "Submit")
    claude_kernel.set_value(_widget(claude_kernel, run, "TextModel", placeholder="Other: your own answer"), "bokeh")
    claude_kernel.click(submit)
    claude_kernel.pump(run)
    (result,) = tool_results(fake_api.requests[1])
    assert '"Which plotting library?"="bokeh"' in str(result["content"])


PLAN = "# Plan\n\n1. Read `data.csv`\n2. Draw **the chart**\n"


def _write_the_plan(request: dict[str, Any]) -> Reply:
    """The model writes its plan where the CLI's plan-mode reminder says."""
    found = re.search(r'(/[^"\\\s]*/\.claude/plans/[^"\\\s]*\.md)', json.dumps(request))
    assert found, "no plan file named in the plan-mode request"
    return Reply.tool("Write", {"file_path": found.group(1), "content": PLAN})


def _mode(claude_kernel: Any) -> str:
    shown = claude_kernel.run("%permissions").streamed()
    found = re.search(r"mode: (\w+)", shown)
    assert found, shown
    return found.group(1)


def test_plan_mode_is_a_plan_review_and_the_mode_follows_the_cli(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    claude_kernel.run("%permissions plan")
    fake_api.enqueue(_write_the_plan, Reply.tool("ExitPlanMode", {}), Reply.text("Starting."))
    run = claude_kernel.start("plan the chart")
    approve = claude_kernel.wait_for_button(run, "Approve, review each edit")
    claude_kernel.wait_for_button(run, "Keep planning")  # the panel's widgets open one by one
    assert run.button("Approve, auto-accept edits")
    plan = _html_widgets(run)
    assert "<h1>Plan</h1>" in plan and "<strong>the chart</strong>" in plan and "<code>data.csv</code>" in plan
    claude_kernel.click(approve)
    claude_kernel.pump(run)
    assert "User has approved your plan" in str(tool_results(fake_api.requests[2])[0]["content"])
    assert "Draw **the chart**" in run.plain()  # the saved record keeps the plan
    assert "Files this cell changed" not in run.plain()  # the CLI's own plan file is not the cell's change
    assert _mode(claude_kernel) == "default"
    # A CLI restart (pre-allowing a tool restarts it, session kept) starts in the current mode.
    claude_kernel.run("%permissions allow Read")
    fake_api.enqueue(Reply.text("Still here."))
    claude_kernel.run("go on")
    assert "Plan mode is active" not in json.dumps(last_user_content(fake_api.requests[-1]))
    assert _mode(claude_kernel) == "default"


def test_approving_a_plan_with_accept_edits_lets_edits_run(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    claude_kernel.run("%permissions plan")
    made = {"file_path": str(workdir / "chart.py"), "content": "print('chart')\n"}
    fake_api.enqueue(_write_the_plan, Reply.tool("ExitPlanMode", {}), Reply.tool("Write", made), Reply.text("Written."))
    run = claude_kernel.start("plan the chart")
    claude_kernel.click(claude_kernel.wait_for_button(run, "Approve, auto-accept edits"))
    claude_kernel.pump(run)
    assert (workdir / "chart.py").exists()  # no approval was asked for the edit
    assert _mode(claude_kernel) == "acceptEdits"


def test_keep_planning_sends_the_feedback(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    claude_kernel.run("%permissions plan")
    fake_api.enqueue(_write_the_plan, Reply.tool("ExitPlanMode", {}), Reply.text("I will revise it."))
    run = claude_kernel.start("plan the chart")
    keep = claude_kernel.wait_for_button(run, "Keep planning")
    claude_kernel.set_value(
        _widget(claude_kernel, run, "TextModel", placeholder="What to change in the plan (sent to Claude)"), "Use SVG"
    )
    claude_kernel.click(keep)
    claude_kernel.pump(run)
    (result,) = tool_results(fake_api.requests[2])
    assert result.get("is_error") and "Use SVG" in str(result["content"])
    assert _mode(claude_kernel) == "plan"


def test_bash_approval_shows_and_records_all_that_runs(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    # Blank lines would push the tail out of a short box; the tail is what must be seen.
    command = "echo start" + "\n" * 30 + "touch tail-" + "x" * 200 + ".txt"
    bash = {
        "command": command,
        "description": "Start a server",
        "run_in_background": True,
        "dangerouslyDisableSandbox": True,
        "timeout": 600000,
    }
    fake_api.enqueue(Reply.tool("Bash", bash), Reply.text("Not run."))
    run = claude_kernel.start("start the server")
    deny = claude_kernel.wait_for_button(run, "Deny")
    (box,) = [s for s in run.widgets.values() if s.get("_model_name") == "TextareaModel"]
    assert box["value"] == command and box["rows"] >= command.count("\n") + 3
    details = visible_text(_html_widgets(run))
    assert "keeps running after this turn" in details
    assert "sandbox disabled" in details and "timeout: 600 s" in details
    assert "runs in the background" in run.text()  # the tool's card says so too
    claude_kernel.click(deny)
    claude_kernel.pump(run)
    assert "tail-" + "x" * 200 + ".txt" in run.plain()  # the record keeps the whole command


def test_a_long_write_can_be_read_to_its_end_before_allow(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    content = "".join(f"line {i}\n" for i in range(1, 1501))
    fake_api.enqueue(Reply.tool("Write", {"file_path": str(workdir / "big.txt"), "content": content}), Reply.text("."))
    run = claude_kernel.start("write a big file")
    more = claude_kernel.wait_for_button(run, "Show all 1,501 lines")
    assert "line 1500" not in _html_widgets(run)
    claude_kernel.click(more)
    claude_kernel.pump(run, until=lambda e: "line 1500" in _html_widgets(e))
    claude_kernel.click(run.button("Deny"))
    claude_kernel.pump(run)
    assert not (workdir / "big.txt").exists()


def test_a_curly_quote_edit_is_not_announced_as_refused(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    target = workdir / "greet.py"
    target.write_text("print(\u201chello\u201d)\n")
    fake_api.enqueue(
        Reply.tool("Read", {"file_path": str(target)}),
        Reply.tool("Edit", {"file_path": str(target), "old_string": 'print("hello")', "new_string": 'print("bye")'}),
        Reply.text("Changed."),
    )
    run = claude_kernel.start("say bye")
    allow = claude_kernel.wait_for_button(run, "Allow")
    panel = visible_text(_html_widgets(run))
    assert "refuse" not in panel and "curly and straight quotes" in panel and "bye" in panel
    claude_kernel.click(allow)
    claude_kernel.pump(run)
    assert target.read_text() == "print(\u201cbye\u201d)\n"  # applied, its quotes curled as the preview showed
    assert "print(\u201cbye\u201d)" in panel


def test_a_bidi_path_is_shown_for_what_it_is(claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path) -> None:
    name = "report\u202egnp.sh"
    fake_api.enqueue(Reply.tool("Write", {"file_path": str(workdir / name), "content": "echo hi\n"}), Reply.text("."))
    run = claude_kernel.start("write the report")
    allow = claude_kernel.wait_for_button(run, "Allow")
    panel = visible_text(_html_widgets(run))
    assert "report⟨U+202E⟩gnp.sh" in panel and "\u202e" not in panel and "text-direction" in panel
    claude_kernel.click(allow)
    claude_kernel.pump(run)
    assert (workdir / name).exists()
    # The record, the card, its result and the undo offer: all name it for what it is.
    assert "report⟨U+202E⟩gnp.sh" in run.plain() and "\u202e" not in run.plain()
    assert "\u202e" not in run.html() and "This cell changed report⟨U+202E⟩gnp.sh" in run.text()
    leaks = [s for s in run.widgets.values() if "\u202e" in json.dumps(s, ensure_ascii=False)]
    assert not leaks, [s.get("value") for s in leaks]


def test_a_headless_run_says_nobody_can_answer(claude_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    """Even where headless runs allow tools, a question is not "allowed" unanswered: the model is told why."""
    claude_kernel.run("%permissions headless allow")
    fake_api.enqueue(Reply.tool("AskUserQuestion", QUESTIONS), Reply.text("I chose plotly myself."))
    run = claude_kernel.run("make me a chart", allow_stdin=False)
    assert run.reply is not None and run.reply["status"] == "ok" and not run.widgets
    (result,) = tool_results(fake_api.requests[1])
    assert result.get("is_error") and "Nobody can answer questions" in str(result["content"])
