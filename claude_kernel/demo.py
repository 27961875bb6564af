"""``./dev lab``: JupyterLab with the Claude kernel installed and the demo notebook open.

``--offline`` swaps the model for a scripted one (the tests' fake Messages API on 127.0.0.1), so
anyone can see streaming, tool cards, approvals and interrupts without an account; the CLI is real.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from .install import install
from .testing.fake_api import FakeMessagesAPI, Reply, Text, Thinking, ToolUse, tool_results, user_text

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

_SCRIPTED_NOTE = "*(This is the offline demo: a scripted model, not Claude.)*\n\n"


_PLOT = (
    "import matplotlib.pyplot as plt\n"
    'ax = sales.plot(x="month", y="units", marker="o", legend=False)\n'
    'ax.set_title("Units sold per month")\n'
    "plt.show()"
)
_FIX = (
    'units = sales["units"].tolist()\n'
    "# July reported 0 units (most likely missing data): no growth rate from a zero month\n"
    "growth = [round(later / earlier - 1, 3) if earlier else None for earlier, later in zip(units, units[1:])]\n"
    "growth"
)


def _answered_tool(request: dict[str, Any]) -> str:
    """The name of the tool whose result the request carries (from the assistant message before it)."""
    for message in reversed(request.get("messages", [])[:-1]):
        if message.get("role") == "assistant" and isinstance(message.get("content"), list):
            names = [b.get("name", "") for b in message["content"] if b.get("type") == "tool_use"]
            return names[-1] if names else ""
    return ""


def scripted_model(request: dict[str, Any]) -> Reply:
    """The offline demo's model: it reacts to a few keywords in the cell and says it is scripted."""
    results = tool_results(request)
    if results and not user_text(request):
        tool = _answered_tool(request)
        content = results[0].get("content")
        if tool.endswith("run_python") and isinstance(content, list) and any(b.get("type") == "image" for b in content):
            return Reply.text(
                _SCRIPTED_NOTE + "The plot shows units climbing from 120 to 265 over the year, except "
                "**July, at 0**: a drop to nothing between two strong months looks like missing data "
                "rather than a real month without sales.",
                delay=0.02,
                chunk=5,
            )
        if tool.endswith("create_cell"):
            return Reply.text("The fixed version is in the new cell below: read it, then run it.", chunk=5)
        return Reply.text("Done: the tool ran and I saw its result.", delay=0.02, chunk=4)
    said = user_text(request)
    # What the user typed follows the notebook's context (the cells run since the last message).
    context, _, typed = said.rpartition("</notebook-context>")
    text = typed.lower()
    if "plot" in text:
        return Reply.tool("mcp__notebook__run_python", {"code": _PLOT}, say="I will plot it; allow the code below.")
    if "wrong" in text and "ZeroDivisionError" in context:
        return Reply(
            (
                Text(
                    _SCRIPTED_NOTE + "The growth cell raised `ZeroDivisionError`: July has **0** units, so "
                    "August's growth divides by zero. I skip the months that follow a zero.",
                    chunk=5,
                ),
                ToolUse("mcp__notebook__create_cell", {"code": _FIX}),
            ),
            delay=0.02,
        )
    if "variable" in text:
        return Reply.tool("mcp__notebook__list_variables", {}, say="Let me look at your variables.")
    if "file" in text:
        return Reply.tool(
            "Bash",
            {"command": "touch demo-file.txt", "description": "Create demo-file.txt"},
            say="I will create the file; please approve the command below.",
        )
    if "ask" in text:
        return Reply.tool("mcp__notebook__ask_user", {"question": "Which dataset should I look at?"})
    if "long" in text or "slow" in text:
        return Reply.text(_SCRIPTED_NOTE + "A long answer, word by word. " * 60, delay=0.05, chunk=6)
    return Reply(
        (
            Thinking("The user said hello; a short friendly answer fits."),
            Text(
                _SCRIPTED_NOTE + "Hello! Each cell you run is one message in **one** conversation. "
                "Try asking me to *make a file*, to *ask* you something, or for a *long* answer "
                "(then press the stop button).",
                chunk=5,
            ),
        ),
        delay=0.02,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="claude_kernel.demo", description=__doc__)
    parser.add_argument("--offline", action="store_true", help="use a scripted local model instead of Claude")
    parser.add_argument("--port", type=int, default=8888)
    args, jupyter_args = parser.parse_known_args(argv)
    install(prefix=sys.prefix)
    with ExitStack() as stack:
        env = dict(os.environ)
        if args.offline:
            api = stack.enter_context(FakeMessagesAPI(fallback=scripted_model))
            home = stack.enter_context(tempfile.TemporaryDirectory(prefix="claude-demo-home-"))
            env.update(api.environment(), HOME=home)
            print(f"Offline demo: the model is scripted ({api.url}); the claude CLI is real.", file=sys.stderr)
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            f"--port={args.port}",
            f"--notebook-dir={NOTEBOOKS}",
            "--LabApp.default_url=/lab/tree/demo.ipynb",
            *jupyter_args,
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        subprocess.run(command, env=env, check=False)


if __name__ == "__main__":
    main()
