#!/usr/bin/env python3
"""A replay stand-in for the claude CLI, for faults the real one cannot be made to show on cue.

It speaks just enough stream-json: it answers ``initialize`` and ``interrupt`` control requests
and answers each user message by its text:

  HUGE_LINE      a 10 MB assistant text line        HUGE_STDERR   10 MB on stderr, then an answer
  NOISE          non-JSON and broken lines first     NEW_TYPES     message types nobody knows yet
  CRASH          "fatal: boom" on stderr, exit 3     DEAF          a turn that ignores interrupts
  SPAWN_CHILD    starts `sleep 300` (its pid in the answer) and answers
  SLOW           an assistant line every 50 ms for 30 s (busy: reads nothing meanwhile)
  STUBBORN       ignores the interrupt request; SIGINT writes an interrupted result, then exits
                 0.3 s later (like the real CLI, only slower: a message sent meanwhile is lost)
  NEW_REQUEST    a control request nobody knows yet; the answer says how the host replied to it
  NEW_TOOL       a call of a tool nobody knows yet, and its result
  anything else  "echo: <text>"

It appends its argv as one JSON line to $FAKE_CLI_LOG, so tests can check ``--resume``.
A ``rewind_conversation`` request is answered ``{"rewound": true}``, any other request ``{}``;
control requests whose subtype $FAKE_CLI_UNANSWERED names (comma-separated) get no answer at all,
like a hung CLI.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

SESSION = "fake-session-0001"


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def answer(text: str, cost: float = 0.001) -> None:
    emit({"type": "system", "subtype": "init", "session_id": SESSION, "model": "fake", "tools": []})
    emit(
        {
            "type": "assistant",
            "session_id": SESSION,
            "message": {
                "id": "msg_" + uuid.uuid4().hex[:8],
                "model": "fake",
                "role": "assistant",
                "content": [{"type": "text", "text": text}],
            },
        }
    )
    emit(
        {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "session_id": SESSION,
            "result": text,
            "total_cost_usd": cost,
            "usage": {},
            "duration_ms": 1,
            "num_turns": 1,
        }
    )


def assistant_line(text: str) -> None:
    emit(
        {
            "type": "assistant",
            "session_id": SESSION,
            "message": {
                "id": "msg_slow",
                "model": "fake",
                "role": "assistant",
                "content": [{"type": "text", "text": text}],
            },
        }
    )


def interrupted_then_exit(signum: int, frame: Any) -> None:
    emit(
        {
            "type": "result",
            "subtype": "error_during_execution",
            "is_error": True,
            "session_id": SESSION,
            "terminal_reason": "aborted_streaming",
            "total_cost_usd": 0.0,
        }
    )
    time.sleep(0.3)
    os._exit(0)


def main() -> None:
    if os.environ.get("FAKE_CLI_LOG"):
        with open(os.environ["FAKE_CLI_LOG"], "a") as log:
            log.write(json.dumps(sys.argv) + "\n")
    unanswered = set(filter(None, os.environ.get("FAKE_CLI_UNANSWERED", "").split(",")))
    turns = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        if message["type"] == "control_request":
            subtype = message["request"].get("subtype")
            if subtype in unanswered:
                continue
            response = {"rewound": True} if subtype == "rewind_conversation" else {}
            emit(
                {
                    "type": "control_response",
                    "response": {"subtype": "success", "request_id": message["request_id"], "response": response},
                }
            )
            continue
        if message["type"] != "user":
            continue
        turns += 1
        text = message["message"]["content"]
        text = text if isinstance(text, str) else " ".join(b.get("text", "") for b in text)
        if text == "HUGE_LINE":
            answer("x" * 10_000_000, cost=0.001 * turns)
        elif text == "HUGE_STDERR":
            for _ in range(10):
                sys.stderr.write("e" * 1_000_000 + "\n")
            sys.stderr.flush()
            answer("after stderr", cost=0.001 * turns)
        elif text == "NOISE":
            sys.stdout.write("[SandboxDebug] not json at all\n{this is broken\n[1, 2]\n\n")
            sys.stdout.flush()
            answer("clean", cost=0.001 * turns)
        elif text == "NEW_TYPES":
            emit({"type": "brand_new_type", "payload": 1})
            emit({"type": "system", "subtype": "brand_new_subtype"})
            emit({"type": "assistant", "message": {"id": "m", "content": [{"type": "hologram"}]}})
            answer("still fine", cost=0.001 * turns)
        elif text == "NEW_REQUEST":
            emit({"type": "control_request", "request_id": "cli_1", "request": {"subtype": "brand_new_request"}})
            for reply in sys.stdin:  # the host must answer it (with an error), or the turn waits forever
                response = json.loads(reply).get("response") or {}
                if response.get("request_id") == "cli_1":
                    answer(f"host replied {response.get('subtype')}: {response.get('error')}", cost=0.001 * turns)
                    break
        elif text == "NEW_TOOL":
            emit({"type": "system", "subtype": "init", "session_id": SESSION, "model": "fake", "tools": ["Teleport"]})
            call = {
                "type": "tool_use",
                "id": "toolu_new",
                "name": "Teleport",
                "input": {"destination": "Mars", "speed": 9},
            }
            emit({"type": "assistant", "message": {"id": "msg_new", "model": "fake", "content": [call]}})
            result = {"type": "tool_result", "tool_use_id": "toolu_new", "content": [{"type": "hologram"}]}
            emit({"type": "user", "message": {"role": "user", "content": [result]}, "tool_use_result": {"x": 1}})
            answer("arrived", cost=0.001 * turns)
        elif text == "CRASH":
            sys.stderr.write("fatal: boom\n")
            sys.stderr.flush()
            os._exit(3)
        elif text == "DEAF":
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            emit({"type": "system", "subtype": "init", "session_id": SESSION, "model": "fake"})
            for _other in sys.stdin:  # swallow everything, interrupts included, and never answer
                pass
        elif text == "SLOW":
            emit({"type": "system", "subtype": "init", "session_id": SESSION, "model": "fake"})
            for n in range(600):
                assistant_line(f"word {n}")
                time.sleep(0.05)
            answer("slow done", cost=0.001 * turns)
        elif text == "STUBBORN":
            signal.signal(signal.SIGINT, interrupted_then_exit)
            emit({"type": "system", "subtype": "init", "session_id": SESSION, "model": "fake"})
            for _other in sys.stdin:  # interrupts included: read and ignored
                pass
        elif text == "SPAWN_CHILD":
            child = subprocess.Popen(["sleep", "300"])
            answer(str(child.pid), cost=0.001 * turns)
        else:
            answer("echo: " + text, cost=0.001 * turns)


if __name__ == "__main__":
    main()
