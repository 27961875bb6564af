"""What the benchmark steps share: samples with their spread, the table's rows, the fake model's environment."""

from __future__ import annotations

import contextlib
import gc
import statistics
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from claude_kernel.session import find_cli
from claude_kernel.testing.fake_api import FakeMessagesAPI

REPO = Path(__file__).resolve().parents[1]


def cli_path() -> str:
    """The CLI the tests drive: the pinned one of the cli extra (``find_cli``'s lookup order)."""
    return find_cli()


@contextlib.contextmanager
def own_heap() -> Iterator[None]:
    """Time in-process work apart from the heap the run's earlier rows left behind.

    A full collection walks every live object: in the bench's one process, work that allocates a
    lot (a 5,000-row render, a 3,000-cell load) paid for the earlier rows' heap, 4 to 10 times its
    cost alone. Collect, then set the survivors aside for the measurement.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def spread(values: list[float]) -> tuple[float, float, float]:
    """Median, p10 and p90 (inclusive deciles; with one value all three are that value)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return statistics.median(values), deciles[0], deciles[-1]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@dataclass
class Measure:
    """One measured quantity: its samples, shown as a median with p10-p90."""

    label: str
    samples: list[float]
    unit: str  # "ms", "s", "k/s", "MB", "KB", "x"
    scale: float = 1.0  # samples times this, in ``unit``

    def cells(self) -> tuple[str, str, str]:
        median, p10, p90 = (value * self.scale for value in spread(self.samples))
        digits = 0 if median >= 100 else 1 if median >= 10 else 2
        return f"{median:.{digits}f} {self.unit}", f"{p10:.{digits}f}-{p90:.{digits}f}", str(len(self.samples))


@dataclass
class Check:
    """A ratio (or figure) against its target."""

    label: str
    value: float
    target: str  # e.g. "<= 1.5x"
    met: bool
    unit: str = "x"


@dataclass
class Row:
    number: int
    title: str
    measures: list[Measure] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    note: str = ""


@contextlib.contextmanager
def fake_model_env(api: FakeMessagesAPI) -> Iterator[tuple[dict[str, str], Path]]:
    """The variables that point the real CLI at ``api`` with a throwaway HOME, and a work folder."""
    with tempfile.TemporaryDirectory(prefix="claude-bench-") as tmp:
        home, work = Path(tmp, "home"), Path(tmp, "work")
        home.mkdir()
        work.mkdir()
        yield {**api.environment(), "HOME": str(home)}, work
