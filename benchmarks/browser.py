"""Row 7: JupyterLab stays responsive while a 1 MB answer streams (headless Chromium, real kernel and CLI).

A benchmark step rather than a browser test: it is a timing, and the machine's load decides
timings. While the answer streams into the first cell, the benchmark clicks the prompt of another
cell, again and again, and the page itself measures from the click's ``mousedown`` (the event's
own time stamp, so time the event waited for a busy main thread counts) to the frame after that
cell became the active one.
"""

from __future__ import annotations

import os
import time

from claude_kernel.testing.fake_api import FakeMessagesAPI
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


def responsiveness(api: FakeMessagesAPI, env: dict[str, str], *, answer_size: int, clicks: int) -> Row:
    from playwright.sync_api import expect, sync_playwright

    from tests.browser.conftest import CHROMIUM, JupyterServer
    from tests.browser.test_jupyterlab import Notebook

    row = Row(
        7, f"JupyterLab while a {answer_size / 1e6:.0f} MB answer streams: click on another cell to its selection"
    )
    server = JupyterServer("lab", env)
    latencies: list[float] = []
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            name = server.create_notebook("bench.ipynb", "claude", ["Write the long report", "Another cell", "A third"])
            notebook = Notebook(page, server, name)
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
            browser.close()
    finally:
        server.stop()
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


def chromium_missing() -> str:
    path = os.environ.get("CLAUDE_KERNEL_CHROMIUM", "/usr/bin/chromium")
    if not os.access(path, os.X_OK):
        return f"no Chromium at {path}"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright is not installed"
    return ""
