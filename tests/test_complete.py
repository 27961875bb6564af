"""Tab completion and Shift-Tab help: claude_kernel.complete, then the kernel's complete and inspect requests."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from claude_kernel.complete import PERMISSION_MODES, Vocabulary, complete, inspect
from claude_kernel.line_magics import MAGICS, magic_docs

DOCS = magic_docs()
MODELS = (("default", "Use the default model"), ("opus", "Opus 5.5"), ("sonnet", "Sonnet 5.5"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A CLI working directory: files, folders, a hidden file, a name with a space."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("")
    (tmp_path / "scratch").mkdir()
    (tmp_path / "setup.cfg").write_text("")
    (tmp_path / "notes and ideas.md").write_text("")
    (tmp_path / ".env").write_text("")
    return tmp_path


def vocabulary(tree: Path, **changes: Any) -> Vocabulary:
    return Vocabulary(DOCS, **{"models": MODELS, "tools": ("Bash", "Edit", "Read"), "cwd": str(tree), **changes})


def matches(code: str, tree: Path, cursor: int | None = None, **changes: Any) -> list[str]:
    reply = complete(code, cursor, vocabulary(tree, **changes))
    assert reply["status"] == "ok" and reply["cursor_start"] <= reply["cursor_end"]
    return list(reply["matches"])


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("%", sorted("%" + name for name in DOCS)),
        ("%mo", ["%model"]),
        ("%p", ["%permissions"]),
        ("%model ", ["default", "opus", "sonnet"]),
        ("%model so", ["sonnet"]),
        ("%model sonnet ", []),  # one argument only
        ("%permissions ", ["allow", "headless", *PERMISSION_MODES]),
        ("%permissions acc", ["acceptEdits"]),
        ("%permissions headless ", ["deny", "allow"]),
        ("%permissions headless d", ["deny"]),
        ("%permissions allow ", ["Bash", "Edit", "Read"]),
        ("%permissions allow Bash ", ["Edit", "Read"]),  # not twice
        ("%permissions allow Bash E", ["Edit"]),
        ("%help per", ["permissions"]),
        ("%new\n%mo", ["%model"]),  # any line of the leading magic block
        ("Hello\n%mo", []),  # below the message: text, not a magic
        ("just words", []),
        ("an email@example.com", []),  # @ inside a word is not a mention
    ],
)
def test_magics_and_their_arguments(code: str, expected: list[str], tree: Path) -> None:
    assert matches(code, tree) == expected


def test_magic_name_replaces_from_the_percent_to_the_end_of_the_word(tree: Path) -> None:
    reply = complete("%modxx sonnet", 4, vocabulary(tree))
    assert reply["matches"] == ["%model"] and (reply["cursor_start"], reply["cursor_end"]) == (0, 6)
    types = reply["metadata"]["_jupyter_types_experimental"]
    assert types == [{"start": 0, "end": 6, "text": "%model", "type": "magic"}]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("Look at @s", ["@scratch/", "@setup.cfg", "@src/"]),
        ("@src/", ["@src/main.py"]),
        ("Compare @src/m and @se", ["@setup.cfg"]),
        ("@.e", ["@.env"]),  # hidden files only when asked for
        ("@notes", ["@notes and ideas.md"]),
        ("@nowhere/x", []),
        ("@", ["@notes and ideas.md", "@scratch/", "@setup.cfg", "@src/"]),
    ],
)
def test_file_mentions_against_the_cli_cwd(code: str, expected: list[str], tree: Path) -> None:
    assert matches(code, tree) == expected


def test_mention_in_the_middle_of_a_message(tree: Path) -> None:
    code = "Read @sr and summarise"
    reply = complete(code, code.index(" and"), vocabulary(tree))
    assert reply["matches"] == ["@src/"] and reply["cursor_start"] == code.index("@")


def test_cwd_completes_directories_relative_to_the_kernel(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tree / "src" / "pkg").mkdir()
    assert matches("%cwd s", tree, magic_cwd=str(tree)) == ["scratch/", "src/"]
    assert matches("%cwd src/", tree, magic_cwd=str(tree)) == ["src/pkg/"]
    assert matches(f"%cwd {tree}/sc", tree) == [f"{tree}/scratch/"]
    monkeypatch.setenv("HOME", str(tree))
    assert matches("%cwd ~/sr", tree) == ["~/src/"]


def test_vocabulary_of_a_session_reads_models_and_tools() -> None:
    session = SimpleNamespace(
        server_info={"models": [{"value": "opus", "description": "Opus 5.5"}, {"displayName": "no value"}]},
        init=SimpleNamespace(tools=["Bash", "mcp__notebook__ask_user"], raw={}),
    )
    found = Vocabulary.of(DOCS, session, cwd="/tmp")  # type: ignore[arg-type]
    assert found.models == [("opus", "Opus 5.5")] and found.tools == ["Bash", "mcp__notebook__ask_user"]
    assert found.magic_cwd == os.getcwd()
    before_the_cli_answers = Vocabulary.of(DOCS, None, cwd="/tmp")
    assert ("sonnet", "") in before_the_cli_answers.models and "Bash" in before_the_cli_answers.tools


def test_vocabulary_of_a_session_reads_its_slash_commands_and_skills() -> None:
    """CLI 2.1.337: system/init names them, initialize describes them; terminal-only ones are left out."""
    init = {
        "slash_commands": ["greet", "compact", "doctor", "__remote-workflow", "dataviz"],
        "terminal_slash_commands": ["doctor"],
        "skills": ["dataviz"],
    }
    commands = [{"name": "greet", "description": "Say hello (project)"}, {"name": "compact"}, {"bogus": 1}]
    session = SimpleNamespace(server_info={"commands": commands}, init=SimpleNamespace(tools=[], raw=init))
    found = Vocabulary.of(DOCS, session, cwd="/tmp")  # type: ignore[arg-type]
    assert dict(found.commands) == {
        "compact": ("command", ""),
        "dataviz": ("skill", ""),
        "greet": ("command", "Say hello (project)"),
    }
    before_the_first_turn = SimpleNamespace(server_info={"commands": commands}, init=None)
    assert set(Vocabulary.of(DOCS, before_the_first_turn, cwd="/tmp").commands) == {"greet", "compact"}  # type: ignore[arg-type]


COMMANDS = {
    "compact": ("command", "Clear history but keep a summary"),
    "clear": ("command", ""),
    "dataviz": ("skill", ""),
}


@pytest.mark.parametrize(
    ("code", "cursor", "expected", "start"),
    [
        ("/c", None, ["/compact", "/clear"], 0),
        ("/comp", None, ["/compact"], 0),
        ("/", None, ["/compact", "/clear", "/dataviz"], 0),
        ("  /da", None, ["/dataviz"], 2),
        ("%model opus\n/cl", None, ["/clear"], 12),  # after the magic block: the message's start
        ("/compact keep the plan", 5, ["/compact"], 0),  # the whole word is replaced
        ("Hello\n/comp", None, [], None),  # the message began above: text
        ("Please /comp", None, [], None),
        ("/compact now", None, [], None),  # an argument, not a command
    ],
)
def test_slash_commands_complete_at_the_start_of_the_message(
    code: str, cursor: int | None, expected: list[str], start: int | None, tree: Path
) -> None:
    reply = complete(code, cursor, vocabulary(tree, commands=COMMANDS))
    assert reply["matches"] == expected
    if start is not None:
        assert reply["cursor_start"] == start
    if cursor is not None:
        assert reply["cursor_end"] == len("/compact")


def test_inspect_describes_a_slash_command(tree: Path) -> None:
    reply = inspect("/compact focus on the plan", 3, vocabulary(tree, commands=COMMANDS))
    assert (
        reply["found"]
        and reply["data"]["text/plain"] == "/compact (a Claude Code command)\n\nClear history but keep a summary"
    )
    assert inspect("/dataviz", None, vocabulary(tree, commands=COMMANDS))["data"]["text/plain"] == "/dataviz (a skill)"
    assert not inspect("/nonsense", None, vocabulary(tree, commands=COMMANDS))["found"]


def test_magic_docs_group_each_magics_lines() -> None:
    assert DOCS["permissions"].count("%permissions") == 3
    assert "nobody can click" in DOCS["permissions"]
    assert DOCS["tool"].startswith('%tool NAME "DESCRIPTION"') and "declare a tool" in DOCS["tool"]
    assert set(DOCS) == set(MAGICS)


@pytest.mark.parametrize(
    ("code", "cursor", "found", "text"),
    [
        ("%permissions headless allow", 3, True, "%permissions headless deny|allow"),
        ("%model", None, True, "sonnet     Sonnet 5.5"),  # and the models the CLI offers
        ("%new\n%cwd /tmp\nHello", 8, True, "%cwd [PATH]"),
        ("%bogus", None, True, "not a magic"),
        ("Hello there", None, False, None),
    ],
)
def test_inspect_shows_a_magics_help(code: str, cursor: int | None, found: bool, text: str | None, tree: Path) -> None:
    reply = inspect(code, cursor, vocabulary(tree))
    assert reply["status"] == "ok" and reply["found"] is found
    if text is not None:
        assert text in reply["data"]["text/plain"]


# -- through the kernel ---------------------------------------------------------------------


@pytest.mark.real_cli
def test_kernel_completes_with_the_clis_models_and_the_cwd(claude_kernel: Any, workdir: Path) -> None:
    (workdir / "data.csv").write_text("a,b\n")
    claude_kernel.run("%session")  # the CLI has started and answered initialize
    models = claude_kernel.ask("complete", "%model ")["matches"]
    assert "sonnet" in models and "opus" in models and "default" in models  # 2.1.331's list
    assert claude_kernel.ask("complete", "%permissions headless ")["matches"] == ["deny", "allow"]
    assert claude_kernel.ask("complete", "Summarise @da")["matches"] == ["@data.csv"]
    help_reply = claude_kernel.ask("inspect", "%permissions")
    assert help_reply["found"] and "headless deny|allow" in help_reply["data"]["text/plain"]
