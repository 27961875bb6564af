"""Small helpers shared by the session tests."""

from __future__ import annotations

from claude_kernel.session import Event, Session


async def collect_turn(session: Session) -> list[Event]:
    """Read events until the turn ends."""
    events: list[Event] = []
    while (event := await session.next_event()) is not None:
        events.append(event)
    return events


def of_type(events: list[Event], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]
