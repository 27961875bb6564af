"""Panels for the tools Claude Code uses to talk to its user, one module per kind.

:func:`panel_for` picks the panel for a permission request by tool name; every other tool gets the
generic approval panel (``widgets.PermissionPanel``).
"""

from __future__ import annotations

from ..session import PermissionRequest
from . import plan, question
from ._base import Panel

__all__ = ["panel_for"]


def panel_for(request: PermissionRequest) -> Panel | None:
    """The panel of its own for ``request``'s tool, or None for the generic approval."""
    if request.tool_name == question.TOOL:
        return question.QuestionPanel(request)
    if request.tool_name == plan.TOOL:
        return plan.PlanPanel(request)
    return None
