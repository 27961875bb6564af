"""Which turn an event belongs to (session/_routing.py), fed the lines CLI 2.1.337 writes."""

from __future__ import annotations

from typing import Any

from claude_kernel.session import OwnTurnStarted, PermissionRequest, RequestCancelled, Result
from claude_kernel.session._events import parse_message
from claude_kernel.session._routing import OWN, SIDE_REQUESTS_KEPT, Route, Router

PROMPT = "11111111-1111-1111-1111-111111111111"


def lifecycle(state: str, command: str = PROMPT, **extra: Any) -> dict[str, Any]:
    return {"type": "command_lifecycle", "command_uuid": command, "state": state, **extra}


def assistant(*blocks: dict[str, Any], parent: str | None = None, agent: str | None = None) -> dict[str, Any]:
    line: dict[str, Any] = {"type": "assistant", "message": {"id": "m", "content": list(blocks)}}
    line["parent_tool_use_id"] = parent
    if agent:
        line["agent_id"] = agent
    return line


def result(**extra: Any) -> dict[str, Any]:
    return {"type": "result", "subtype": "success", "total_cost_usd": 0.01, **extra}


def task(subtype: str, **extra: Any) -> dict[str, Any]:
    return {"type": "system", "subtype": subtype, "task_id": "agent-1", "tool_use_id": "toolu_agent", **extra}


def permission(agent: str | None, request_id: str = "req-1") -> PermissionRequest:
    raw = {"subtype": "can_use_tool", "tool_name": "Bash", "tool_use_id": "toolu_inner"}
    if agent:
        raw["agent_id"] = agent
    return PermissionRequest(request_id, "Bash", {}, "toolu_inner", [], "", None, raw)


def routes(router: Router, lines: list[dict[str, Any]], prompts: list[str]) -> list[Route]:
    return [router.route(parse_message(line), prompts) for line in lines]


def test_a_host_turn_and_its_agent_then_the_clis_own_turn() -> None:
    router, prompts = Router(), [PROMPT]
    launch = {"type": "tool_use", "id": "toolu_agent", "name": "Agent", "input": {}}
    host = routes(
        router,
        [
            lifecycle("queued"),
            lifecycle("started"),
            {"type": "system", "subtype": "init", "session_id": "s"},
            assistant(launch),
            task("task_started", is_backgrounded=True),
            assistant({"type": "text", "text": "working"}, parent="toolu_agent", agent="agent-1"),
            result(user_message_uuid=PROMPT),
            lifecycle("completed"),
        ],
        prompts,
    )
    assert host == [Route.DROP, Route.DROP, Route.HOST, Route.HOST, Route.BOTH, Route.HOST, Route.HOST, Route.DROP]
    prompts.clear()
    # The agent goes on after its turn: its traffic and its approval are nobody's message now.
    assert routes(router, [assistant({"type": "text", "text": "more"}, parent="toolu_agent")], prompts) == [Route.SIDE]
    assert router.route(permission("agent-1"), prompts) is Route.SIDE
    assert routes(router, [task("task_notification", status="completed")], prompts) == [Route.SIDE]
    # Then the CLI answers the notification by itself.
    own = routes(
        router,
        [
            {"type": "system", "subtype": "init", "session_id": "s"},
            {"type": "system", "subtype": "status", "status": "requesting"},
            assistant({"type": "text", "text": "it reported"}),
        ],
        prompts,
    )
    assert own == [Route.SIDE, Route.SIDE, Route.SIDE]
    assert router.started == OwnTurnStarted("toolu_agent") and router.turn is OWN
    end = parse_message(result(origin={"kind": "task-notification"}))
    assert isinstance(end, Result) and router.route(end, prompts) is Route.SIDE and router.turn is None


def test_a_message_sent_during_the_clis_own_turn_waits_for_its_start() -> None:
    router, prompts = Router(), [PROMPT]
    router.lifecycle = True
    routes(router, [{"type": "system", "subtype": "status", "status": "requesting"}], prompts)
    assert router.turn is OWN  # began before the host's message was started
    assert routes(router, [lifecycle("queued"), assistant({"type": "text", "text": "own"})], prompts) == [
        Route.DROP,
        Route.SIDE,
    ]
    assert routes(router, [result(origin={"kind": "task-notification"})], prompts) == [Route.SIDE]
    assert routes(router, [lifecycle("started"), assistant({"type": "text", "text": "mine"})], prompts) == [
        Route.DROP,
        Route.HOST,
    ]
    assert routes(router, [result(user_message_uuid=PROMPT)], prompts) == [Route.HOST]


def test_a_wake_up_is_a_turn_of_the_clis_own() -> None:
    router = Router()
    router.lifecycle = True
    assert routes(router, [lifecycle("started", "other", wakeup_source="loop_wakeup")], []) == [Route.DROP]
    assert router.started == OwnTurnStarted(None, "loop_wakeup") and router.turn is OWN


def test_a_cli_without_lifecycle_markers_keeps_one_message_one_turn() -> None:
    router, prompts = Router(), [PROMPT]
    lines = [
        {"type": "system", "subtype": "init", "session_id": "s"},
        assistant({"type": "text", "text": "hi"}),
        task("task_notification"),
        result(),
    ]
    assert routes(router, lines, prompts) == [Route.HOST, Route.HOST, Route.BOTH, Route.HOST]
    assert router.route(permission("agent-1"), prompts) is Route.HOST
    assert router.started is None


def test_the_router_forgets_what_it_no_longer_needs() -> None:
    """A long session's background requests and agents do not pile up in the router."""
    router = Router()
    router.lifecycle = True
    for n in range(SIDE_REQUESTS_KEPT + 10):
        assert router.route(permission(None, f"req-{n}"), []) is Route.SIDE
    assert len(router.side_requests) == SIDE_REQUESTS_KEPT and "req-0" not in router.side_requests
    last = RequestCancelled(f"req-{SIDE_REQUESTS_KEPT + 9}", "toolu_inner")
    assert router.route(last, []) is Route.SIDE
    assert last.request_id not in router.side_requests  # cancelled once, then forgotten
    routes(router, [task("task_started")], [])
    assert router.agents == {"agent-1": "toolu_agent"}
    routes(router, [task("task_notification", status="completed")], [])
    assert router.agents == {} and router.notified == "toolu_agent"
