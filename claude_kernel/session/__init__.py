"""An async (anyio) driver of the Claude Code CLI: one persistent process, many turns.

No Jupyter import lives here; the kernel and the ``%%claude`` magic both build on it. ::

    from claude_kernel.session import Session, SessionOptions, Result

    async with await Session.spawn(SessionOptions(model="sonnet")) as session:
        await session.send_message("What does this repository do?")
        while (event := await session.next_event()) is not None:
            ...

Every message is answered (its turn ends with a :class:`Result`) or raises; a hung or crashed CLI
is replaced by one that resumes the conversation. Each ``Result`` names the turn's prompt
(``prompt_uuid``) and its last transcript entry (``last_message_uuid``): ``Session.rewind(to=...)``
goes back to the end of any turn (in place, or on a fork where the CLI refuses), ``Session.rewind_files(prompt_uuid)``
undoes the files a turn changed, and ``SessionOptions.max_budget_usd`` caps spending across
restarts (:class:`BudgetExceededError`).
"""

from ._control import HostTool as HostTool
from ._control import ToolResult as ToolResult
from ._errors import BudgetExceededError as BudgetExceededError
from ._errors import CLINotFoundError as CLINotFoundError
from ._errors import ControlRequestError as ControlRequestError
from ._errors import MalformedLineError as MalformedLineError
from ._errors import NotConnectedError as NotConnectedError
from ._errors import ProcessDiedError as ProcessDiedError
from ._errors import RewindError as RewindError
from ._errors import SessionError as SessionError
from ._events import AssistantMessage as AssistantMessage
from ._events import ContentBlock as ContentBlock
from ._events import Event as Event
from ._events import HostToolRequest as HostToolRequest
from ._events import OwnTurnStarted as OwnTurnStarted
from ._events import PermissionRequest as PermissionRequest
from ._events import RequestCancelled as RequestCancelled
from ._events import Result as Result
from ._events import StreamEvent as StreamEvent
from ._events import SystemInit as SystemInit
from ._events import SystemMessage as SystemMessage
from ._events import TextBlock as TextBlock
from ._events import TextDelta as TextDelta
from ._events import ThinkingBlock as ThinkingBlock
from ._events import ThinkingDelta as ThinkingDelta
from ._events import ToolInputDelta as ToolInputDelta
from ._events import ToolResultBlock as ToolResultBlock
from ._events import ToolUseBlock as ToolUseBlock
from ._events import UnknownBlock as UnknownBlock
from ._events import UnknownEvent as UnknownEvent
from ._events import UserMessage as UserMessage
from ._options import SessionOptions as SessionOptions
from ._options import find_cli as find_cli
from ._session import Rewound as Rewound
from ._session import Session as Session
