"""Tab completion and Shift-Tab help for the Claude kernel's cells (no kernel here, only text).

What a cell can hold decides what completes: a ``%name`` at the start of a line in the leading
magic block (and that magic's arguments: model names, permission modes, tool names, directories),
a ``/command`` at the start of the message (the CLI's slash commands, custom commands and skills),
and ``@path`` file mentions anywhere in the message, against the CLI's working directory. Help for
a magic is its usage text, for a slash command its description. Both functions return the content
of the Jupyter reply as is.

The kernel describes what it knows in a :class:`Vocabulary` built per request: the magics' help,
and the values that change at run time (models and commands from the CLI's ``initialize`` answer,
the tools, slash commands and skills of its last ``system/init``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .session import Session

__all__ = ["Vocabulary", "complete", "inspect"]

#: The CLI's ``--permission-mode`` values (2.1.331; the initialize answer does not list them).
PERMISSION_MODES = ("default", "acceptEdits", "plan", "auto", "dontAsk", "bypassPermissions")
#: Used until the CLI has answered (its ``models`` list then replaces them).
FALLBACK_MODELS = (("default", ""), ("opus", ""), ("sonnet", ""), ("haiku", ""))
#: Used until the first turn's ``system/init`` lists the tools the CLI has.
FALLBACK_TOOLS = ("Bash", "Edit", "NotebookEdit", "Read", "Task", "WebFetch", "WebSearch", "Write")
#: Enough for a menu; a directory of thousands of files is not browsed through Tab.
MAX_MATCHES = 500


@dataclass(frozen=True)
class Vocabulary:
    """What completion and help know about."""

    #: Magic name (without ``%``) -> its help, usage lines first.
    magics: Mapping[str, str]
    #: ``(name, description)`` of every model ``%model`` accepts.
    models: Sequence[tuple[str, str]] = FALLBACK_MODELS
    tools: Sequence[str] = FALLBACK_TOOLS
    #: The CLI's working directory: ``@path`` mentions are relative to it.
    cwd: str = "."
    #: Where ``%cwd PATH`` resolves a relative path (the kernel's own directory).
    magic_cwd: str = "."
    #: Slash command name (without ``/``) -> (``"command"`` or ``"skill"``, its description).
    commands: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, magics: Mapping[str, str], session: Session | None, *, cwd: str) -> Vocabulary:
        """The vocabulary of a running conversation; what the CLI has not told yet falls back to defaults."""
        models: list[tuple[str, str]] = []
        if session is not None:
            for model in session.server_info.get("models") or []:
                if isinstance(model, dict) and isinstance(model.get("value"), str):
                    models.append((model["value"], str(model.get("description") or model.get("displayName") or "")))
        tools = session.init.tools if session is not None and session.init is not None else FALLBACK_TOOLS
        return cls(magics, models or FALLBACK_MODELS, tools, cwd, os.getcwd(), _slash_commands(session))


def _names(value: Any) -> list[str]:
    return [name for name in value if isinstance(name, str) and name] if isinstance(value, list) else []


def _slash_commands(session: Session | None) -> dict[str, tuple[str, str]]:
    """The commands the CLI can run in this mode: ``system/init`` lists them, ``initialize`` describes them.

    ``terminal_slash_commands`` work only in the CLI's terminal UI, and names starting with ``_``
    are its internals: neither is offered. Before the first turn, ``initialize``'s list stands in.
    """
    if session is None:
        return {}
    described: dict[str, str] = {}
    for command in session.server_info.get("commands") or []:
        if isinstance(command, dict) and isinstance(command.get("name"), str):
            described[command["name"]] = str(command.get("description") or "")
    raw = session.init.raw if session.init is not None else {}
    skills = set(_names(raw.get("skills")))
    terminal_only = set(_names(raw.get("terminal_slash_commands")))
    names = _names(raw.get("slash_commands")) or list(described)
    return {
        name: ("skill" if name in skills else "command", described.get(name, ""))
        for name in sorted({*names, *skills})
        if name not in terminal_only and not name.startswith("_")
    }


# -- completion -------------------------------------------------------------------------------


def _reply(matches: Sequence[tuple[str, str]], start: int, end: int) -> dict[str, Any]:
    """A complete_reply; ``matches`` are ``(text, type)``, the type shown by JupyterLab's menu."""
    matches = list(matches)[:MAX_MATCHES]
    return {
        "status": "ok",
        "matches": [text for text, _ in matches],
        "cursor_start": start,
        "cursor_end": end,
        "metadata": {
            "_jupyter_types_experimental": [
                {"start": start, "end": end, "text": text, "type": kind} for text, kind in matches
            ]
        },
    }


def _word_end(code: str, position: int) -> int:
    """Where the word under the cursor ends: completion replaces all of it, as in any editor."""
    return position + len(re.split(r"\s", code[position:], maxsplit=1)[0])


def _magic_line(code: str, position: int) -> tuple[int, str] | None:
    """``(start, line)`` of the magic line holding ``position``, if it is in the cell's leading magic block."""
    start = code.rfind("\n", 0, position) + 1
    end = code.find("\n", position)
    line = code[start : end if end >= 0 else len(code)]
    if not line.lstrip().startswith("%"):
        return None
    if any(above.strip() and not above.lstrip().startswith("%") for above in code[:start].splitlines()):
        return None  # below the message: the rest of the cell is text
    return start, line


def _slash_word(code: str, position: int) -> tuple[int, str] | None:
    """``(start, typed)`` of a ``/command`` being typed at the start of the message, after any magic lines."""
    start = code.rfind("\n", 0, position) + 1
    if any(above.strip() and not above.lstrip().startswith("%") for above in code[:start].splitlines()):
        return None  # the message began above: a slash command only counts at its start
    before = code[start:position]
    typed = before.lstrip()
    if not typed.startswith("/") or any(c.isspace() for c in typed):
        return None
    return position - len(typed), typed[1:]


def _paths(base: str, typed: str, *, directories_only: bool) -> list[tuple[str, str]]:
    """Entries whose path starts with ``typed`` (relative to ``base``); directories end with ``/``."""
    folder, prefix = os.path.split(typed)
    try:
        entries = list(os.scandir(os.path.join(base, os.path.expanduser(folder or "."))))
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not prefix.startswith(".")):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir or not directories_only:
            path = os.path.join(folder, entry.name) + ("/" if is_dir else "")
            found.append((path, "directory" if is_dir else "file"))
    return sorted(found)


def _arguments(name: str, done: list[str], word: str, vocabulary: Vocabulary) -> list[tuple[str, str]]:
    """Candidates for the argument being typed, given the magic and the words before it."""
    candidates: list[tuple[str, str]] = []
    if name == "model" and not done:
        candidates = [(model, "model") for model, _ in vocabulary.models]
    elif name == "permissions" and not done:
        candidates = [("allow", "keyword"), ("headless", "keyword"), *((m, "mode") for m in PERMISSION_MODES)]
    elif name == "permissions" and done == ["headless"]:
        candidates = [("deny", "keyword"), ("allow", "keyword")]
    elif name == "permissions" and done[:1] == ["allow"]:
        candidates = [(tool, "tool") for tool in vocabulary.tools if tool not in done]
    elif name == "help" and not done:
        candidates = [(magic, "magic") for magic in sorted(vocabulary.magics)]
    return [(text, kind) for text, kind in candidates if text.startswith(word)]


def complete(code: str, cursor_pos: int | None, vocabulary: Vocabulary) -> dict[str, Any]:
    """The complete_reply for the cursor at ``cursor_pos`` (None: the end) in ``code``."""
    position = len(code) if cursor_pos is None else cursor_pos
    magic = _magic_line(code, position)
    if magic is not None:
        start, line = magic
        before = line[: position - start]
        indent = len(before) - len(before.lstrip())
        end = _word_end(code, position)
        name, space, args = before.lstrip()[1:].partition(" ")
        if not space:
            names = sorted(n for n in vocabulary.magics if n.startswith(name))
            return _reply([("%" + n, "magic") for n in names], start + indent, end)
        if name == "cwd":  # the whole rest of the line is the path, spaces included
            typed = args.lstrip()
            return _reply(_paths(vocabulary.magic_cwd, typed, directories_only=True), position - len(typed), end)
        words = args.split(" ")
        done, word = [w for w in words[:-1] if w], words[-1]
        return _reply(_arguments(name, done, word, vocabulary), position - len(word), end)
    slash = _slash_word(code, position)
    if slash is not None:
        start, typed = slash
        end = _word_end(code, position)
        found = [("/" + name, kind) for name, (kind, _) in vocabulary.commands.items() if name.startswith(typed)]
        return _reply(found, start, end)
    mention = re.search(r"(?:^|\s)@(\S*)$", code[:position])
    if mention is not None:
        typed = mention.group(1)
        found = [("@" + path, kind) for path, kind in _paths(vocabulary.cwd, typed, directories_only=False)]
        return _reply(found, position - len(typed) - 1, position)
    return _reply([], position, position)


# -- help -------------------------------------------------------------------------------------


def _slash_help(code: str, position: int, vocabulary: Vocabulary) -> str | None:
    """What the CLI says a slash command under the cursor does, if it is one the CLI listed."""
    slash = _slash_word(code, _word_end(code, position))
    known = vocabulary.commands.get(slash[1]) if slash is not None else None
    if slash is None or known is None:
        return None
    kind, about = known
    title = f"/{slash[1]} ({'a skill' if kind == 'skill' else 'a Claude Code command'})"
    return f"{title}\n\n{about}" if about else title


def inspect(code: str, cursor_pos: int | None, vocabulary: Vocabulary) -> dict[str, Any]:
    """The inspect_reply: the help of the magic on the cursor's line, or the slash command's description."""
    position = len(code) if cursor_pos is None else cursor_pos
    magic = _magic_line(code, position)
    if magic is None:
        about = _slash_help(code, position, vocabulary)
        if about is None:
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}
        return {"status": "ok", "found": True, "data": {"text/plain": about}, "metadata": {}}
    name = magic[1].strip()[1:].split(" ", 1)[0]
    doc = vocabulary.magics.get(name)
    if doc is None:
        known = ", ".join("%" + n for n in sorted(vocabulary.magics))
        doc = f"%{name} is not a magic. The magics are: {known}"
    elif name == "model":
        doc += "\n\nModels:\n" + "\n".join(f"  {model:<10} {about}".rstrip() for model, about in vocabulary.models)
    return {"status": "ok", "found": True, "data": {"text/plain": doc}, "metadata": {}}
