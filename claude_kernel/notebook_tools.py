"""Host tools over the live Python namespace of a notebook: what ``%%claude`` adds over the kernel.

Claude can list the user's variables, read a summary of one, and (only after the user allows it in
the cell) run Python in that namespace. Every result stays small: values are summarised (type,
shape, the head of a table, a truncated repr), never dumped, because tool results cost context.
"""

from __future__ import annotations

import ast
import contextlib
import io
import reprlib
import traceback
import types
from typing import Any

from .session import HostTool

__all__ = ["INSPECT_VARIABLE", "LIST_VARIABLES", "NOTEBOOK_TOOLS", "RUN_PYTHON", "NotebookNamespace"]

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
    "printed output and the value of its last expression. Changes to variables persist.",
    {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
)
NOTEBOOK_TOOLS = (LIST_VARIABLES, INSPECT_VARIABLE, RUN_PYTHON)

MAX_CHARS = 4000
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

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace

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

    def run_python(self, code: str) -> tuple[str, bool]:
        """Run ``code``; its printed output plus the last expression's repr, and whether it failed."""
        output = io.StringIO()
        failed = False
        try:
            tree = ast.parse(code, "<claude>", "exec")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            assert last is None or isinstance(last, ast.Expr)
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                exec(compile(tree, "<claude>", "exec"), self.namespace)
                if last is not None:
                    value = eval(compile(ast.Expression(last.value), "<claude>", "eval"), self.namespace)
                    if value is not None:
                        print(repr(value))
        except Exception:
            failed = True
            output.write(traceback.format_exc(limit=3))
        return _truncate(output.getvalue() or "(no output)"), failed
