"""claude_kernel.diff: what an Edit, MultiEdit, Write or NotebookEdit will change, as a diff and as HTML."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.diff import (
    MAX_BYTES,
    Change,
    Hunk,
    card_html,
    change_for,
    change_stats,
    diff_html,
    diff_rows,
    hunks,
    proposed_change,
)
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

TEN = "".join(f"line {i}\n" for i in range(1, 11))


def unified(found: tuple[Hunk, ...]) -> list[str]:
    """Hunks as the lines of a unified diff, to compare with expectations at a glance."""
    out = []
    for hunk in found:
        out.append(hunk.header)
        out += [("\\ " if line.kind == "\\" else line.kind) + line.text for line in hunk.lines]
    return out


def patched(before: str, found: tuple[Hunk, ...]) -> str:
    """Apply hunks to ``before``: the diff must rebuild ``after`` exactly, newline at the end included."""
    old = before.splitlines(keepends=True)
    new: list[str] = []
    position = 0
    for hunk in found:
        start = hunk.old_start - 1 if hunk.old_count else hunk.old_start
        new += old[position:start]
        position = start
        for index, line in enumerate(hunk.lines):
            if line.kind == "\\":
                continue
            ending = "" if index + 1 < len(hunk.lines) and hunk.lines[index + 1].kind == "\\" else "\n"
            if line.kind in " -":
                assert old[position] == line.text + ending
                position += 1
            if line.kind in " +":
                new.append(line.text + ending)
    return "".join(new + old[position:])


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param(
            TEN,
            TEN.replace("line 5\n", "LINE FIVE\n"),
            [
                "@@ -2,7 +2,7 @@",
                " line 2",
                " line 3",
                " line 4",
                "-line 5",
                "+LINE FIVE",
                " line 6",
                " line 7",
                " line 8",
            ],
            id="context-lines-around-a-change",
        ),
        pytest.param(
            TEN,
            TEN.replace("line 1\n", "first\n").replace("line 10\n", "last\n"),
            [
                *["@@ -1,4 +1,4 @@", "-line 1", "+first", " line 2", " line 3", " line 4"],
                *["@@ -7,4 +7,4 @@", " line 7", " line 8", " line 9", "-line 10", "+last"],
            ],
            id="two-hunks-when-changes-are-far-apart",
        ),
        pytest.param(
            "a\nb\nc\n",
            "a\nb\nc\nd\n",
            ["@@ -1,3 +1,4 @@", " a", " b", " c", "+d"],
            id="append",
        ),
        pytest.param("", "new\nfile\n", ["@@ -0,0 +1,2 @@", "+new", "+file"], id="created"),
        pytest.param(
            "a\nb",
            "a\nb\n",
            ["@@ -1,2 +1,2 @@", " a", "-b", "\\ No newline at end of file", "+b"],
            id="newline-added-at-the-end",
        ),
        pytest.param(
            "a\nb\n",
            "a\nc",
            ["@@ -1,2 +1,2 @@", " a", "-b", "+c", "\\ No newline at end of file"],
            id="no-newline-at-the-end",
        ),
        pytest.param(
            "café\nnaïve\n日本\n",
            "café\nnaïve 😀\n日本\n",
            ["@@ -1,3 +1,3 @@", " café", "-naïve", "+naïve 😀", " 日本"],
            id="unicode",
        ),
        pytest.param(TEN, TEN, [], id="no-difference"),
    ],
)
def test_hunks(before: str, after: str, expected: list[str]) -> None:
    found = hunks(before, after)
    assert unified(found) == expected
    assert patched(before, found) == after


def test_hunks_rebuild_the_new_text_for_random_edits() -> None:
    generator = random.Random(11)
    for _ in range(300):
        old = [generator.choice("abcdef") + "\n" for _ in range(generator.randint(0, 40))]
        new = list(old)
        for _ in range(generator.randint(1, 5)):
            where = generator.randint(0, len(new))
            if generator.random() < 0.5 and where < len(new):
                del new[where]
            else:
                new.insert(where, generator.choice("xyz") + "\n")
        if new and generator.random() < 0.2:
            new[-1] = new[-1].rstrip("\n")
        before, after = "".join(old), "".join(new)
        found = hunks(before, after)
        assert patched(before, found) == after
        for hunk in found:  # at most 3 context lines at either end of a hunk
            kinds = "".join(line.kind for line in hunk.lines if line.kind != "\\")
            assert len(kinds) - len(kinds.lstrip(" ")) <= 3 and len(kinds) - len(kinds.rstrip(" ")) <= 3


EDIT = {"file_path": "/p/f.txt", "old_string": "line 5", "new_string": "LINE FIVE"}


@pytest.mark.parametrize(
    ("tool", "tool_input", "before", "kind", "added", "removed", "note"),
    [
        pytest.param("Edit", EDIT, TEN, "edit", 1, 1, None, id="edit"),
        pytest.param(
            "Edit", {**EDIT, "old_string": "nowhere"}, TEN, "edit", 1, 1, "does not occur", id="edit-old-string-missing"
        ),
        pytest.param(
            "Edit", {**EDIT, "old_string": "line 1"}, TEN, "edit", 1, 1, "occurs 2 times", id="edit-ambiguous"
        ),
        pytest.param(
            "Edit",
            {**EDIT, "old_string": "line", "new_string": "row", "replace_all": True},
            TEN,
            "edit",
            10,
            10,
            "replace_all: 10 occurrences",
            id="edit-replace-all",
        ),
        pytest.param(
            "Edit",
            {**EDIT, "old_string": "line 5\nline 6", "new_string": "five\nsix"},
            TEN.replace("\n", "\r\n"),
            "edit",
            2,
            2,
            None,
            id="edit-crlf-file-lf-edit",
        ),
        pytest.param("Edit", {**EDIT, "old_string": ""}, None, "new file", 1, 0, None, id="edit-creates"),
        pytest.param("Edit", EDIT, None, "edit", 1, 1, "does not exist", id="edit-missing-file"),
        pytest.param(
            "MultiEdit",
            {
                "file_path": "/p/f.txt",
                "edits": [
                    {"old_string": "line 2", "new_string": "two"},
                    {"old_string": "two\nline 3", "new_string": "two and three"},  # sees the first edit
                    {"old_string": "absent", "new_string": "x"},
                ],
            },
            TEN,
            "edit",
            1,
            2,
            "edit 3: old_string does not occur",
            id="multiedit-in-order",
        ),
        pytest.param(
            "Write",
            {"file_path": "/p/f.txt", "content": TEN.replace("line 7", "seven")},
            TEN,
            "overwrite",
            1,
            1,
            None,
            id="write-overwrite-only-real-differences",
        ),
        pytest.param(
            "Write", {"file_path": "/p/f.txt", "content": TEN}, TEN, "overwrite", 0, 0, "no changes", id="write-same"
        ),
        pytest.param(
            "Write", {"file_path": "/p/new.txt", "content": "a\nb\n"}, None, "new file", 2, 0, None, id="write-new"
        ),
    ],
)
def test_file_tools(
    tool: str, tool_input: dict[str, Any], before: str | None, kind: str, added: int, removed: int, note: str | None
) -> None:
    change = change_for(tool, tool_input, before)
    assert (change.kind, change.added, change.removed) == (kind, added, removed)
    assert change_stats(tool, tool_input, before) == (added, removed)
    if note is None:
        assert not change.notes
    else:
        assert any(note in n for n in change.notes), change.notes


def test_write_overwriting_a_file_shows_only_the_changed_line_with_context() -> None:
    change = change_for("Write", {"file_path": "f", "content": TEN.replace("line 7", "seven")}, TEN)
    assert unified(change.hunks) == [
        "@@ -4,7 +4,7 @@",
        " line 4",
        " line 5",
        " line 6",
        "-line 7",
        "+seven",
        " line 8",
        " line 9",
        " line 10",
    ]


def test_multiedit_applies_its_edits_in_order() -> None:
    edits = [{"old_string": "line 2\n", "new_string": "two\n"}, {"old_string": "two\n", "new_string": "TWO\n"}]
    change = change_for("MultiEdit", {"file_path": "f", "edits": edits}, TEN)
    assert [line.text for line in change.hunks[0].lines if line.kind == "+"] == ["TWO"]


def _notebook(*sources: str, ids: bool = True) -> str:
    cells = [
        {"cell_type": "code", "source": source.splitlines(keepends=True), "metadata": {}, "outputs": []}
        | ({"id": f"id{index}"} if ids else {})
        for index, source in enumerate(sources)
    ]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.mark.parametrize(
    ("tool_input", "kind", "diff", "note"),
    [
        pytest.param(
            {"cell_id": "id1", "new_source": "x = 2\nprint(x)"},
            "cell 2 of 2 (code)",
            ["@@ -1,2 +1,2 @@", "-x = 1", "+x = 2", " print(x)", "\\ No newline at end of file"],
            None,
            id="replace",
        ),
        pytest.param(
            {"cell_id": "id1", "new_source": "# Title", "cell_type": "markdown"},
            "cell 2 of 2 (markdown)",
            None,
            "cell type: code -> markdown",
            id="replace-changes-type",
        ),
        pytest.param(
            {"cell_id": "id0", "new_source": "import os\n", "edit_mode": "insert"},
            "new code cell after cell 1 of 2",
            ["@@ -0,0 +1,1 @@", "+import os"],
            None,
            id="insert",
        ),
        pytest.param(
            {"new_source": "import os\n", "edit_mode": "insert", "cell_type": "markdown"},
            "new markdown cell at the top",
            None,
            None,
            id="insert-at-top",
        ),
        pytest.param(
            {"cell_id": "id0", "new_source": "", "edit_mode": "delete"},
            "cell 1 of 2 (code) deleted",
            ["@@ -1,1 +0,0 @@", "-a = 0"],
            None,
            id="delete",
        ),
        pytest.param({"cell_id": "nope", "new_source": "x"}, "notebook cell (replace)", None, "no cell", id="no-cell"),
    ],
)
def test_notebook_edit_shows_the_cell_before_and_after(
    tool_input: dict[str, Any], kind: str, diff: list[str] | None, note: str | None
) -> None:
    before = _notebook("a = 0\n", "x = 1\nprint(x)")
    change = change_for("NotebookEdit", {"notebook_path": "n.ipynb", **tool_input}, before)
    assert change.kind == kind
    if diff is not None:
        assert unified(change.hunks) == diff
    if note is not None:
        assert any(note in n for n in change.notes), change.notes


def test_notebook_cells_without_ids_are_found_by_index() -> None:
    before = _notebook("a = 0\n", "b = 1\n", ids=False)
    change = change_for(
        "NotebookEdit", {"notebook_path": "n.ipynb", "cell_id": "cell-1", "new_source": "b = 2\n"}, before
    )
    assert unified(change.hunks) == ["@@ -1,1 +1,1 @@", "-b = 1", "+b = 2"]


def test_proposed_change_reads_the_file_relative_to_the_cli_cwd(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text(TEN)
    change = proposed_change(
        "Edit", {"file_path": "f.txt", "old_string": "line 5", "new_string": "5"}, cwd=str(tmp_path)
    )
    assert change is not None and change.path == str(tmp_path / "f.txt")
    assert (change.added, change.removed) == (1, 1) and not change.fragments
    assert proposed_change("Bash", {"command": "ls"}, cwd=str(tmp_path)) is None


@pytest.mark.parametrize(
    ("content", "note"),
    [
        pytest.param(b"\x89PNG\r\n\x1a\n\0\0\0", "binary file", id="binary"),
        pytest.param("caf\xe9\n".encode("latin-1"), "not UTF-8", id="not-utf8"),
        pytest.param(b"x" * (MAX_BYTES + 1), "too large", id="huge"),
    ],
)
def test_files_that_cannot_be_diffed_show_the_change_with_a_note(tmp_path: Path, content: bytes, note: str) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    change = proposed_change("Edit", {"file_path": str(path), "old_string": "x", "new_string": "y"}, cwd="/")
    assert change is not None and change.fragments
    assert any(note in n for n in change.notes)
    assert [line.kind + line.text for line in change.hunks[0].lines] == ["-x", "+y"]
    assert note in diff_html(change)


def test_unreadable_file(tmp_path: Path) -> None:
    folder = tmp_path / "a-directory"
    folder.mkdir()
    change = proposed_change("Write", {"file_path": str(folder), "content": "x"}, cwd="/")
    assert change is not None and any("cannot read" in n for n in change.notes)


def test_a_one_line_edit_of_a_long_file_is_fast() -> None:
    text = "".join(f"line {i}\n" for i in range(100_000))
    started = time.perf_counter()
    change = change_for("Edit", {"file_path": "f", "old_string": "line 50000\n", "new_string": "x\n"}, text)
    assert time.perf_counter() - started < 1.0
    assert (change.added, change.removed) == (1, 1)


# -- HTML -------------------------------------------------------------------------------------


def _visible(markup: str) -> str:
    return re.sub(r"<[^>]+>", "", markup.split("</style>")[-1])


def test_html_escapes_model_text_and_file_content() -> None:
    before = "<script>alert(1)</script>\n"
    change = change_for("Write", {"file_path": "<img src=x onerror=alert(2)>", "content": "<b>bold</b>\n"}, before)
    markup = diff_html(change)
    assert "<script>" not in markup and "<img" not in markup and "<b>" not in markup
    assert "&lt;script&gt;" in markup and "&lt;b&gt;bold&lt;/b&gt;" in markup


def test_html_shows_numbers_signs_and_theme_colours() -> None:
    markup = diff_html(change_for("Edit", EDIT, TEN))
    assert "@@ -2,7 +2,7 @@" in markup
    assert "--jp-success-color1" in markup and "--jp-error-color1" in markup
    assert "<td class='n'>5</td><td class='n'></td>" in markup  # a removed line: old number only
    text = _visible(markup)
    assert "- line 5" in text and "+ LINE FIVE" in text and "line 4" in text


def test_long_diffs_fold_after_forty_lines() -> None:
    long_text = "".join(f"{i}\n" for i in range(200))
    markup = diff_html(change_for("Write", {"file_path": "f", "content": "x\n"}, long_text))
    shown, folded = markup.split("<details", 1)
    assert shown.count("<tr") == 40
    assert "Show 162 more lines" in folded and folded.count("<tr") == 162


def test_huge_diffs_are_cut_with_a_note() -> None:
    huge = "".join(f"{i}\n" for i in range(5000))
    markup = diff_html(change_for("Write", {"file_path": "f", "content": ""}, huge))
    assert markup.count("<tr") == 1000 and "4001 more lines not shown" in markup


def test_card_html_is_a_collapsed_summary() -> None:
    markup = card_html(change_for("Edit", EDIT, TEN))
    assert markup.startswith("<details") and "+1</span>" in markup and "-1</span>" in markup
    assert "open" not in markup.split(">", 1)[0]


def test_change_counts_lines() -> None:
    change = Change("f", "edit", hunks("a\nb\n", "a\nc\nd\n"))
    assert (change.added, change.removed) == (2, 1)


def _ask_to_change(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path, tool: str, tool_input: dict[str, str], button: str
) -> tuple[Path, Any, str, str]:
    """The real CLI reads notes.txt (ten lines), then asks to ``tool`` it: the file, the cell, the
    approval panel's diff, and the id of its ``button``."""
    target = workdir / "notes.txt"
    target.write_text(TEN)
    fake_api.enqueue(
        Reply.tool("Read", {"file_path": str(target)}),
        Reply.tool(tool, {"file_path": str(target), **tool_input}),
        Reply.text("Done."),
    )
    run = claude_kernel.start("change the notes")
    clickable = claude_kernel.wait_for_button(run, button)
    (panel,) = [s["value"] for s in run.widgets.values() if "claude-diff" in str(s.get("value", ""))]
    return target, run, panel, clickable


@pytest.mark.real_cli
def test_kernel_edit_panel_shows_the_diff_against_the_file(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    """The real CLI asks to Edit an existing file: the approval panel shows context and the -/+ lines."""
    edit = {"old_string": "line 5", "new_string": "line <5>"}
    target, run, panel, allow = _ask_to_change(claude_kernel, fake_api, workdir, "Edit", edit, "Allow")
    text = _visible(panel)
    assert "@@ -2,7 +2,7 @@" in text
    assert "line 4" in text and "line 6" in text  # context
    assert "- line 5" in text and "+ line &lt;5&gt;" in text
    claude_kernel.click(allow)
    claude_kernel.pump(run)
    assert run.reply is not None and run.reply["status"] == "ok"
    assert target.read_text() == TEN.replace("line 5", "line <5>")
    # The applied edit's card: +1 -1, and the diff folded under it.
    assert "+1 -1" in run.text()
    card = run.html().split("claude-diff-card", 1)[1]
    assert "<summary>" in card and "- line 5" in _visible(card) and "+ line &lt;5&gt;" in _visible(card)


@pytest.mark.real_cli
def test_kernel_write_panel_shows_only_the_real_differences(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    write = {"content": TEN.replace("line 7", "seven")}
    target, run, panel, deny = _ask_to_change(claude_kernel, fake_api, workdir, "Write", write, "Deny")
    claude_kernel.click(deny)
    claude_kernel.pump(run)
    assert "overwrite" in panel and panel.count("<tr class='add'") == 1 and panel.count("<tr class='del'") == 1
    assert "- line 7" in _visible(panel) and "+ seven" in _visible(panel)
    assert target.read_text() == TEN  # denied


def test_an_edit_whose_quotes_differ_only_in_kind_applies_as_the_cli_applies_it() -> None:
    before = "say(\u201chello\u201d)\nsay(\u2018bye\u2019)\n"
    change = change_for("Edit", {"file_path": "f", "old_string": 'say("hello")', "new_string": 'say("hi")'}, before)
    assert change.kind == "edit" and not change.fragments and (change.added, change.removed) == (1, 1)
    assert not any("refuse" in note for note in change.notes)
    assert any("curly and straight quotes" in note for note in change.notes)
    assert "+ say(\u201chi\u201d)" in _visible(diff_html(change))  # the CLI curls the new quotes as the file's
    missing = change_for("Edit", {"file_path": "f", "old_string": 'say("nothing")', "new_string": "x"}, before)
    assert any("will refuse" in note for note in missing.notes)


def test_a_diff_past_its_limit_can_be_drawn_whole() -> None:
    change = change_for("Write", {"file_path": "f", "content": "".join(f"line {i}\n" for i in range(1, 1501))}, None)
    assert diff_rows(change) == 1501
    assert "line 1500" not in diff_html(change) and "501 more lines not shown" in diff_html(change)
    whole = diff_html(change, limit=diff_rows(change))
    assert "line 1500" in whole and "not shown" not in whole


def test_invisible_characters_are_written_out_in_paths_and_lines() -> None:
    change = change_for("Write", {"file_path": "report\u202egnp.sh", "content": "echo\u200b hi\n"}, None)
    markup = diff_html(change)
    assert "\u202e" not in markup and "\u200b" not in markup
    assert "report⟨U+202E⟩gnp.sh" in markup and "echo⟨U+200B⟩ hi" in markup and "text-direction" in markup
