"""Which turn an event belongs to: a message the host sent, or a turn the CLI took by itself.

Since CLI 2.1.332 "one message, one turn" no longer describes the stream. Agents run in the
background and, when one finishes, the CLI takes a turn of its own between the host's messages
(it answers a notification it wrote into the conversation); a wake-up the model scheduled does the
same; a background agent's tool calls and permission prompts arrive whenever the agent makes them.
A host that read only while its message was pending would take the CLI's own turn for the answer
to its next message, and stay one turn behind from then on.

The CLI says enough to tell them apart. Each host message is bracketed by ``command_lifecycle``
lines naming its uuid (``started`` ... ``completed``), and its ``result`` names it again in
``user_message_uuid``; a turn of the CLI's own has neither (its ``result`` carries an ``origin``).
Subagent traffic carries ``parent_tool_use_id``, the id of the ``Agent`` call that started it,
and a subagent's permission prompt its ``agent_id``.

So the :class:`Router` follows those markers: events of the host's running message go on the
session's turn queue (``next_event``), everything else on its side channel (``next_side_event``).
A CLI that never sends ``command_lifecycle`` (before 2.1.332) keeps the old rule: everything
belongs to the host's pending message.
"""

from __future__ import annotations

import enum

from ._events import (
    AssistantMessage,
    Event,
    HostToolRequest,
    OwnTurnStarted,
    PermissionRequest,
    RequestCancelled,
    Result,
    StreamEvent,
    SystemInit,
    SystemMessage,
    ToolUseBlock,
    UnknownEvent,
    UserMessage,
)

__all__ = ["OWN", "SIDE_REQUESTS_KEPT", "TASK_EVENTS", "Route", "Router"]

#: ``Router.turn`` while the CLI runs a turn of its own.
OWN = "<the CLI's own turn>"

#: The system messages that follow a background task (an agent, a background command).
TASK_EVENTS = frozenset(
    {"task_started", "task_progress", "task_updated", "task_notification", "background_tasks_changed"}
)

#: How many side-channel requests are remembered for their cancellation. The router never sees a
#: request answered, so without a bound a long session would keep every one; a cancellation comes
#: soon after its request, long before this many others.
SIDE_REQUESTS_KEPT = 256


class Route(enum.Enum):
    HOST = "host"  # the turn queue: part of the host's running message
    SIDE = "side"  # the side channel: nobody's message, or a message that already ended
    BOTH = "both"  # a task event of the running message: its card shows it, the task list notes it
    DROP = "drop"  # bookkeeping only (command_lifecycle)


class Router:
    """The routing state of one CLI process (see the module's docstring)."""

    def __init__(self) -> None:
        #: The host prompt uuid whose turn is running, ``OWN``, or None between turns.
        self.turn: str | None = None
        #: Whether this CLI reports ``command_lifecycle`` (and so can be routed at all).
        self.lifecycle = False
        #: The tool calls the running host turn made: its subagents' traffic is its own.
        self.turn_tools: set[str] = set()
        #: A background agent's id (its task id) -> the ``Agent`` call that started it.
        self.agents: dict[str, str] = {}
        #: Requests put on the side channel, so that their cancellation follows them; oldest first
        #: (a dict as an ordered set), at most ``SIDE_REQUESTS_KEPT``.
        self.side_requests: dict[str, None] = {}
        #: The tool call whose task reported last, until a turn of the CLI's own takes it up.
        self.notified: str | None = None
        #: Set when an event began a turn of the CLI's own; the session sends it ahead of the event.
        self.started: OwnTurnStarted | None = None

    @property
    def host_turn(self) -> bool:
        """Whether events belong to a host message now (always, on a CLI that cannot be routed)."""
        return not self.lifecycle or self.turn not in (None, OWN)

    def route(self, event: Event, prompts: list[str]) -> Route:
        """Where ``event`` goes; ``prompts`` are the host messages not yet answered."""
        if isinstance(event, UnknownEvent) and event.type == "command_lifecycle":
            self._lifecycle(event.raw, prompts)
            return Route.DROP
        if isinstance(event, SystemMessage) and event.subtype in TASK_EVENTS:
            return self._task(event)
        if isinstance(event, AssistantMessage | UserMessage) and event.parent_tool_use_id:
            agent = event.raw.get("agent_id")
            if isinstance(agent, str):
                self.agents.setdefault(agent, event.parent_tool_use_id)
            return self._of_tool(event.parent_tool_use_id)
        if isinstance(event, PermissionRequest | HostToolRequest):
            return self._request(event)
        if isinstance(event, RequestCancelled):
            if event.request_id in self.side_requests:
                del self.side_requests[event.request_id]  # a request is cancelled once
                return Route.SIDE
            return Route.HOST
        if isinstance(event, Result):
            return self._result(event, prompts)
        if self.turn is None and self.lifecycle and _begins_turn(event):
            self.turn = OWN
            self.started, self.notified = OwnTurnStarted(self.notified), None
        if self.turn is OWN or not self.host_turn:
            return Route.SIDE
        if isinstance(event, AssistantMessage):
            self.turn_tools.update(block.id for block in event.content if isinstance(block, ToolUseBlock))
        return Route.HOST

    def _lifecycle(self, raw: dict[str, object], prompts: list[str]) -> None:
        self.lifecycle = True
        command, state = raw.get("command_uuid"), raw.get("state")
        if state == "started" and command in prompts:
            assert isinstance(command, str)
            self.turn, self.turn_tools = command, set()
        elif state == "started" and self.turn is None:
            # A command of the CLI's own: a wake-up the model scheduled (``wakeup_source``).
            source = raw.get("wakeup_source")
            self.turn = OWN
            self.started = OwnTurnStarted(self.notified, source if isinstance(source, str) else None)
            self.notified = None
        elif state == "completed" and command == self.turn:
            self.turn = None

    def _task(self, event: SystemMessage) -> Route:
        tool_use_id = event.raw.get("tool_use_id")
        task_id = event.raw.get("task_id")
        if isinstance(tool_use_id, str):
            if event.subtype == "task_started" and isinstance(task_id, str):
                self.agents[task_id] = tool_use_id
            elif event.subtype == "task_notification":
                self.notified = tool_use_id
                # Its report: the agent asks nothing more, and a long session would keep them all.
                if isinstance(task_id, str):
                    self.agents.pop(task_id, None)
            if self._of_tool(tool_use_id) is Route.HOST:
                return Route.BOTH
        return Route.SIDE

    def _of_tool(self, tool_use_id: str) -> Route:
        running = self.turn not in (None, OWN) and tool_use_id in self.turn_tools
        return Route.HOST if running or not self.lifecycle else Route.SIDE

    def _request(self, event: PermissionRequest | HostToolRequest) -> Route:
        agent = event.raw.get("agent_id") if isinstance(event, PermissionRequest) else None
        if isinstance(agent, str) and agent in self.agents:
            route = self._of_tool(self.agents[agent])
        else:
            route = Route.HOST if self.host_turn else Route.SIDE
        if route is Route.SIDE:
            self.side_requests[event.request_id] = None
            if len(self.side_requests) > SIDE_REQUESTS_KEPT:
                del self.side_requests[next(iter(self.side_requests))]
        return route

    def _result(self, result: Result, prompts: list[str]) -> Route:
        prompt = result.raw.get("user_message_uuid")
        own = self.turn is OWN or (result.origin is not None and prompt not in prompts)
        if own or self.turn == prompt:
            self.turn = None
        return Route.SIDE if own else Route.HOST


def _begins_turn(event: Event) -> bool:
    """Whether a main-chain event between turns means the CLI has begun one of its own."""
    if isinstance(event, SystemMessage):
        return event.subtype == "status" and event.raw.get("status") == "requesting"
    return isinstance(event, SystemInit | AssistantMessage | UserMessage | StreamEvent)
