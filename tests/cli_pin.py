"""The pinned CLI's one source: the `cli` extra in pyproject.toml (claude-agent-sdk==X bundles it)."""

from __future__ import annotations

import re
from pathlib import Path

from claude_kernel.session._options import bundled_cli

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def pinned_sdk_version() -> str:
    """The exact claude-agent-sdk version the `cli` extra pins."""
    match = re.search(r'^cli = \["claude-agent-sdk==([^"]+)"\]$', PYPROJECT.read_text(), re.MULTILINE)
    assert match, 'pyproject.toml lost its `cli = ["claude-agent-sdk==..."]` extra'
    return match.group(1)


def pinned_cli_version() -> str:
    """The version of the CLI bundled in the installed claude-agent-sdk (its claude.version file)."""
    cli = bundled_cli()
    assert cli, "no bundled CLI: install the cli extra (./dev does)"
    return Path(cli).with_name("claude.version").read_text().split()[0]
