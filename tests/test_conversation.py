"""Line magics without a CLI: splitting a cell, the magic table, %tool declarations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from claude_kernel.conversation import Conversation, MagicError
from claude_kernel.line_magics import MAGICS, help_text, parse_tool_declaration, run_magic, split_magics


@pytest.mark.parametrize(
    ("cell", "magics", "message"),
    [
        ("hello", [], "hello"),
        ("%model\nhello", ["%model"], "hello"),
        ("\n  %model opus  \n\n%new\nsay hi\n%not a magic here", ["%model opus", "%new"], "say hi\n%not a magic here"),
        ("%session", ["%session"], ""),
        ("", [], ""),
        ("   \n\t\n", [], ""),
        ("%model\r\nhello\r\nworld", ["%model"], "hello\nworld"),
        ("price is 100%\n%model", [], "price is 100%\n%model"),
        ("  %%claude\nbody", ["%%claude"], "body"),
    ],
)
def test_split_magics(cell: str, magics: list[str], message: str) -> None:
    assert split_magics(cell) == (magics, message)


def test_help_is_written_from_the_table_that_dispatches() -> None:
    text = help_text()
    for spec in MAGICS.values():
        for usage, summary in spec.forms:
            assert usage in text and summary in text
    assert set(MAGICS) == {
        "help",
        "model",
        "permissions",
        "session",
        "new",
        "resume",
        "cwd",
        "tool",
        "rerun",
        "undo",
        "history",
        "attach",
        "budget",
        "stop",
    }


@pytest.mark.anyio
async def test_unknown_magic_says_where_the_list_is() -> None:
    with pytest.raises(MagicError, match="%help"):
        await run_magic(Conversation(), "%nope")


@pytest.mark.parametrize(
    ("line", "name", "description", "schema"),
    [
        ('t1 "desc" {"type":"object"}', "t1", "desc", {"type": "object"}),
        ("t2 'two words'", "t2", "two words", {"type": "object", "properties": {}}),
        (
            't3 "d" {"properties": {"city name": {"type": "string"}}, "required": ["city name"]}',
            "t3",
            "d",
            {"type": "object", "properties": {"city name": {"type": "string"}}, "required": ["city name"]},
        ),
        ('t4 "it\'s"   {"type": "object"}  ', "t4", "it's", {"type": "object"}),
    ],
)
def test_tool_declarations(line: str, name: str, description: str, schema: dict[str, object]) -> None:
    tool = parse_tool_declaration(line)
    assert (tool.name, tool.description, dict(tool.input_schema)) == (name, description, schema)


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("", "usage"),
        ("only_a_name", "usage"),
        ('"unclosed', "No closing quotation"),
        ('t "d" [1,2]', "must be a JSON object"),
        ('t "d" 42', "must be a JSON object"),
        ('t "d" "a string"', "must be a JSON object"),
        ('t "d" null', "must be a JSON object"),
        ('t "d" {"type": "array"}', "must be a JSON object"),
        ('t "d" {"type":"object"', "not JSON"),
        ('t "d" {"properties": 3}', "not a valid JSON Schema"),
        ('t "d" {"properties": {"x": {"type": "bogus"}}}', "not a valid JSON Schema"),
        ('t "d" {"required": "x"}', "not a valid JSON Schema"),
        ('bad.name "d"', "tool name"),
        ('"" "d"', "usage"),
        (f'{"x" * 65} "d"', "tool name"),
    ],
)
def test_bad_tool_declarations_are_rejected(line: str, complaint: str) -> None:
    with pytest.raises(MagicError, match=complaint):
        parse_tool_declaration(line)


@pytest.mark.anyio
async def test_bad_permissions_quoting_is_a_magic_error() -> None:
    with pytest.raises(MagicError, match="No closing quotation"):
        await run_magic(Conversation(), '%permissions "unclosed')


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "--help", "../../etc/passwd", "123"])
@pytest.mark.anyio
async def test_resume_checks_the_id_before_closing_anything(bad_id: str) -> None:
    conversation = Conversation()
    conversation.options = replace(conversation.options, resume="keep-me")
    with pytest.raises(MagicError, match="still in session keep-me"):
        await run_magic(conversation, f"%resume {bad_id}")
    assert conversation.current_session_id == "keep-me"
