"""What agent_progress.py says of background work."""

from __future__ import annotations

import pytest

from claude_kernel.agent_progress import task_kind


@pytest.mark.parametrize(
    ("task_type", "kind"), [("local_agent", "Agent"), ("local_bash", "Bash"), ("remote", "remote"), (None, "task")]
)
def test_a_task_is_called_by_one_name_everywhere(task_type: object, kind: str) -> None:
    assert task_kind(task_type) == kind
