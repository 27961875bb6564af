"""``%%claude`` sees what the notebook shows and writes into it: figures, context, cells, images."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from claude_kernel.testing.fake_api import (
    FakeMessagesAPI,
    Reply,
    ToolUse,
    last_user_content,
    tool_results,
    user_text,
)

pytestmark = pytest.mark.real_cli

PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('line')"


def _images(run: Any) -> list[str]:
    """The PNGs the cell shows (plain display_data, as the turn shows a tool result's images)."""
    return [m["content"]["data"]["image/png"] for m in run.outputs if "image/png" in m["content"].get("data", {})]


def _result_blocks(request: dict[str, Any]) -> list[dict[str, Any]]:
    content = tool_results(request)[0]["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


@pytest.mark.parametrize("code", [PLOT + "\nplt.show()", PLOT], ids=["show", "left-open"])
def test_run_python_returns_the_figure_as_an_image(python_kernel: Any, fake_api: FakeMessagesAPI, code: str) -> None:
    fake_api.enqueue(Reply.tool("mcp__notebook__run_python", {"code": code}), Reply.text("A line that peaks."))
    run = python_kernel.run("%%claude --headless allow\nplot it", allow_stdin=False)
    assert run.reply is not None and run.reply["status"] == "ok", run.outputs
    blocks = _result_blocks(fake_api.requests[1])
    images = [b for b in blocks if b["type"] == "image"]
    assert len(images) == 1 and images[0]["source"]["media_type"] == "image/png"
    text = blocks[0]["text"]
    assert "[image 1 attached: " in text and "PNG" in text
    assert _images(run) == [images[0]["source"]["data"]]  # shown in the cell, once
    after = python_kernel.run("import matplotlib.pyplot as plt\nprint(plt.get_fignums())")
    assert "[]" in after.streamed()  # closed after capture: the inline backend will not show it again


def test_a_dataframe_is_text_for_the_model_and_a_table_in_the_cell(
    python_kernel: Any, fake_api: FakeMessagesAPI
) -> None:
    python_kernel.run("import pandas as pd\ndf = pd.DataFrame({'x': range(100), 'y': range(100)})")
    fake_api.enqueue(Reply.tool("mcp__notebook__run_python", {"code": "df"}), Reply.text("100 rows."))
    run = python_kernel.run("%%claude --headless allow\nshow df", allow_stdin=False)
    text = _result_blocks(fake_api.requests[1])[0]["text"]
    assert "[100 rows x 2 columns]" in text and "<table" not in text and len(text) < 1500
    tables = [m for m in run.outputs if "<table" in m["content"].get("data", {}).get("text/html", "")]
    assert len(tables) == 1 and "dataframe" in tables[0]["content"]["data"]["text/html"]
    answer = next(i for i, h in run.displays().items() if "100 rows." in h.get("text/html", ""))
    ids = [m["content"].get("transient", {}).get("display_id") for m in run.outputs]
    assert run.outputs.index(tables[0]) < ids.index(answer)  # the answer goes on below the table


def test_create_cell_comes_back_as_set_next_input(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(
        Reply(
            (
                ToolUse("mcp__notebook__create_cell", {"code": "df.describe()"}),
                ToolUse("mcp__notebook__create_cell", {"code": "df.plot()"}),
            )
        ),
        Reply.text("Two cells proposed."),
    )
    run = python_kernel.run("%%claude\npropose cells")
    assert run.reply is not None and run.reply["status"] == "ok", run.outputs
    payloads = [p for p in run.reply["payload"] if p["source"] == "set_next_input"]
    assert payloads == [{"source": "set_next_input", "text": "df.describe()\n\ndf.plot()", "replace": False}]
    assert "Added a new cell below" in run.text()
    results = [str(r["content"]) for r in tool_results(fake_api.requests[1])]
    assert "Added a new cell below" in results[0] and "after the 1 proposal" in results[1]


def test_the_cells_run_since_the_last_message_travel_with_it(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    fake_api.enqueue(Reply.text("You divided by zero."), Reply.text("Fine."), Reply.text("Fine."))
    python_kernel.run("print('loading')\nrows = 3")
    python_kernel.run("def ratio(a, b):\n    return a / b\n\nratio(rows, 0)")
    run = python_kernel.run("%%claude\nwhat went wrong above?")
    sent = user_text(fake_api.requests[-1])
    assert "ZeroDivisionError: division by zero" in sent and "return a / b" in sent and "loading" in sent
    assert sent.index("rows = 3") < sent.index("ratio(rows, 0)") and sent.endswith("what went wrong above?")
    assert "interactiveshell" not in sent  # IPython's own frames say nothing about the user's code
    assert "Sent with 2 cells since the last message, 1 error." in run.text()
    python_kernel.run("x = 1")
    python_kernel.run("%%claude --no-context\nagain")
    assert user_text(fake_api.requests[-1]) == "again"
    python_kernel.run("%config ClaudeMagics.context = False")
    python_kernel.run("y = 2")
    later = python_kernel.run("%%claude\nthird")
    assert user_text(fake_api.requests[-1]) == "third" and "Sent with" not in later.text()


def test_image_option_attaches_a_figure(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    python_kernel.run("import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2])\nplt.close(fig)")
    fake_api.enqueue(Reply.text("A rising line."))
    run = python_kernel.run("%%claude --image fig --no-context\nwhat is this?")
    assert run.reply is not None and run.reply["status"] == "ok", run.outputs
    sent = [b for b in last_user_content(fake_api.requests[-1]) if b["type"] == "image"]
    assert len(sent) == 1 and sent[0]["source"]["media_type"] == "image/png"
    assert _images(run) == [sent[0]["source"]["data"]] and "Attached fig (" in run.text()
    bad = python_kernel.run("%%claude --image missing.png\nand this?")
    assert bad.reply is not None and bad.reply["status"] == "error"
    assert "--image missing.png: missing.png: no such file" in bad.reply["evalue"]
    assert len(fake_api.requests) == 1  # nothing was sent


def test_claude_kernel_shows_the_images_a_message_sends(
    claude_kernel: Any, fake_api: FakeMessagesAPI, workdir: Path
) -> None:
    from PIL import Image

    Image.new("RGB", (64, 48), "red").save(workdir / "chart.png")
    file_data = base64.b64encode((workdir / "chart.png").read_bytes()).decode()
    fake_api.enqueue(Reply.text("A red square."), Reply.text("Still red."))
    mention = claude_kernel.run("what is in @chart.png?")
    assert mention.reply is not None and mention.reply["status"] == "ok", mention.outputs
    assert [b["type"] for b in last_user_content(fake_api.requests[-1])].count("image") == 1  # the CLI sent it
    assert _images(mention) == [file_data] and "Sent chart.png (64x48 PNG)." in mention.text()
    attach = claude_kernel.run("%attach chart.png\nand this one?")
    sent = [b for b in last_user_content(fake_api.requests[-1]) if b["type"] == "image"]
    assert [b["source"]["data"] for b in sent] == [file_data] == _images(attach)
    assert "chart.png (64x48 PNG) goes with the message." in attach.streamed()
    bad = claude_kernel.run("%attach nothing.png")
    assert bad.reply is not None and bad.reply["status"] == "error"
    assert "nothing.png: no such file" in bad.reply["evalue"]
    (workdir / "notes.png").write_text("not an image")
    broken = claude_kernel.run("look at @notes.png")
    assert broken.reply is not None and "@notes.png is not a PNG, JPEG, GIF or WebP image" in broken.reply["evalue"]
    assert len(fake_api.requests) == 2  # neither error sent anything


def test_display_images_are_bounded_and_capped(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    """IPython display images reach the model; a huge one is scaled down; five figures send four."""
    code = (
        "import io\nfrom PIL import Image as Picture\nfrom IPython.display import Image, display\n"
        "big = io.BytesIO()\nPicture.new('RGB', (4000, 3000), 'blue').save(big, format='JPEG')\n"
        "display(Image(big.getvalue()))\n"
        "import matplotlib.pyplot as plt\nfor n in range(4):\n    plt.figure()\n    plt.plot([0, n])"
    )
    fake_api.enqueue(Reply.tool("mcp__notebook__run_python", {"code": code}), Reply.text("Five pictures."))
    run = python_kernel.run("%%claude --headless allow\ndraw", allow_stdin=False)
    assert run.reply is not None and run.reply["status"] == "ok", run.outputs
    blocks = _result_blocks(fake_api.requests[1])
    images = [b for b in blocks if b["type"] == "image"]
    assert [b["source"]["media_type"] for b in images] == ["image/jpeg"] + ["image/png"] * 3
    assert "[image 1 attached: 1568x1176 JPEG" in blocks[0]["text"]
    assert "shown to the user but not attached: at most 4 images per call" in blocks[0]["text"]
    assert len(_images(run)) == 4  # the fifth is shown, though not sent
    assert len([m for m in run.outputs if "image/jpeg" in m["content"].get("data", {})]) == 1
    left = python_kernel.run("import matplotlib.pyplot as plt\nprint(plt.get_fignums())")
    assert "[]" in left.streamed()


def test_the_context_keeps_the_newest_cells_within_its_cap(python_kernel: Any, fake_api: FakeMessagesAPI) -> None:
    for n in range(20):
        python_kernel.run(f"print('cell {n:02d} ' + 'x' * 900)")
    fake_api.enqueue(Reply.text("Many cells."))
    run = python_kernel.run("%%claude\nsummarise")
    sent = user_text(fake_api.requests[-1])
    assert "cell 19" in sent and "cell 00" not in sent and "older cells left out" in sent
    assert 6000 < len(sent) < 9000
    assert "since the last message." in run.text()
