"""Slash commands the CLI runs itself (``/compact``, ``/clear``, ``/context``, ``/cost``...): what they print and do.

A message that starts with ``/`` is a command, not a question for the model. The CLI reports a
command's output in one of two shapes (CLI 2.1.337):

* an ``assistant`` line whose model is ``<synthetic>``, carrying ``local_command_source``
  (``<local-command-stdout>…</local-command-stdout>``), ``local_command_run`` (``{"command":
  "usage", "args": ""}`` for ``/cost``) or ``local_command_outcome`` (``{"kind":
  "unavailable_headless"}`` for a command stream-json cannot run, such as ``/help``);
* a ``user`` line whose whole text is ``<local-command-stdout>…</local-command-stdout>`` (the
  shape of 2.1.332, and still of ``/compact``'s own ``Compacted``, marked ``isReplay``).

Neither is the model speaking nor the person: both are shown as the command's output. A
compaction (``system``/``compact_boundary``, from ``/compact`` or automatic) and ``/clear`` (an
event of type ``conversation_reset``) become notes in the cell where they happened; outputs of
earlier commands that the CLI repeats after compacting are not shown again. Nothing here knows
how output is drawn (``render.py``) or kept (``conversation.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .session import AssistantMessage, Event, Result, SystemMessage, TextBlock, UnknownEvent, UserMessage

__all__ = [
    "CommandOutput",
    "command_output",
    "compacting",
    "help_pointer",
    "is_replay",
    "local_command",
    "note_for",
    "tokens",
]

_WRAPPED = re.compile(r"\s*<local-command-(stdout|stderr)>(.*?)</local-command-\1>\s*", re.S)
#: What the CLI says when a command cannot run in stream-json (2.1.332 and 2.1.337).
_UNAVAILABLE = "isn't available in this environment"


@dataclass(frozen=True)
class CommandOutput:
    """What a slash command printed."""

    text: str
    #: The command as the CLI names it (``compact``; ``usage`` for ``/cost``), "" when it does not say.
    command: str = ""
    #: It went to the command's stderr.
    is_error: bool = False
    #: The CLI cannot run this command here (stream-json has no terminal UI for it).
    unavailable: bool = False
    #: The CLI marked it as the replay of an earlier message.
    replay: bool = False


def _text(content: list[Any]) -> str:
    return "".join(block.text for block in content if isinstance(block, TextBlock))


def command_output(event: Event) -> CommandOutput | None:
    """The command output ``event`` carries, in either of the CLI's shapes; None for anything else."""
    if not isinstance(event, AssistantMessage | UserMessage) or event.parent_tool_use_id:
        return None
    raw = event.raw
    run = raw.get("local_command_run")
    command = str(run.get("command") or "") if isinstance(run, dict) else ""
    replay = bool(raw.get("isReplay"))
    if isinstance(event, AssistantMessage):
        source = raw.get("local_command_source")
        outcome = raw.get("local_command_outcome")
        if source is None and outcome is None and run is None:
            return None
        text = _text(event.content)
        wrapped = _WRAPPED.fullmatch(source) if isinstance(source, str) else None
        unavailable = (isinstance(outcome, dict) and outcome.get("kind") == "unavailable_headless") or (
            _UNAVAILABLE in text
        )
        is_error = wrapped is not None and wrapped.group(1) == "stderr"
        return CommandOutput(text.strip(), command, is_error, unavailable, replay)
    wrapped = _WRAPPED.fullmatch(_text(event.content))
    if wrapped is None:
        return None
    text = wrapped.group(2).strip()
    return CommandOutput(text, command, wrapped.group(1) == "stderr", _UNAVAILABLE in text, replay)


def compacting(event: Event, *, before: bool) -> bool:
    """Whether the turn is compacting after ``event`` (``before``: whether it was before it)."""
    if isinstance(event, SystemMessage):
        status = event.raw.get("status") if event.subtype == "status" else None
        if event.subtype == "compact_boundary" or status == "compacting":
            return True
        if event.subtype == "status" and event.raw.get("compact_result") == "failed":
            return False
    return before


def is_replay(output: CommandOutput, *, compacted: bool) -> bool:
    """Whether an output is an earlier command's, repeated by the CLI, rather than this turn's.

    After a compaction the CLI writes the outputs of earlier local commands again (2.1.332), then
    the compaction's own ``Compacted`` (marked ``isReplay`` too, in 2.1.337). None of them is new:
    the compaction is a note of its own, and the earlier outputs are in their own cells. Outside a
    compaction, a replayed output whose command is named is another turn's as well.
    The compaction's ``status`` line (``compacting``) comes before all of them.
    """
    if compacted:
        return True
    return output.replay and output.command not in ("", "compact")


def tokens(count: float) -> str:
    """A token count as people read it: 950, 15k, 1.2M."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.3g}M"
    if count >= 1000:
        return f"{count / 1000:.1f}k".replace(".0k", "k") if count < 100_000 else f"{count / 1000:.0f}k"
    return f"{count:.0f}"


def _compaction_note(metadata: dict[str, Any]) -> str:
    before, after = metadata.get("pre_tokens"), metadata.get("post_tokens")
    how = "Compacted the conversation automatically" if metadata.get("trigger") == "auto" else "Compacted"
    note = f"{how}: earlier turns are now a summary"
    if isinstance(before, int | float) and isinstance(after, int | float):
        note += f" (context {tokens(before)} → {tokens(after)} tokens"
        note += f", {tokens(before - after)} freed)" if before > after else ")"
    return note + "."


def note_for(event: Event) -> tuple[str, str] | None:
    """The note (text, kind) an event of a slash command or a compaction puts in the cell, if any."""
    if isinstance(event, SystemMessage):
        if event.subtype == "compact_boundary":
            metadata = event.raw.get("compact_metadata")
            return _compaction_note(metadata if isinstance(metadata, dict) else {}), "info"
        if event.subtype == "status" and event.raw.get("compact_result") == "failed":
            reason = event.raw.get("compact_error") or "no reason given"
            return f"Compaction failed ({reason}); the conversation is unchanged.", "error"
        return None
    if isinstance(event, UnknownEvent) and event.type == "conversation_reset":
        return (
            "Cleared: Claude no longer sees the cells above (a new session starts here). "
            "`%history` lists them; re-running one sends it as a new message."
        ), "info"
    return None


def help_pointer(output: CommandOutput) -> str | None:
    """For a command the CLI cannot run here (``/help`` among them): where to look instead."""
    if not output.unavailable:
        return None
    return (
        "`%help` lists what the notebook offers (its magics, and the slash commands that work here); "
        "Tab after `/` completes Claude Code's commands and skills."
    )


def local_command(result: Result | None) -> str:
    """The local command a turn ran (``clear``, ``compact``, ``cost``...), "" for a message to the model."""
    if result is None:
        return ""
    name = result.raw.get("local_command")
    return name if isinstance(name, str) else ""
