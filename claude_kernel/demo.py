"""``./dev lab``: a runnable example of the Session (the kernel will take this place).

By default the model is scripted (the tests' fake Messages API on 127.0.0.1), so it runs without an
account; ``--live`` talks to whatever your ``claude`` CLI is logged in to.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack

import anyio

from .session import (
    AssistantMessage,
    PermissionRequest,
    Result,
    Session,
    SessionOptions,
    TextDelta,
    ToolUseBlock,
)
from .testing.fake_api import FakeMessagesAPI, Reply


async def _converse(options: SessionOptions, prompts: list[str]) -> None:
    async with await Session.spawn(options) as session:
        for prompt in prompts:
            print(f"\n>>> {prompt}")
            await session.send_message(prompt)
            while (event := await session.next_event()) is not None:
                if isinstance(event, TextDelta):
                    print(event.text, end="", flush=True)
                elif isinstance(event, AssistantMessage):
                    for block in event.content:
                        if isinstance(block, ToolUseBlock):
                            print(f"\n[tool] {block.name} {block.input}")
                elif isinstance(event, PermissionRequest):
                    print(f"\n[allowing {event.tool_name}]")
                    await session.allow(event)
                elif isinstance(event, Result):
                    print(f"\n[{event.subtype}: ${event.cost_usd:.4f}, session ${session.total_cost_usd:.4f}]")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="claude_kernel.demo", description=__doc__)
    parser.add_argument("--live", action="store_true", help="use your real claude login instead of a script")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="claude-demo-"))
        env: dict[str, str] = {}
        if not args.live:
            api = stack.enter_context(FakeMessagesAPI())
            api.enqueue(
                Reply.text("Hello! I am a **scripted** model, streaming word by word.", delay=0.03, chunk=4),
                Reply.tool("Bash", {"command": "touch hello.txt", "description": "Create a file"}),
                Reply.text("I created `hello.txt` after you allowed it."),
            )
            env = {**api.environment(), "HOME": workdir}
            print("Offline demo: the model is scripted (a fake Messages API on 127.0.0.1).", file=sys.stderr)
        options = SessionOptions(cwd=workdir, env=env)
        anyio.run(_converse, options, ["Say hello", "Create hello.txt"])


if __name__ == "__main__":
    main()
