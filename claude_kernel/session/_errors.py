"""The session layer's exceptions: one base class, one subclass per way things go wrong."""

from __future__ import annotations

__all__ = [
    "BudgetExceededError",
    "CLINotFoundError",
    "ControlRequestError",
    "MalformedLineError",
    "NotConnectedError",
    "ProcessDiedError",
    "RewindError",
    "SessionError",
]


class SessionError(Exception):
    """Base class of everything :mod:`claude_kernel.session` raises."""


class CLINotFoundError(SessionError):
    """No ``claude`` executable was found; the message says how to install one."""


class NotConnectedError(SessionError):
    """The session was closed (or its stdin was), so nothing more can be sent."""


class ProcessDiedError(SessionError):
    """The CLI process ended when it should not have (a crash, a kill, a bad flag).

    The next :meth:`~claude_kernel.session.Session.send_message` starts a new process that resumes
    the conversation, so a caller can report this error and carry on.
    """

    def __init__(self, exit_code: int | None, stderr_tail: str) -> None:
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        detail = f"\n--- last lines of its stderr ---\n{stderr_tail}" if stderr_tail.strip() else ""
        super().__init__(f"the claude CLI exited unexpectedly (exit code {exit_code}){detail}")


class ControlRequestError(SessionError):
    """The CLI answered one of our control requests with an error."""


class MalformedLineError(SessionError):
    """A stdout line looked like JSON but did not parse; it is logged and skipped, never fatal."""


class BudgetExceededError(SessionError):
    """``SessionOptions.max_budget_usd`` is spent, so no turn was started.

    The message names the budget and what was spent; start a session with a larger budget (or
    none) to go on, resuming the conversation by its session id.
    """

    def __init__(self, budget_usd: float, spent_usd: float) -> None:
        self.budget_usd = budget_usd
        self.spent_usd = spent_usd
        super().__init__(
            f"the budget of ${budget_usd:.4f} for this session is spent (${spent_usd:.4f} so far), so the message "
            "was not sent; raise SessionOptions.max_budget_usd to go on"
        )


class RewindError(SessionError):
    """The CLI refused to rewind (an unknown message uuid, or a truncation ``dropping_turn`` forbids).

    Nothing changed: the session goes on with the conversation it had.
    """
