"""What an undo would do, from the cells' records and the CLI's dry run; what a restore left undone."""

from __future__ import annotations

from pathlib import Path

from claude_kernel.notebook_state import CellTurn
from claude_kernel.undo import file_hash, hashes, plan_undo, unrestored


def turn(prompt: str, work: Path, *names: str, created: tuple[str, ...] = ()) -> CellTurn:
    paths = [str(work / name) for name in names]
    return CellTurn(
        f"cell-{prompt}",
        prompt,
        None,
        first_line=f"cell {prompt}",
        files_changed=paths,
        cwd=str(work),
        file_hashes=hashes(paths, str(work)),
        files_created=[str(work / name) for name in created],
    )


def test_a_clean_undo_needs_no_confirmation(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("by the cell\n")
    first = turn("u1", tmp_path, "a.txt")
    plan = plan_undo([first], {"canRewind": True, "filesChanged": [str(tmp_path / "a.txt")]}, str(tmp_path))
    assert plan.files == (str(tmp_path / "a.txt"),) and plan.warning(lambda t: t.first_line, str) is None


def test_hand_edits_deletions_later_cells_and_unrecorded_files_are_named(tmp_path: Path) -> None:
    for name in ("a.txt", "new.txt", "b.txt"):
        (tmp_path / name).write_text(f"{name} by a cell\n")
    first = turn("u1", tmp_path, "a.txt", "new.txt", created=("new.txt",))
    later = turn("u2", tmp_path, "b.txt")
    (tmp_path / "a.txt").write_text("a.txt by a cell\nand by hand\n")
    preview = {"canRewind": True, "filesChanged": [str(tmp_path / n) for n in ("a.txt", "new.txt", "b.txt", "c.txt")]}
    plan = plan_undo([first, later], preview, str(tmp_path))
    assert plan.changed_since == (str(tmp_path / "a.txt"),)
    assert plan.deleted == (str(tmp_path / "new.txt"),)
    assert plan.unrecorded == (str(tmp_path / "c.txt"),)
    warning = plan.warning(lambda t: t.first_line, lambda p: Path(p).name)
    assert warning is not None
    assert "cell u2 (b.txt)" in warning and "a.txt changed since" in warning
    assert "new.txt did not exist before" in warning and "also restores c.txt" in warning


def test_a_file_the_restore_left_as_it_was_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x\n")
    (tmp_path / "b.txt").write_text("y\n")
    plan = plan_undo([turn("u1", tmp_path, "a.txt", "b.txt")], {"canRewind": True}, str(tmp_path))
    before = hashes(plan.files, str(tmp_path))
    (tmp_path / "a.txt").write_text("restored\n")
    assert unrestored(plan, before, hashes(plan.files, str(tmp_path))) == [str(tmp_path / "b.txt")]
    assert file_hash(str(tmp_path / "gone.txt")) is None
