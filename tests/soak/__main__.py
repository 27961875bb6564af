"""``./dev soak [--cells N] [--kill-every N]``: run the soak and print its table; exit 1 on any failure."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .driver import CellResult, run_soak


def main() -> int:
    parser = argparse.ArgumentParser(prog="./dev soak", description=__doc__)
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--kill-every", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a cell may take before it counts as hung")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()

    def progress(result: CellResult) -> None:
        mark = "HUNG" if result.hung else ("FAIL" if result.problems else "ok")
        print(f"cell {result.plan.number:>4} {result.plan.kind:<10} {result.seconds:6.2f} s  {mark}", flush=True)

    report = asyncio.run(
        run_soak(args.cells, kill_every=args.kill_every, cell_timeout=args.timeout, seed=args.seed, progress=progress)
    )
    print()
    print(report.table())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
