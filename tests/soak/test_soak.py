"""A short soak in the default run: 30 cells with every fault kind, through nbclient (``./dev soak`` runs 300)."""

from __future__ import annotations

import anyio
import pytest

from .driver import plan_cells, run_soak

pytestmark = pytest.mark.real_cli


def test_the_plan_has_every_fault_kind() -> None:
    kinds = {plan.kind for plan in plan_cells(30, kill_every=10)}
    assert kinds >= {"answer", "allowed", "denied", "interrupt", "api_error", "kill_mid", "kill_idle", "write", "undo"}
    assert "restart" in {plan.kind for plan in plan_cells(60, kill_every=10)}


def test_thirty_cells_with_faults_lose_nothing() -> None:
    report = anyio.run(lambda: run_soak(30, kill_every=10))
    assert report.ok, report.table()
    assert report.kills == 3 and report.most_clis_at_once == 1
    # Flat: a few hundred kB of allocator noise, not a leak per cell.
    assert report.rss_kb[-1] - report.rss_kb[2] < 8 * 1024, report.table()
    assert report.fds[-1] <= report.fds[2] + 2, report.table()
