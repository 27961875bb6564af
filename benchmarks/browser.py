"""Rows 7 and 14: what a person sees in JupyterLab (headless Chromium, real kernel and CLI).

Benchmark steps rather than browser tests: they are timings, and the machine's load decides
timings.

7. While a 1 MB answer streams into the first cell, the benchmark clicks the prompt of another
   cell, again and again, and the page itself measures from the click's ``mousedown`` (the event's
   own time stamp, so time the event waited for a busy main thread counts) to the frame after that
   cell became the active one.
14. First token: from the moment the fake model flushed an answer's first text delta to the frame
   after that text appeared in the cell's output on the page. Both ends read the same wall clock
   (the server's ``time.time()``, the page's ``Date.now()``), so the figure covers the whole path:
   the CLI, the kernel, the Jupyter server's websocket and JupyterLab's rendering.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply
from claude_kernel.testing.long_answer import long_answer

from .common import Check, Measure, Row, percentile, spread
from .kernel_rows import paced

# Resolves window.__selected with the milliseconds from the next mousedown to the frame after
# ``cell`` became the active cell.
_ARM = """cell => {
  window.__selected = new Promise(resolve => {
    let down = null;
    window.addEventListener('mousedown', event => { down = event.timeStamp; }, {capture: true, once: true});
    const observer = new MutationObserver(() => {
      if (down !== null && cell.classList.contains('jp-mod-active')) {
        observer.disconnect();
        requestAnimationFrame(() => resolve(performance.now() - down));
      }
    });
    observer.observe(cell, {attributes: true, attributeFilter: ['class']});
  });
}"""


# Resolves window.__drawn with Date.now() at the frame after ``word`` appeared in ``cell``'s output.
_ARM_TEXT = """(cell, word) => {
  window.__drawn = new Promise(resolve => {
    const output = cell.querySelector('.jp-Cell-outputWrapper') || cell;
    const observer = new MutationObserver(() => {
      if (output.textContent.includes(word)) {
        observer.disconnect();
        requestAnimationFrame(() => resolve(Date.now()));
      }
    });
    observer.observe(output, {childList: true, subtree: true, characterData: true});
  });
}"""


@contextlib.contextmanager
def _notebook_in_lab(env: dict[str, str], name: str, cells: list[str]) -> Iterator[Any]:
    """A Claude notebook of ``cells`` open in JupyterLab in headless Chromium, its kernel idle."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, JupyterServer
    from tests.browser.test_jupyterlab import Notebook

    server = JupyterServer("lab", env)
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            yield Notebook(page, server, server.create_notebook(name, "claude", cells))
            browser.close()
    finally:
        server.stop()


def responsiveness(api: FakeMessagesAPI, env: dict[str, str], *, answer_size: int, clicks: int) -> Row:
    from playwright.sync_api import expect

    row = Row(
        7, f"JupyterLab while a {answer_size / 1e6:.0f} MB answer streams: click on another cell to its selection"
    )
    latencies: list[float] = []
    with _notebook_in_lab(env, "bench.ipynb", ["Write the long report", "Another cell", "A third"]) as notebook:
        page = notebook.page
        api.enqueue(paced(long_answer(answer_size)))
        started = time.perf_counter()
        first = notebook.run_existing(0)
        expect(first.locator(".claude-text").first).to_be_visible()
        while len(latencies) < clicks:
            if (first.locator(".jp-InputArea-prompt").text_content() or "").strip() != "[*]:":
                break  # the answer has ended: what is left to measure is an idle page
            target = next(
                notebook.cell(n)
                for n in (1, 2)
                if "jp-mod-active" not in (notebook.cell(n).get_attribute("class") or "")
            )
            target.evaluate(_ARM)
            target.locator(".jp-InputPrompt").click()
            latencies.append(page.evaluate("() => window.__selected"))
            time.sleep(0.5)
        notebook.wait_done(first, timeout=600_000)
        streamed = time.perf_counter() - started
    if not latencies:
        raise RuntimeError("the answer ended before any click")
    row.measures = [Measure("click to selection", latencies, "ms")]
    p90 = percentile(latencies, 0.9)
    median = spread(latencies)[0]
    row.checks = [
        Check("median", median, "< 200 ms", median < 200, unit="ms"),
        Check("p90", p90, "< 200 ms", p90 < 200, unit="ms"),
    ]
    row.note = f"{len(latencies)} clicks while the answer streamed ({streamed:.0f} s to its end)"
    return row


def first_token(api: FakeMessagesAPI, env: dict[str, str], *, times: int) -> Row:
    """Row 14: the model's first text delta to the frame that shows it, over ``times`` new cells."""
    row = Row(14, "First token in JupyterLab: the model's first text delta to the frame that shows it")
    latencies: list[float] = []
    cells = ["Warm up", *(f"Question {number}" for number in range(1, times + 1))]
    with _notebook_in_lab(env, "first-token.ipynb", cells) as notebook:
        notebook.wait_done(notebook.run_existing(0))  # the kernel's first cell is row 3's business
        for number in range(1, times + 1):
            word = f"Firstword{number}"
            # The first word at once, then a slow rest: the row times the first word, not the stream.
            api.enqueue(Reply.text(word + " and then" + " more" * 40, chunk=len(word), delay=0.01))
            cell = notebook.cell(number)
            cell.evaluate(_ARM_TEXT, word)
            notebook.run_existing(number)
            drawn = notebook.page.evaluate("() => window.__drawn") / 1000
            notebook.wait_done(cell)
            sent = next(at for piece, at in reversed(api.first_text_sent) if piece == word)
            latencies.append(drawn - sent)
    row.measures = [Measure("model's first text delta to the frame showing it", latencies, "ms", 1000)]
    median, p90 = spread(latencies)[0] * 1000, percentile(latencies, 0.9) * 1000
    row.checks = [
        Check("median", median, "< 100 ms", median < 100, unit="ms"),
        Check("p90", p90, "< 100 ms", p90 < 100, unit="ms"),
    ]
    row.note = "before: the status redraw opened the 0.25 s throttle and the first words waited (about 250 ms)"
    return row


def chromium_missing() -> str:
    path = os.environ.get("CLAUDE_KERNEL_CHROMIUM", "/usr/bin/chromium")
    if not os.access(path, os.X_OK):
        return f"no Chromium at {path}"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright is not installed"
    return ""
