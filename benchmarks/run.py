"""``./dev bench``: every performance claim of claude-kernel, measured side by side in one run, as one table.

Rows (see each module for how): 1 the event pipeline (``pipeline``); 2 a cell through the kernel
against the raw CLI and ``claude -p --resume``; 3 the first cell against a warm one; 4 interrupts;
5 memory over many cells; 6 long output before and after freezing (``kernel_rows``); 7 JupyterLab's
responsiveness while 1 MB streams (``browser``); 8 to 11 the moments people wait for: first token,
restart, rewinds, idle notebooks (``wait_rows``); 12 the per-cell save of the notebook's state by
notebook size (``state_rows``); 13 the renderer's CPU for a long table, quote or loose list still
streaming, by size (``preview_rows``); 14 the first token as JupyterLab draws it (``browser``).
The real pinned CLI and the fake Messages API (instant scripted replies on 127.0.0.1) everywhere
but row 1, which replays a recorded-shape turn.

The table is printed and written into docs/benchmarks.md between its markers, with the machine.
``--quick`` takes fewer repetitions (a smoke run, about 3 minutes); the full run about 8 minutes.
``--only 8,9`` measures those rows alone and replaces just them in the written table.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the tests' helpers too

from benchmarks import browser, kernel_rows, pipeline, preview_rows, state_rows, wait_rows
from benchmarks.common import REPO, Row, cli_path, fake_model_env
from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply

DOC = REPO / "docs" / "benchmarks.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def machine(cli: str) -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    try:
        from claude_agent_sdk import __version__ as sdk
    except ImportError:
        sdk = "not installed"
    return (
        f"{cpu}, {os.cpu_count()} cores; Linux {platform.release()}; Python {platform.python_version()}; "
        f"claude CLI {version}; claude-agent-sdk {sdk}"
    )


def table(rows: list[Row]) -> str:
    lines = ["| # | measurement | median | p10-p90 | n | target | met |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| **{row.number}** | **{row.title}** | | | | | |")
        for measure in row.measures:
            median, band, count = measure.cells()
            lines.append(f"| | {measure.label} | {median} | {band} | {count} | | |")
        for check in row.checks:
            value = f"{check.value:.2f}{check.unit}" if check.unit == "x" else f"{check.value:.1f} {check.unit}"
            met = "-" if check.target == "-" else ("yes" if check.met else "**no**")
            lines.append(f"| | {check.label} | **{value}** | | | {check.target} | {met} |")
        if row.note:
            lines.append(f"| | *{row.note}* | | | | | |")
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    before, rest = doc.split(START, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(f"{before}{START}\n{text}\n{END}{after}")


def _row_blocks(table_text: str) -> dict[int, list[str]]:
    """The table's lines by row number (a row runs from its ``| **N** |`` line to the next)."""
    blocks: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in table_text.splitlines():
        found = re.match(r"\| \*\*(\d+)\*\* \|", line)
        if found:
            current = blocks.setdefault(int(found.group(1)), [])
        if current is not None and line.startswith("|"):
            current.append(line)
    return blocks


def merge_doc(rows: list[Row], note: str) -> None:
    """Replace only ``rows`` in the written table (a ``--only`` run), keeping the others and their header.

    Each ``--only`` run adds a "Rows ...: measured ..." line; an earlier one keeps the rows this
    run did not measure again, and goes once it has none left.
    """
    doc = DOC.read_text()
    old = doc.split(START, 1)[1].split(END, 1)[0].strip("\n")
    header = [line for line in old.splitlines() if line.startswith("Measured ")][:1]
    measured = {row.number for row in rows}
    notes = []
    for line in old.splitlines():
        found = re.match(r"Rows ([\d, ]+): (.*)", line)
        if found:
            kept = [n for n in found.group(1).split(", ") if int(n) not in measured]
            if kept:
                notes.append(f"Rows {', '.join(kept)}: {found.group(2)}")
    blocks = _row_blocks(old)
    blocks.update(_row_blocks(table(rows)))
    lines = table([]).splitlines()
    for number in sorted(blocks):
        lines += blocks[number]
    write_doc("\n\n".join([*header, *notes, note, "\n".join(lines)]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions: a smoke run")
    parser.add_argument("--no-browser", action="store_true", help="skip rows 7 and 14 (JupyterLab, Chromium)")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave docs/benchmarks.md alone")
    parser.add_argument("--only", default="", help="comma-separated row numbers: measure those rows alone")
    args = parser.parse_args(argv)
    quick = args.quick
    only = {int(number) for number in args.only.split(",") if number.strip()}
    os.environ["CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK"] = "1"  # the replay is no real CLI to ask
    cli = cli_path()
    began = time.perf_counter()
    rows: list[Row] = []

    def step(name: str, make: object) -> None:
        if only and int(name.split()[0]) not in only:
            return
        print(f"[{time.perf_counter() - began:5.0f} s] {name}", file=sys.stderr, flush=True)
        rows.append(make())  # type: ignore[operator]

    step("1 event pipeline", lambda: pipeline.run(rounds=3 if quick else 11))
    with (
        FakeMessagesAPI(fallback=lambda request: Reply.text("ok")) as api,
        fake_model_env(api) as (env, work),
        kernel_rows.kernelspec(),
    ):
        step(
            "2 cell vs raw vs resume",
            lambda: kernel_rows.cell_vs_raw_vs_resume(cli, env, work, rounds=3 if quick else 6, cells=5),
        )
        step("3 first vs warm", lambda: kernel_rows.first_vs_warm(cli, env, work, kernels=2 if quick else 5))
        step("4 interrupts", lambda: kernel_rows.interrupts(api, env, work, times=10 if quick else 50))
        step("5 memory", lambda: kernel_rows.memory(env, work, cells=100 if quick else 300))
        step("6 long output", lambda: kernel_rows.long_output(api, env, work, tools=50))
        step("8 first token", lambda: wait_rows.first_token(api, cli, env, work, times=10 if quick else 30))
        step("9 restart", lambda: wait_rows.restart(env, work, times=3 if quick else 7))
        step("10 rewinds", lambda: wait_rows.rewinds(env, work, turns_list=(20, 300), times=3 if quick else 5))
        step("11 idle memory", lambda: wait_rows.idle_memory(env, work, counts=(1, 4, 8)))
        missing = "skipped (--no-browser)" if args.no_browser else browser.chromium_missing()
        for number, title in ((7, "JupyterLab while a 1 MB answer streams"), (14, "First token in JupyterLab")):
            if missing and (not only or number in only):
                rows.append(Row(number, title, note=f"not measured: {missing}"))
        if not missing:
            step(
                "7 JupyterLab",
                lambda: browser.responsiveness(api, env, answer_size=1_000_000, clicks=10 if quick else 20),
            )
            step("14 first token in JupyterLab", lambda: browser.first_token(api, env, times=10 if quick else 30))
    step("12 state file", lambda: state_rows.save_cost(saves=50 if quick else 200))
    step("13 long previews", lambda: preview_rows.preview_cost(repeats=1 if quick else 3))
    elapsed = time.perf_counter() - began
    header = (
        f"Measured {date.today().isoformat()} by `./dev bench{' --quick' if quick else ''}` in {elapsed / 60:.1f} min "
        f"on: {machine(cli)}."
    )
    rows.sort(key=lambda row: row.number)
    text = f"{header}\n\n{table(rows)}"
    print(text)
    if only and not args.no_write:
        merge_doc(rows, f"Rows {', '.join(str(row.number) for row in rows)}: " + header[0].lower() + header[1:])
        print(f"\nrows {sorted(only)} replaced in {DOC.relative_to(REPO)}", file=sys.stderr)
    elif not args.no_write:
        write_doc(text)
        print(f"\nwritten to {DOC.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
