"""A scripted model that delegates to background agents, for tests and the offline demo.

The real CLI runs the agent: its requests reach the fake Messages API like the main agent's, and
when the agent is done the CLI takes a turn of its own to tell the model. This script plays all
three conversations, told apart by their first message (see ``fake_api.first_user_text``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .fake_api import Reply, first_user_text, is_notification, tool_results, user_text

__all__ = ["AGENT_TASK", "DelegatingModel"]

#: What the agent is asked to do; it marks the agent's own requests.
AGENT_TASK = "AGENT-TASK: find the answer"


@dataclass
class DelegatingModel:
    """A model that delegates when a message says ``delegate``, and otherwise echoes.

    - ``delegate``: the main agent calls ``Agent`` in the background and says ``launched``;
    - the agent waits until :attr:`release` is set (so a test decides when it reports), runs
      ``agent_command`` with Bash first if one is given, then reports ``report``;
    - the CLI's notification turn is answered ``The agent reported: <report>``;
    - any other message: ``You said: <text>``.
    """

    report: str = "The answer is 42."
    agent_command: str | None = None
    #: Set to let the agent finish (it is set from the start unless ``hold`` is given).
    release: threading.Event = field(default_factory=threading.Event)
    hold: bool = False
    #: Whether the agent ran in the background (``run_in_background``); False: in the foreground.
    background: bool = True
    #: Seconds between the words of the answer to the CLI's notification (a slow turn to interrupt).
    notification_delay: float = 0.0

    def __post_init__(self) -> None:
        if not self.hold:
            self.release.set()

    def __call__(self, request: dict[str, Any]) -> Reply:
        if AGENT_TASK in first_user_text(request):
            return self._agent(request)
        if is_notification(request):
            return Reply.text(f"The agent reported: {self.report}", delay=self.notification_delay, chunk=4)
        text = user_text(request)
        if text == "delegate":
            launch: dict[str, Any] = {"description": "find the answer", "prompt": AGENT_TASK}
            launch["subagent_type"] = "general-purpose"
            # Since CLI 2.1.332 an agent runs in the background unless told otherwise.
            launch["run_in_background"] = self.background
            return Reply.tool("Agent", launch, say="Delegating.")
        if not text and tool_results(request):
            return Reply.text("launched" if self.background else "The agent is done.")
        return Reply.text(f"You said: {text}")

    def _agent(self, request: dict[str, Any]) -> Reply:
        if self.agent_command is not None and not tool_results(request):
            self.release.wait(60)
            return Reply.tool("Bash", {"command": self.agent_command, "description": "agent's command"})
        if self.agent_command is None:
            self.release.wait(60)
        return Reply.text(self.report)
