"""The control protocol: our requests to the CLI, and the CLI's requests to us.

Ours (``initialize``, ``interrupt``, ``set_model``, ...) carry a request id and wait for a
``control_response``. The CLI's are answered exactly once: ``can_use_tool`` becomes a
:class:`PermissionRequest` for the host to decide; ``mcp_message`` carries JSON-RPC for the SDK MCP
server that serves the host's tools. The MCP handshake and ``tools/list`` are answered here at once;
a ``tools/call`` becomes a :class:`HostToolRequest`, and the host's :class:`ToolResult` becomes the
JSON-RPC reply. That reply is the only way a host-computed result reaches the model: the CLI ignores
``tool_result`` blocks written to its stdin.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from ._errors import ControlRequestError
from ._events import Event, HostToolRequest, PermissionRequest, RequestCancelled

__all__ = ["ControlProtocol", "HostTool", "PendingRequest", "ToolResult"]

log = logging.getLogger("claude_kernel.session")

JSON = dict[str, Any]
Writer = Callable[[Mapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class HostTool:
    """A tool the host implements; the model sees it as ``mcp__<server>__<name>``."""

    name: str
    description: str
    input_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ToolResult:
    """The answer to a :class:`HostToolRequest`.

    ``content`` is text, or a list of Messages-API blocks: ``{"type": "text", "text": ...}`` and
    ``{"type": "image", "source": {"type": "base64", "media_type": ..., "data": ...}}``.
    """

    tool_use_id: str
    content: str | Sequence[Mapping[str, Any]]
    is_error: bool = False


def _mcp_content(content: str | Sequence[Mapping[str, Any]]) -> list[JSON]:
    """Translate Messages-API blocks into MCP content items."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    items: list[JSON] = []
    for block in content:
        if block.get("type") == "image":
            source = block.get("source") or {}
            items.append(
                {"type": "image", "data": source.get("data", ""), "mimeType": source.get("media_type", "image/png")}
            )
        else:
            items.append({"type": "text", "text": str(block.get("text", ""))})
    return items


@dataclass
class PendingRequest:
    """One of our control requests, waiting for its response."""

    subtype: str
    done: anyio.Event = field(default_factory=anyio.Event)
    response: JSON | None = None
    error: str | None = None

    def result(self) -> JSON:
        if self.error is not None:
            raise ControlRequestError(f"{self.subtype}: {self.error}")
        return self.response or {}


@dataclass(frozen=True)
class _ToolCall:
    request_id: str
    rpc_id: Any
    tool_use_id: str


class ControlProtocol:
    """Bookkeeping for control messages in both directions over one CLI process."""

    def __init__(self, write: Writer, *, server_name: str, host_tools: Sequence[HostTool]) -> None:
        self._write = write
        self._server_name = server_name
        self._host_tools = list(host_tools)
        self._ids = itertools.count(1)
        self._nonce = os.urandom(4).hex()
        self._ours: dict[str, PendingRequest] = {}
        self._permissions: dict[str, PermissionRequest] = {}
        self._tool_calls: dict[str, _ToolCall] = {}

    # -- our requests -----------------------------------------------------------------------

    async def send_request(self, subtype: str, **fields: Any) -> PendingRequest:
        request_id = f"req_{next(self._ids)}_{self._nonce}"
        pending = PendingRequest(subtype)
        self._ours[request_id] = pending
        await self._write(
            {"type": "control_request", "request_id": request_id, "request": {"subtype": subtype, **fields}}
        )
        return pending

    def fail_all(self, reason: str) -> None:
        """The process is gone: nobody will answer what is still pending."""
        for pending in self._ours.values():
            pending.error = reason
            pending.done.set()
        self._ours.clear()
        self._permissions.clear()
        self._tool_calls.clear()

    # -- answers to the CLI's requests ------------------------------------------------------

    async def _respond(self, request_id: str, payload: Mapping[str, Any]) -> None:
        await self._write(
            {
                "type": "control_response",
                "response": {"subtype": "success", "request_id": request_id, "response": dict(payload)},
            }
        )

    async def _respond_error(self, request_id: str, message: str) -> None:
        await self._write(
            {"type": "control_response", "response": {"subtype": "error", "request_id": request_id, "error": message}}
        )

    async def allow(
        self, request: PermissionRequest, updated_input: Mapping[str, Any] | None, always: bool, mode: str | None
    ) -> bool:
        if self._permissions.pop(request.request_id, None) is None:
            return False
        payload: JSON = {"behavior": "allow", "updatedInput": dict(updated_input or request.input)}
        updates: list[JSON] = []
        if always:
            updates.append(
                {
                    "type": "addRules",
                    "rules": [{"toolName": request.tool_name}],
                    "behavior": "allow",
                    "destination": "session",
                }
            )
        if mode:
            updates.append({"type": "setMode", "mode": mode, "destination": "session"})
        if updates:
            payload["updatedPermissions"] = updates
        await self._respond(request.request_id, payload)
        return True

    async def deny(self, request: PermissionRequest, message: str, interrupt: bool) -> bool:
        if self._permissions.pop(request.request_id, None) is None:
            return False
        payload: JSON = {"behavior": "deny", "message": message}
        if interrupt:
            payload["interrupt"] = True
        await self._respond(request.request_id, payload)
        return True

    async def send_tool_result(self, result: ToolResult) -> bool:
        call = self._tool_calls.pop(result.tool_use_id, None)
        if call is None:
            return False
        await self._respond(
            call.request_id,
            {
                "mcp_response": {
                    "jsonrpc": "2.0",
                    "id": call.rpc_id,
                    "result": {"content": _mcp_content(result.content), "isError": result.is_error},
                }
            },
        )
        return True

    # -- incoming control messages ----------------------------------------------------------

    async def handle(self, message: JSON) -> Event | None:
        """Process one control message; return the event the host must see, if any."""
        kind = message.get("type")
        if kind == "control_response":
            self._on_response(message.get("response") or {})
            return None
        if kind == "control_cancel_request":
            return self._on_cancel(message.get("request_id", ""))
        request_id = message.get("request_id", "")
        request = message.get("request") or {}
        subtype = request.get("subtype")
        if subtype == "can_use_tool":
            permission = PermissionRequest(
                request_id=request_id,
                tool_name=request.get("tool_name", ""),
                input=request.get("input") or {},
                tool_use_id=request.get("tool_use_id", ""),
                suggestions=list(request.get("permission_suggestions") or []),
                description=request.get("description") or "",
                blocked_path=request.get("blocked_path"),
                raw=request,
            )
            self._permissions[request_id] = permission
            return permission
        if subtype == "mcp_message":
            return await self._on_mcp(request_id, request.get("server_name", ""), request.get("message") or {})
        log.warning("answering unsupported control request %r with an error", subtype)
        await self._respond_error(request_id, f"unsupported control request: {subtype}")
        return None

    def _on_response(self, response: JSON) -> None:
        pending = self._ours.pop(response.get("request_id", ""), None)
        if pending is None:
            return
        if response.get("subtype") == "error":
            pending.error = str(response.get("error") or "unknown error")
        else:
            pending.response = response.get("response") or {}
        pending.done.set()

    def _on_cancel(self, request_id: str) -> Event | None:
        permission = self._permissions.pop(request_id, None)
        if permission is not None:
            return RequestCancelled(request_id, permission.tool_use_id)
        return None

    async def _on_mcp(self, request_id: str, server: str, rpc: JSON) -> Event | None:
        method = rpc.get("method", "")
        rpc_id = rpc.get("id")
        if server != self._server_name:
            await self._mcp_reply(request_id, rpc_id, error=(-32601, f"unknown MCP server {server!r}"))
            return None
        if method == "initialize":
            client_version = (rpc.get("params") or {}).get("protocolVersion", "2025-06-18")
            await self._mcp_reply(
                request_id,
                rpc_id,
                result={
                    "protocolVersion": client_version,
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": self._server_name, "version": "1"},
                },
            )
        elif method == "tools/list":
            await self._mcp_reply(
                request_id,
                rpc_id,
                result={
                    "tools": [
                        {"name": t.name, "description": t.description, "inputSchema": dict(t.input_schema)}
                        for t in self._host_tools
                    ]
                },
            )
        elif method == "tools/call":
            params = rpc.get("params") or {}
            meta = params.get("_meta") or {}
            tool_use_id = meta.get("claudecode/toolUseId") or f"rpc-{rpc_id}"
            self._tool_calls[tool_use_id] = _ToolCall(request_id, rpc_id, tool_use_id)
            return HostToolRequest(request_id, params.get("name", ""), params.get("arguments") or {}, tool_use_id)
        elif method == "notifications/cancelled":
            cancelled_id = (rpc.get("params") or {}).get("requestId")
            await self._mcp_reply(request_id, None, result={})
            for tool_use_id, call in list(self._tool_calls.items()):
                if call.rpc_id == cancelled_id:
                    del self._tool_calls[tool_use_id]
                    return RequestCancelled(call.request_id, tool_use_id)
        elif method.startswith("notifications/"):
            # Notifications have no JSON-RPC reply, but the control request carrying one does.
            await self._mcp_reply(request_id, None, result={})
        else:
            await self._mcp_reply(request_id, rpc_id, error=(-32601, f"method not found: {method}"))
        return None

    async def _mcp_reply(
        self, request_id: str, rpc_id: Any, *, result: JSON | None = None, error: tuple[int, str] | None = None
    ) -> None:
        reply: JSON = {"jsonrpc": "2.0"}
        if rpc_id is not None:
            reply["id"] = rpc_id
        if error is not None:
            reply["error"] = {"code": error[0], "message": error[1]}
        else:
            reply["result"] = result or {}
        await self._respond(request_id, {"mcp_response": reply})
