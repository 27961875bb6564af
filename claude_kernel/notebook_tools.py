"""Host tools over the live Python namespace of a notebook: what ``%%claude`` adds over the kernel.

Claude can list the user's variables, read a summary of one, (only after the user allows it in
the cell) run Python in that namespace and see what it displays, and propose a new cell. Every
result stays small: values are summarised (type, shape, the head of a table, a truncated repr),
never dumped, and images are bounded, because tool results cost context.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import reprlib
import sys
import traceback
import types
from dataclasses import dataclass, field
from typing import Any

from .images import Image, ImageError, bounded, figure_png
from .session import HostTool

__all__ = [
    "CREATE_CELL",
    "INSPECT_VARIABLE",
    "LIST_VARIABLES",
    "NOTEBOOK_TOOLS",
    "RUN_PYTHON",
    "NotebookNamespace",
    "RunOutput",
]

LIST_VARIABLES = HostTool(
    "list_variables",
    "List the variables defined in the user's live Python notebook session: name, type and a short summary.",
    {"type": "object", "properties": {}},
)
INSPECT_VARIABLE = HostTool(
    "inspect_variable",
    "Summarise one variable of the user's notebook session: type, shape, columns and first rows of a "
    "table, or a truncated repr.",
    {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
)
RUN_PYTHON = HostTool(
    "run_python",
    "Run Python code in the user's live notebook namespace (the user approves it first) and see its "
    "printed output, the value of its last expression, and what it displays: matplotlib figures "
    "(plt.show() or left open) and images come back as images you can see, and are shown to the user. "
    "Changes to variables persist.",
    {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
)
CREATE_CELL = HostTool(
    "create_cell",
    "Put Python code into a new cell below the user's current cell, for the user to read and run (it "
    "is not run). Use it for code the user should keep in the notebook. The notebook adds one cell per "
    "message: several calls in one answer go into that one cell, in order.",
    {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
)
NOTEBOOK_TOOLS = (LIST_VARIABLES, INSPECT_VARIABLE, RUN_PYTHON, CREATE_CELL)

MAX_CHARS = 4000
#: Images one run_python call may return: each costs up to ~3,000 tokens of context.
MAX_IMAGES = 4
TABLE_ROWS = 20
TABLE_COLUMNS = 12
MAX_VARIABLES = 100
_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80


def _truncate(text: str, limit: int = MAX_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters)"


def _shape(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return "shape " + " x ".join(str(n) for n in shape)
    with contextlib.suppress(Exception):
        if not isinstance(value, str | bytes):
            return f"len {len(value)}"
    return ""


def _is_user_variable(name: str, value: Any) -> bool:
    if name.startswith("_") or name in ("In", "Out", "exit", "quit", "get_ipython"):
        return False
    return not isinstance(value, types.ModuleType)


class NotebookNamespace:
    """The three tools, over one namespace (IPython's ``user_ns``)."""

    def __init__(self, namespace: dict[str, Any], shell: Any = None) -> None:
        self.namespace = namespace
        self.shell = shell  # IPython's: to format a result as a cell's would be, and to propose cells

    def list_variables(self) -> str:
        rows = []
        for name, value in list(self.namespace.items()):
            if not _is_user_variable(name, value):
                continue
            detail = _shape(value) or _short.repr(value)
            rows.append(f"{name}: {type(value).__name__} ({detail})")
        if not rows:
            return "No variables are defined yet."
        more = f"\n… and {len(rows) - MAX_VARIABLES} more" if len(rows) > MAX_VARIABLES else ""
        return "\n".join(rows[:MAX_VARIABLES]) + more

    def inspect_variable(self, name: str) -> str:
        if name not in self.namespace:
            raise KeyError(f"no variable named {name!r}; list_variables shows what exists")
        value = self.namespace[name]
        lines = [f"{name}: {type(value).__module__}.{type(value).__qualname__}"]
        if shape := _shape(value):
            lines.append(shape)
        columns = getattr(value, "dtypes", None)
        if columns is not None and hasattr(value, "head"):
            lines.append("columns:\n" + _truncate(str(columns), 1500))
            lines.append("first rows:\n" + _truncate(str(value.head(5)), 2000))
        else:
            lines.append(_truncate(repr(value), 2000))
        return _truncate("\n".join(lines))

    def run_python(self, code: str) -> RunOutput:
        """Run ``code`` as a cell would, capturing what it printed, displayed and left drawn.

        Displays (``plt.show()``, ``display(Image(...))``, ``display(df)``) are captured rather than
        shown, and figures the code left open are drawn and closed here: the images reach the cell
        through the tool result, which the turn shows, so each appears once. HTML (a table) is not
        part of a tool result the cell shows, so it is handed back to be shown in the cell.
        """
        from IPython.utils.capture import capture_output

        before = _open_figures()
        value: Any = None
        failed = False
        error = ""
        with capture_output() as captured:
            try:
                tree = ast.parse(code, "<claude>", "exec")
                last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
                assert last is None or isinstance(last, ast.Expr)
                exec(compile(tree, "<claude>", "exec"), self.namespace)
                if last is not None:
                    value = eval(compile(ast.Expression(last.value), "<claude>", "eval"), self.namespace)
            except Exception:
                failed = True
                error = traceback.format_exc(limit=3)
        bundles = [dict(output.data) for output in captured.outputs]
        left_open = [figure for number, figure in _open_figures().items() if number not in before]
        if value is not None and not any(figure is value for figure in left_open):
            bundles.append(self._formatted(value))
        pyplot = sys.modules.get("matplotlib.pyplot")
        for figure in left_open:
            bundles.append({"image/png": figure_png(figure), "text/plain": "a matplotlib figure"})
            if pyplot is not None:
                pyplot.close(figure)  # else the inline backend shows it again when the cell ends
        return _collect(captured.stdout + captured.stderr + error, bundles, failed)

    def _formatted(self, value: Any) -> dict[str, Any]:
        """The value's display bundle (as a cell's result would get), with a compact text table."""
        data: dict[str, Any] = {}
        if self.shell is not None:
            with contextlib.suppress(Exception):
                data = dict(self.shell.display_formatter.format(value)[0])
        data["text/plain"] = table_text(value) or data.get("text/plain") or repr(value)
        return data


@dataclass
class RunOutput:
    """What ``run_python`` produced: the text and images for the model, and HTML for the cell."""

    text: str
    failed: bool
    images: list[Image] = field(default_factory=list)
    #: Bundles to show in the cell (a DataFrame's HTML table, a widget): a tool result carries no HTML.
    shown: list[dict[str, Any]] = field(default_factory=list)

    def content(self) -> list[dict[str, Any]]:
        """The tool result: the text first (it names the images), then the images."""
        return [{"type": "text", "text": self.text}, *(image.block() for image in self.images)]


def _open_figures() -> dict[int | str, Any]:
    """matplotlib's open figures by number (none if pyplot was never imported: it is not imported here)."""
    if "matplotlib.pyplot" not in sys.modules:
        return {}
    from matplotlib._pylab_helpers import Gcf  # pyplot's registry; pyplot.figure(n) would make n current

    return {manager.num: manager.canvas.figure for manager in Gcf.get_all_fig_managers()}


def table_text(value: Any) -> str:
    """A DataFrame as a short text table (head and tail, with its dimensions); "" for anything else."""
    to_string = getattr(value, "to_string", None)
    if getattr(value, "ndim", None) != 2 or not callable(to_string):
        return ""
    try:
        return str(to_string(max_rows=TABLE_ROWS, max_cols=TABLE_COLUMNS, show_dimensions=True))
    except Exception:
        return ""


def _raw_image(data: Any) -> bytes:
    """A display's image as bytes: IPython hands over bytes or base64 text, depending on the source."""
    return data if isinstance(data, bytes) else base64.b64decode(str(data))


def _collect(printed: str, bundles: list[dict[str, Any]], failed: bool) -> RunOutput:
    """Sort the displays: images for the model (bounded, capped), rich output (and the images past
    the cap) for the cell, text for both."""
    parts = [printed.rstrip()] if printed.strip() else []
    result = RunOutput("", failed)
    for bundle in bundles:
        media_type = next((t for t in ("image/png", "image/jpeg") if t in bundle), None)
        if media_type is not None:
            try:
                raw = _raw_image(bundle[media_type])
                if len(result.images) >= MAX_IMAGES:
                    raise ImageError(f"at most {MAX_IMAGES} images per call")
                image = bounded(raw, f"image {len(result.images) + 1}")
            except ImageError as exc:
                # Not in the tool result, so the turn would not show it: the cell shows it from here.
                result.shown.append({media_type: base64.b64encode(raw).decode(), "text/plain": "an image"})
                parts.append(f"[an image was shown to the user but not attached: {exc}]")
                continue
            except ValueError:
                continue  # not base64: nothing to show or send
            result.images.append(image)
            described = bundle.get("text/plain", "displayed")
            parts.append(f"[image {len(result.images)} attached: {image.size}, {described}]")
        elif set(bundle) - {"text/plain"}:
            # HTML (a table), Markdown, a widget: the person sees it in the cell, the model its text.
            result.shown.append(bundle)
            kind = "an HTML table" if "<table" in str(bundle.get("text/html", "")) else ", ".join(sorted(bundle))
            parts.append(f"{bundle.get('text/plain', '')}\n[shown to the user as {kind}]".strip())
        elif "text/plain" in bundle:
            parts.append(str(bundle["text/plain"]))
    result.text = _truncate("\n".join(parts) or "(no output)")
    return result
