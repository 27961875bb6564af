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
from .testing.fake_api import FakeMessagesAPI, Reply, Text, Thinking, tool_results, user_text

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

_SCRIPTED_NOTE = "*(This is the offline demo: a scripted model, not Claude.)*\n\n"


def scripted_model(request: dict[str, Any]) -> Reply:
    """The offline demo's model: it reacts to a few keywords in the cell and says it is scripted."""
    if tool_results(request) and not user_text(request):
        return Reply.text("Done: the tool ran and I saw its result.", delay=0.02, chunk=4)
    text = user_text(request).lower()
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
