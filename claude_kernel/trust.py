"""Whether a folder's own Claude settings may run commands: asked once per folder, remembered.

A cloned repository can ship project settings that make the CLI run programs: MCP servers in
``.mcp.json``, and hooks, ``statusLine``, ``apiKeyHelper`` (and the other ``*Helper`` /
``aws*`` commands) in ``.claude/settings.json`` or ``.claude/settings.local.json``. Interactive
Claude Code asks whether the folder is trusted before any of it runs; the kernel does the same.

Until the folder is trusted, the CLI starts with ``--setting-sources user`` (checked on CLI
2.1.337: with it, neither the ``.mcp.json`` server nor a project or local hook ran; without it, all
three did). User-level settings behave as always. The answer is remembered per folder in Jupyter's
data directory, with a fingerprint of the commands listed: if they change, the question comes
again. Headless runs (nbclient, papermill) never ask: project settings stay off unless the folder
was trusted. ``CLAUDE_KERNEL_TRUST_PROJECT=1`` trusts every folder without asking, in headless and
interactive runs alike (for a machine whose folders are all the user's own, or a CI job).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir

__all__ = ["OPT_IN", "SETTINGS_OFF", "ProjectCommands", "TrustStore", "project_commands"]

#: Set to 1 to trust every folder's project settings without asking (headless or not).
OPT_IN = "CLAUDE_KERNEL_TRUST_PROJECT"
#: The CLI flags that keep project and local settings (and ``.mcp.json``) off.
SETTINGS_OFF = ("--setting-sources", "user")
#: Settings whose value is a command the CLI runs.
_COMMAND_SETTINGS = ("apiKeyHelper", "awsAuthRefresh", "awsCredentialExport", "otelHeadersHelper")
_SETTINGS_FILES = (".claude/settings.json", ".claude/settings.local.json")


@dataclass(frozen=True)
class ProjectCommands:
    """What a folder's project settings would run, one line each, as the question lists it."""

    folder: str
    items: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.items).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _shown(value: Any) -> str:
    return " ".join(str(part) for part in value) if isinstance(value, list) else str(value)


def _read(path: Path) -> tuple[Any, str | None]:
    """The JSON in ``path`` (None if there is no file), or why it could not be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError, RecursionError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def project_commands(folder: str | None) -> ProjectCommands | None:
    """The commands ``folder``'s project settings would make the CLI run; None if none.

    A settings file that cannot be read is listed too: the CLI may read what this cannot.
    """
    if not folder:
        return None
    root = Path(folder)
    items: list[str] = []
    mcp, problem = _read(root / ".mcp.json")
    if problem:
        items.append(f".mcp.json (could not be read here: {problem})")
    servers = mcp.get("mcpServers") if isinstance(mcp, dict) else None
    if isinstance(servers, dict):
        for name, server in servers.items():
            spec = server if isinstance(server, dict) else {}
            what = f"{_shown(spec.get('command') or spec.get('url') or '?')} {_shown(spec.get('args', []))}"
            items.append(f".mcp.json: MCP server `{name}` runs `{what.strip()}`")
    for relative in _SETTINGS_FILES:
        settings, problem = _read(root / relative)
        if problem:
            items.append(f"{relative} (could not be read here: {problem})")
        if not isinstance(settings, dict):
            continue
        hooks = settings.get("hooks")
        if isinstance(hooks, dict):
            for event, matchers in hooks.items():
                for matcher in matchers if isinstance(matchers, list) else [matchers]:
                    inner = matcher.get("hooks", []) if isinstance(matcher, dict) else []
                    for hook in inner if isinstance(inner, list) else []:
                        command = hook.get("command", "?") if isinstance(hook, dict) else hook
                        items.append(f"{relative}: {event} hook runs `{_shown(command)}`")
        status = settings.get("statusLine")
        if status:
            command = status.get("command", "?") if isinstance(status, dict) else status
            items.append(f"{relative}: statusLine runs `{_shown(command)}`")
        for key in _COMMAND_SETTINGS:
            if settings.get(key):
                items.append(f"{relative}: {key} runs `{_shown(settings[key])}`")
    return ProjectCommands(str(root.resolve()), tuple(items)) if items else None


class TrustStore:
    """The answers, per folder: ``<jupyter_data_dir>/claude_kernel/trusted-folders.json``.

    Readable JSON, ``{folder: {"trusted": bool, "fingerprint": str}}``. A damaged file counts as no
    answers (the question comes again); it never stops a kernel.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or Path(jupyter_data_dir()) / "claude_kernel" / "trusted-folders.json"

    def _answers(self) -> dict[str, Any]:
        answers, _ = _read(self.path)
        return answers if isinstance(answers, dict) else {}

    def answer(self, commands: ProjectCommands) -> bool | None:
        """True or False as answered for these very commands; None if not asked (or they changed)."""
        entry = self._answers().get(commands.folder)
        if not isinstance(entry, dict) or entry.get("fingerprint") != commands.fingerprint:
            return None
        trusted = entry.get("trusted")
        return trusted if isinstance(trusted, bool) else None

    def remember(self, commands: ProjectCommands, trusted: bool) -> None:
        answers = self._answers()
        answers[commands.folder] = {"trusted": trusted, "fingerprint": commands.fingerprint}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(answers, out, indent=2, ensure_ascii=False)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def allows(self, commands: ProjectCommands, environ: dict[str, str] | None = None) -> bool | None:
        """Whether project settings may be on: the opt-in, or the folder's answer; None if not asked."""
        env = os.environ if environ is None else environ
        if env.get(OPT_IN) == "1":
            return True
        return self.answer(commands)
