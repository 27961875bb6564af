"""What a user sees and clicks in JupyterLab and Notebook 7, with the real CLI and a scripted model."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from claude_kernel.testing.fake_api import FakeMessagesAPI, Reply, Text, Thinking, ToolUse, tool_results

from .conftest import DONE, KERNEL_WAIT_MS, TOKEN, JupyterServer, playwright, shot

expect = playwright.expect

pytestmark = [pytest.mark.browser, pytest.mark.real_cli]


class Notebook:
    """One open notebook, every locator scoped to its panel (a restored workspace can hide others)."""

    def __init__(self, page: Any, server: JupyterServer, name: str, *, opened: bool = False) -> None:
        """Open ``name`` (or, with ``opened``, take the Lab tab already showing it)."""
        self.page = page
        if server.app == "lab":
            if not opened:
                page.goto(f"{server.url}/lab/tree/{name}?reset&token={TOKEN}")
            tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text=name)
            expect(tab).to_be_visible()
            self.panel = page.locator(f"[id='{tab.get_attribute('data-id')}']")
        else:
            page.goto(f"{server.url}/notebooks/{name}?token={TOKEN}")
            self.panel = page.locator(".jp-NotebookPanel")
        self._wait_for_kernel(server, name)

    def _wait_for_kernel(self, server: JupyterServer, name: str) -> None:
        # The toolbar says "idle" before any kernel exists; the server knows better.
        # A kernel start on a loaded 2-core machine takes seconds: wait as long as for the server's word.
        indicator = self.panel.locator(".jp-Notebook-ExecutionIndicator")
        expect(indicator).to_have_attribute("data-status", "idle", timeout=KERNEL_WAIT_MS)
        deadline = time.monotonic() + KERNEL_WAIT_MS / 1000
        while time.monotonic() < deadline:
            sessions = [s for s in server.api("GET", "/api/sessions") if s["path"].endswith(name)]
            if sessions and sessions[0]["kernel"]["execution_state"] == "idle":
                return
            time.sleep(0.2)
        raise AssertionError("the kernel never became idle")

    def cell(self, index: int) -> Any:
        return self.panel.locator(".jp-Notebook .jp-Cell").nth(index)

    def run(self, index: int, code: str) -> Any:
        """Type ``code`` into cell ``index`` (as is: no auto-indent) and run it."""
        cell = self.cell(index)
        cell.locator(".jp-InputArea-editor .cm-content").click()
        self.page.keyboard.insert_text(code)
        self.page.keyboard.press("Shift+Enter")
        return cell

    def run_existing(self, index: int) -> Any:
        cell = self.cell(index)
        cell.locator(".jp-InputArea-editor .cm-content").click()
        self.page.keyboard.press("Shift+Enter")
        return cell

    def wait_done(self, cell: Any, timeout: float = 60_000) -> None:
        expect(cell.locator(".jp-InputArea-prompt")).to_have_text(DONE, timeout=timeout)


def button(scope: Any, label: str) -> Any:
    """The widget button labelled exactly ``label`` ("Allow" is not "Always allow"); icons aside."""
    return scope.locator("button.jupyter-button").filter(has_text=re.compile(rf"^\W*{label}$"))


def _open(page: Any, server: JupyterServer, request: pytest.FixtureRequest, kernel: str = "claude") -> Notebook:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name) + ".ipynb"
    server.create_notebook(name, kernel)
    return Notebook(page, server, name)


def test_pick_claude_from_the_launcher_and_watch_the_answer_stream(
    page: Any, lab: JupyterServer, model: FakeMessagesAPI
) -> None:
    model.enqueue(
        Reply(
            (
                Thinking("A friendly greeting fits."),
                Text("Hello from **Claude**! Streaming, word by word, into your notebook. " * 4, chunk=4),
            ),
            delay=0.03,
        )
    )
    page.goto(f"{lab.url}/lab?reset&token={TOKEN}")
    page.locator(".jp-LauncherCard[data-category='Notebook'][title='Claude']").click()
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")
    expect(tab).to_contain_text(".ipynb")
    notebook = Notebook(page, lab, tab.inner_text().strip(), opened=True)
    expect(page.locator(".jp-StatusBar-TextItem", has_text="Claude")).to_be_visible()
    cell = notebook.run(0, "Say hello")
    output = cell.locator(".jp-OutputArea-output").first
    expect(output).to_contain_text("Hello from", timeout=30_000)
    streaming = output.inner_text()
    shot(page, "lab-streaming")
    notebook.wait_done(cell)
    final = output.inner_text()
    assert len(final) > len(streaming)  # it grew while we watched
    expect(output.locator("strong", has_text="Claude").first).to_be_visible()  # rendered Markdown
    expect(output.locator("details summary", has_text="Thinking")).to_be_visible()
    expect(output).to_contain_text("session")  # the footer
    shot(page, "lab-answer")


def test_bash_prompt_allow_then_deny(
    page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest
) -> None:
    model.enqueue(
        Reply.tool(
            "Bash",
            {"command": "touch allowed-in-browser.txt && echo CREATED-OK", "description": "Create"},
            say="I will create the file.",
        ),
        Reply.text("The file exists now."),
        Reply.tool("Bash", {"command": "touch denied-in-browser.txt", "description": "Create another"}),
        Reply.text("Understood, I did not create it."),
    )
    notebook = _open(page, lab, request)
    first = notebook.run(0, "Create a file")
    allow = button(first, "Allow")
    expect(allow).to_be_visible()
    expect(first.locator(".claude-command textarea")).to_have_value(re.compile("touch allowed-in-browser.txt"))
    shot(page, "lab-permission-prompt")
    allow.click()
    notebook.wait_done(first)
    expect(first).to_contain_text("CREATED-OK")  # the command's output, in its tool card
    expect(first).to_contain_text("The file exists now.")
    expect(first).to_contain_text("touch allowed-in-browser.txt && echo CREATED-OK - allowed")
    assert (lab.root / "allowed-in-browser.txt").exists()
    shot(page, "lab-permission-allowed")

    second = notebook.run(1, "Create another")
    deny = button(second, "Deny")
    expect(deny).to_be_visible()
    second.locator(".widget-text input").fill("not today")
    deny.click()
    notebook.wait_done(second)
    expect(second).to_contain_text("Understood, I did not create it.")
    expect(second).to_contain_text("denied: not today")
    assert not (lab.root / "denied-in-browser.txt").exists()
    assert "not today" in str(tool_results(model.requests[-1])[0]["content"])


def test_ask_user_by_typing_and_submit(
    page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest
) -> None:
    model.enqueue(
        Reply.tool("mcp__notebook__ask_user", {"question": "Which dataset should I use?"}),
        Reply.text("Great, using penguins."),
    )
    notebook = _open(page, lab, request)
    cell = notebook.run(0, "Ask me which dataset")
    expect(cell).to_contain_text("Which dataset should I use?")
    cell.locator(".widget-textarea textarea").fill("penguins")
    shot(page, "lab-ask-user")
    button(cell, "Submit").click()
    notebook.wait_done(cell)
    expect(cell).to_contain_text("Great, using penguins.")
    assert "penguins" in str(tool_results(model.requests[-1])[0]["content"])


def test_interrupt_button_stops_a_slow_answer(
    page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest
) -> None:
    model.enqueue(Reply.text("slowly " * 500, delay=0.03, chunk=7), Reply.text("Back to normal."))
    notebook = _open(page, lab, request)
    cell = notebook.run(0, "Talk for a long time")
    expect(cell).to_contain_text("slowly slowly", timeout=30_000)
    notebook.panel.locator("jp-button[data-command='notebook:interrupt-kernel']").click()
    notebook.wait_done(cell, timeout=KERNEL_WAIT_MS)
    expect(cell).to_contain_text("KeyboardInterrupt")
    expect(cell).to_contain_text("Interrupted")
    shot(page, "lab-interrupted")
    after = notebook.run(1, "Carry on")
    notebook.wait_done(after)
    expect(after).to_contain_text("Back to normal.")


# Each payload tries to set window.__pwned to its own number, so a failure names the one that ran.
HOSTILE = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 2">',
    '<svg onload="window.__pwned = 3"></svg>',
    "[plain](javascript:window.__pwned=4)",
    "[escaped](javascript\\:window.__pwned=5)",
    "[entity](&#x6a;avascript:window.__pwned=6)",
    "<javascript:window.__pwned=7>",
    # No fence (a backtick in the info string), so the last line opens one; the next closes it.
    "```x`\n<img src=x onerror=window.__pwned=8>\n```\ncode, not a fence\n```",
    "[reference][r]\n\n[r]: JavaScript:window.__pwned=9",
    "![image](javascript:window.__pwned=10)",
    '<details open ontoggle="window.__pwned = 11"><summary>t</summary></details>',
    "<iframe srcdoc='<script>parent.__pwned = 12</script>'></iframe>",
    "[data](data:text/html,<script>window.__pwned=14</script>)",
    '<a href="javascript:window.__pwned=15">raw anchor</a>',
    "$$\\href{javascript:window.__pwned=16}{math link}$$ and \\(\\href{javascript:window.__pwned=16}{x}\\)",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__pwned=17>",
    "<form><button formaction=javascript:window.__pwned=18>go</button></form>",
    "![pixel](http://127.0.0.1:9/pixel.png) and [a fine link](https://example.com/docs)",
    "It costs $5 and $6; the shell has $HOME and $PATH.",
]


def test_hostile_model_text_never_runs(
    page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest
) -> None:
    """A battery of script, link and markup tricks, including a fence opened before a tool card and
    closed after it: nothing runs, every link is http, https or mailto, nothing loads, no math."""
    model.enqueue(
        Reply((Text("\n\n".join(HOSTILE) + "\n\n```\n"), ToolUse("Glob", {"pattern": "*.none"}))),
        Reply.text("```\n<img src=x onerror=window.__pwned=13>\n\nThe end of the hostile answer."),
    )
    notebook = _open(page, lab, request)
    cell = notebook.run(0, "Say something nasty")
    notebook.wait_done(cell)
    output = cell.locator(".jp-OutputArea-output")
    expect(output.first).to_contain_text("The end of the hostile answer.")
    expect(output.first).to_contain_text("<script>window.__pwned = 1</script>")  # shown as text
    for summary in output.locator("summary").all():
        summary.click()  # toggling our own <details> must not fire anything either
    page.wait_for_timeout(1000)  # onerror, onload and ontoggle fire asynchronously
    assert page.evaluate("window.__pwned") is None
    hrefs = output.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert "https://example.com/docs" in hrefs and "http://127.0.0.1:9/pixel.png" in hrefs
    assert all(re.match(r"(?i)(https?://|mailto:)", href or "") for href in hrefs), hrefs
    live = "img, svg, iframe, script, style, form, button, math, object, embed, mjx-container"
    assert output.locator(live).count() == 0
    expect(output.first).to_contain_text("It costs $5 and $6; the shell has $HOME and $PATH.")  # not typeset
    shot(page, "lab-hostile-text")


def test_percent_percent_claude_with_an_approval_click(
    page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest
) -> None:
    model.enqueue(Reply.tool("mcp__notebook__run_python", {"code": "answer = 6 * 7\nanswer"}), Reply.text("It is 42."))
    notebook = _open(page, lab, request, kernel="python3")
    loaded = notebook.run(0, "%load_ext claude_kernel")
    notebook.wait_done(loaded)
    cell = notebook.run(1, "%%claude\nWhat is six times seven? Use Python.")
    expect(cell.locator(".claude-command textarea")).to_have_value(re.compile("answer = 6 \\* 7"))
    shot(page, "lab-magic-run-python")
    button(cell, "Allow").click()
    notebook.wait_done(cell)
    expect(cell).to_contain_text("It is 42.")
    assert "42" in str(tool_results(model.requests[-1])[0]["content"])
    check = notebook.run(2, "print(answer + 1)")
    notebook.wait_done(check)
    expect(check).to_contain_text("43")


def test_dark_theme(page: Any, lab: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest) -> None:
    """Cards, panels and the footer stay readable in the dark theme (look at lab-dark-theme.png)."""
    model.enqueue(
        Reply(
            (
                Thinking("Checking."),
                Text(
                    "Here is a **dark** answer with `code` and [a link](https://example.com).\n\n"
                    "| tool | cost |\n|---|--:|\n| Bash | $0.01 |\n\n> A quote.\n\n"
                    "```python\nprint('hi')\n```"
                ),
            ),
        ),
        Reply.tool("Bash", {"command": "touch dark.txt", "description": "Create"}),
    )
    notebook = _open(page, lab, request)
    _set_theme(page, "JupyterLab Dark")
    expect(page.locator("body[data-jp-theme-light='false']")).to_be_attached()
    first = notebook.run(0, "Answer in the dark")
    notebook.wait_done(first)
    second = notebook.run(1, "Make a file")
    expect(button(second, "Allow")).to_be_visible()
    first.locator("summary", has_text="Thinking").click()
    first.evaluate("cell => cell.scrollIntoView({block: 'start'})")
    shot(page, "lab-dark-theme")
    button(second, "Deny").click()
    notebook.wait_done(second)
    expect(second).to_contain_text("denied")
    shot(page, "lab-dark-theme-denied")
    _set_theme(page, "JupyterLab Light")  # the server is shared with later tests


def _set_theme(page: Any, theme: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{theme}$")).click()


def test_offline_demo_notebook(page: Any, lab: JupyterServer, model: FakeMessagesAPI) -> None:
    """What a newcomer sees with `./dev lab --offline`: the demo notebook against the scripted model."""
    from claude_kernel.demo import NOTEBOOKS

    content = json.loads((NOTEBOOKS / "demo.ipynb").read_text())
    lab.api("PUT", "/api/contents/demo.ipynb", {"type": "notebook", "content": content})
    notebook = Notebook(page, lab, "demo.ipynb")
    hello = notebook.run_existing(1)
    notebook.wait_done(hello)
    expect(hello).to_contain_text("offline demo: a scripted model")
    expect(hello).to_contain_text("Each cell you run is one message")
    make_file = notebook.run_existing(2)
    button(make_file, "Allow").click()
    notebook.wait_done(make_file)
    expect(make_file).to_contain_text("Done: the tool ran")
    assert (lab.root / "demo-file.txt").exists()
    ask = notebook.run_existing(3)
    ask.locator(".widget-textarea textarea").fill("iris")
    button(ask, "Submit").click()
    notebook.wait_done(ask)
    session = notebook.run_existing(4)
    notebook.wait_done(session)
    expect(session).to_contain_text("session id:")
    notebook.cell(1).evaluate("cell => cell.scrollIntoView({block: 'start'})")
    shot(page, "demo-offline")


def test_notebook7_kernel_flow(
    page: Any, notebook7: JupyterServer, model: FakeMessagesAPI, request: pytest.FixtureRequest
) -> None:
    model.enqueue(
        Reply.tool("Bash", {"command": "touch nb7.txt", "description": "Create"}), Reply.text("Done in Notebook 7.")
    )
    notebook = _open(page, notebook7, request)
    cell = notebook.run(0, "Create nb7.txt")
    button(cell, "Allow").click()
    notebook.wait_done(cell)
    expect(cell).to_contain_text("Done in Notebook 7.")
    assert (notebook7.root / "nb7.txt").exists()
    shot(page, "notebook7-answer")
