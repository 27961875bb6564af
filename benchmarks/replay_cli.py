#!/usr/bin/env python3
"""A stand-in for the claude CLI that answers every user message with the lines of a file, as fast as a pipe takes them.

For the event-pipeline benchmark: the reader is measured, not a model or the CLI. It answers
control requests (``initialize`` and the rest) with success, writes the file named by
``$BENCH_REPLAY`` (stream-json lines ending with a ``result``) for each user message, and exits at
the end of its input. ``-v`` prints a version, for clients that check it.
"""

import json
import os
import sys


def main() -> None:
    if "-v" in sys.argv[1:] or "--version" in sys.argv[1:]:
        print("2.1.331 (Claude Code)")
        return
    with open(os.environ["BENCH_REPLAY"], "rb") as replay:
        answer = replay.read()
    out = sys.stdout.buffer
    for line in sys.stdin:
        message = json.loads(line) if line.strip() else {}
        if message.get("type") == "control_request":
            response = {"subtype": "success", "request_id": message["request_id"], "response": {}}
            out.write(json.dumps({"type": "control_response", "response": response}).encode() + b"\n")
            out.flush()
        elif message.get("type") == "user":
            out.write(answer)
            out.flush()


if __name__ == "__main__":
    main()
