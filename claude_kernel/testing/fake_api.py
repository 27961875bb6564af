"""A scripted stand-in for the Anthropic Messages API, served on 127.0.0.1.

The real ``claude`` CLI talks to it through ``ANTHROPIC_BASE_URL``, so tests (and the offline demo)
exercise the whole real stack and only the model is fake. Replies stream as Server-Sent Events in
the order the real API uses (``message_start``, per block ``content_block_start`` / deltas /
``content_block_stop``, ``message_delta``, ``message_stop``), which is what the CLI parses.

Replies are queued with :meth:`FakeMessagesAPI.enqueue`; each model request takes the next one. A
queued item may also be a callable that builds the reply from the request. With the queue empty,
the ``fallback`` responder answers (by default it echoes the user's text, which makes multi-turn
tests readable). Every model request body is recorded in :attr:`FakeMessagesAPI.requests`.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Disconnect",
    "ErrorReply",
    "FakeMessagesAPI",
    "Reply",
    "Text",
    "Thinking",
    "ToolUse",
    "echo_responder",
    "first_user_text",
    "is_notification",
    "last_user_content",
    "tool_results",
    "user_text",
]


@dataclass(frozen=True)
class Text:
    """A text block, streamed ``chunk`` characters per ``text_delta``."""

    text: str
    chunk: int = 16


@dataclass(frozen=True)
class Thinking:
    """A thinking block, streamed as ``thinking_delta`` events."""

    text: str
    chunk: int = 16


@dataclass(frozen=True)
class ToolUse:
    """A ``tool_use`` block; ``id`` is generated when left empty."""

    name: str
    input: Mapping[str, Any]
    id: str = ""


Block = Text | Thinking | ToolUse


@dataclass(frozen=True)
class Reply:
    """One streamed assistant message.

    ``delay`` seconds pass between deltas (slow streams make interrupt tests deterministic);
    ``stop_reason`` defaults to ``tool_use`` when a block asks for a tool, else ``end_turn``.
    ``input_tokens`` is the usage the reply reports: the CLI measures how full the context window
    is by it, so a large figure brings auto-compaction near without sending that much text.
    """

    blocks: tuple[Block, ...]
    delay: float = 0.0
    stop_reason: str | None = None
    input_tokens: int = 100

    @classmethod
    def text(cls, text: str, *, delay: float = 0.0, chunk: int = 16) -> Reply:
        return cls((Text(text, chunk),), delay=delay)

    @classmethod
    def tool(cls, name: str, tool_input: Mapping[str, Any], *, say: str = "") -> Reply:
        blocks: tuple[Block, ...] = (ToolUse(name, tool_input),)
        return cls(((Text(say), *blocks)) if say else blocks)


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error with an Anthropic-style JSON body."""

    status: int
    type: str
    message: str

    def body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.type, "message": self.message}}


@dataclass(frozen=True)
class Disconnect:
    """Close the connection mid-block, after ``after_text`` has streamed (``delay`` s between deltas)."""

    after_text: str = ""
    delay: float = 0.0


Responder = Callable[[dict[str, Any]], Reply | ErrorReply | Disconnect]
Scripted = Reply | ErrorReply | Disconnect | Responder


def last_user_content(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The content blocks of the last user message (a request may end with a system message)."""
    for message in reversed(request.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    return []


def user_text(request: Mapping[str, Any]) -> str:
    """The text the user typed in the last user message of a request.

    The CLI prepends ``<system-reminder>`` context blocks to the user's own text, and after a tool
    call the last user message holds only ``tool_result`` blocks; both are skipped here.
    """
    return "\n".join(
        block.get("text", "")
        for block in last_user_content(request)
        if block.get("type") == "text" and not block.get("text", "").lstrip().startswith("<system-reminder>")
    )


def first_user_text(request: Mapping[str, Any]) -> str:
    """All text of the first message of a request: a subagent's request begins with its prompt.

    (On CLI 2.1.337 a subagent's requests offer the same tools as the main agent's, ``Agent``
    included, so the prompt is what tells a script which conversation is asking.)
    """
    messages = request.get("messages") or [{}]
    content = messages[0].get("content")
    if isinstance(content, str):
        return content
    return "\n".join(str(b.get("text", "")) for b in content or [] if isinstance(b, dict))


def is_notification(request: Mapping[str, Any]) -> bool:
    """Whether the request answers a notification the CLI wrote itself (a background task ended)."""
    return any(
        "[SYSTEM NOTIFICATION - NOT USER INPUT]" in str(block.get("text", ""))
        for block in last_user_content(request)
        if block.get("type") == "text"
    )


def tool_results(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``tool_result`` blocks of the last user message of a request."""
    return [b for b in last_user_content(request) if b.get("type") == "tool_result"]


def echo_responder(request: dict[str, Any]) -> Reply:
    """The default fallback: repeat the user's words, or acknowledge a tool result."""
    results = tool_results(request)
    if results and not user_text(request):
        return Reply.text("Done.")
    return Reply.text(f"You said: {user_text(request)}")


class FakeMessagesAPI:
    """A threaded HTTP server on 127.0.0.1 that plays scripted model replies.

    Use as a context manager; :attr:`url` goes into ``ANTHROPIC_BASE_URL``.
    """

    def __init__(self, *, fallback: Responder = echo_responder, model: str = "claude-fake-1") -> None:
        self.fallback = fallback
        self.model = model
        self.requests: list[dict[str, Any]] = []
        # Each text block's first delta and the wall-clock time it was flushed to the
        # client: what a latency benchmark measures the page against (``time.time()``, not a
        # monotonic clock, because a browser's ``Date.now()`` is compared with it).
        self.first_text_sent: list[tuple[str, float]] = []
        self._queue: deque[Scripted] = deque()
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeMessagesAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def enqueue(self, *replies: Scripted) -> None:
        """Queue replies for the next model requests, in order."""
        with self._lock:
            self._queue.extend(replies)

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` model requests have arrived."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} model requests arrived")
            return list(self.requests)

    def environment(self) -> dict[str, str]:
        """The variables that point a ``claude`` CLI at this server and keep it off the network."""
        return {
            "ANTHROPIC_BASE_URL": self.url,
            "ANTHROPIC_API_KEY": "sk-ant-fake-key-for-tests",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        }

    # -- request handling -------------------------------------------------------------------

    def _next_reply(self, body: dict[str, Any]) -> Reply | ErrorReply | Disconnect:
        with self._lock:
            self.requests.append(body)
            self._lock.notify_all()
            scripted = self._queue.popleft() if self._queue else self.fallback
        return scripted(body) if callable(scripted) else scripted

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Streams are many small writes; without this, delayed ACKs add ~40 ms per reused connection.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output quiet; the recorded requests are the log."""

            def do_HEAD(self) -> None:  # the CLI's connectivity probe
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                self._send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.split("?")[0].endswith("/v1/messages"):
                    self._send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
                    return
                if body.get("output_config") and not body.get("tools"):
                    # The CLI's side request for a session title: answer it without using the script.
                    self._stream(Reply.text('{"title": "Notebook session"}'), body)
                    return
                reply = api._next_reply(body)
                if isinstance(reply, ErrorReply):
                    self._send_json(reply.status, reply.body())
                elif isinstance(reply, Disconnect):
                    self._stream(Reply.text(reply.after_text, delay=reply.delay), body, disconnect=True)
                else:
                    self._stream(reply, body)

            def _send_json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", api._new_id("req"))
                self.end_headers()
                self.wfile.write(data)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def _event(self, name: str, payload: dict[str, Any]) -> None:
                payload = {"type": name, **payload}
                self._chunk(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())

            def _stream(self, reply: Reply, body: dict[str, Any], *, disconnect: bool = False) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("request-id", api._new_id("req"))
                self.end_headers()
                try:
                    self._write_message(reply, body, disconnect=disconnect)
                except (BrokenPipeError, ConnectionResetError):
                    # The CLI hung up (an interrupt): stop streaming quietly.
                    self.close_connection = True

            def _write_message(self, reply: Reply, body: dict[str, Any], *, disconnect: bool) -> None:
                model = body.get("model") or api.model
                self._event(
                    "message_start",
                    {
                        "message": {
                            "id": api._new_id("msg"),
                            "type": "message",
                            "role": "assistant",
                            "model": model,
                            "content": [],
                            "stop_reason": None,
                            "stop_sequence": None,
                            "usage": {
                                "input_tokens": reply.input_tokens,
                                "output_tokens": 1,
                                "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 0,
                            },
                        }
                    },
                )
                output_tokens = 0
                for index, block in enumerate(reply.blocks):
                    output_tokens += self._write_block(index, block, reply.delay, stop=not disconnect)
                if disconnect:
                    self.close_connection = True
                    return
                stop_reason = reply.stop_reason or (
                    "tool_use" if any(isinstance(b, ToolUse) for b in reply.blocks) else "end_turn"
                )
                self._event(
                    "message_delta",
                    {
                        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                        "usage": {"output_tokens": max(output_tokens, 1)},
                    },
                )
                self._event("message_stop", {})
                self._chunk(b"")

            def _write_block(self, index: int, block: Block, delay: float, *, stop: bool = True) -> int:
                if isinstance(block, ToolUse):
                    start = {
                        "type": "tool_use",
                        "id": block.id or api._new_id("toolu"),
                        "name": block.name,
                        "input": {},
                    }
                    pieces = [json.dumps(dict(block.input))]
                    delta_type, field_name = "input_json_delta", "partial_json"
                elif isinstance(block, Thinking):
                    start = {"type": "thinking", "thinking": "", "signature": ""}
                    pieces = _split(block.text, block.chunk)
                    delta_type, field_name = "thinking_delta", "thinking"
                else:
                    start = {"type": "text", "text": ""}
                    pieces = _split(block.text, block.chunk)
                    delta_type, field_name = "text_delta", "text"
                self._event("content_block_start", {"index": index, "content_block": start})
                for number, piece in enumerate(pieces):
                    if delay:
                        time.sleep(delay)
                    self._event(
                        "content_block_delta",
                        {
                            "index": index,
                            "delta": {"type": delta_type, field_name: piece},
                        },
                    )
                    if number == 0 and delta_type == "text_delta":
                        with api._lock:
                            api.first_text_sent.append((piece, time.time()))
                if isinstance(block, Thinking):
                    self._event(
                        "content_block_delta",
                        {
                            "index": index,
                            "delta": {"type": "signature_delta", "signature": "fake-signature"},
                        },
                    )
                if stop:
                    self._event("content_block_stop", {"index": index})
                return sum(len(p) for p in pieces) // 4 + 1

        return Handler


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A CLI killed or interrupted mid-request resets its connection: no error of the fake's.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
