"""Small helpers shared by the session tests."""

from __future__ import annotations

from typing import TypeVar

from claude_kernel.session import Event, Session

T = TypeVar("T")


async def collect_turn(session: Session) -> list[Event]:
    """Read events until the turn ends."""
    events: list[Event] = []
    while (event := await session.next_event()) is not None:
        events.append(event)
    return events


def of_type(events: list[Event], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]
