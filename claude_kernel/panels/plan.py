"""Claude Code's ``ExitPlanMode``: the plan, rendered, with the choices Claude Code itself offers.

In plan mode the model writes its plan to ``~/.claude/plans/<slug>.md``; the CLI then asks to run
``ExitPlanMode`` with ``plan`` (that file's text) and ``planFilePath`` in the input. Approving
leaves plan mode, either accepting edits from then on or asking about each; keeping on planning
denies the call, and the person's feedback is what the model is told.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as w

from .._html import markdown_html, strip_controls
from ..session import PermissionRequest
from ..turn import Allow, Deny
from ._base import Panel, code_block, outcome_markdown

__all__ = ["PlanPanel"]

TOOL = "ExitPlanMode"


def _button_layout() -> w.Layout:
    """As wide as its words: a long label would otherwise be cut short."""
    return w.Layout(width="auto", flex="0 0 auto")


@dataclass(frozen=True)
class _Record:
    plan: str

    def bundle(self, outcome: str) -> dict[str, str]:
        plan = strip_controls(self.plan).strip("\n") or "(no plan was written)"
        return {
            "text/plain": f"Claude's plan:\n{plan}\n- {outcome}",
            "text/markdown": f"**Claude's plan:**\n\n{code_block(plan)}\n\n{outcome_markdown(outcome)}",
        }


class PlanPanel(Panel):
    """The plan as Markdown; approve (accepting edits, or reviewing each), or keep planning."""

    def __init__(self, request: PermissionRequest) -> None:
        plan = request.input.get("plan")
        plan = plan if isinstance(plan, str) else ""
        if plan.strip():
            body = w.HTML(markdown_html(plan), layout=w.Layout(width="100%"))
        else:
            body = w.HTML("<i>Claude wrote no plan; it asks to stop planning and start work.</i>")
        body.add_class("claude-plan")
        accept = w.Button(
            description="Approve, auto-accept edits",
            button_style="success",
            icon="check",
            layout=_button_layout(),
            tooltip="Leave plan mode; file edits run without asking (permission mode acceptEdits)",
        )
        review = w.Button(
            description="Approve, review each edit",
            icon="check",
            layout=_button_layout(),
            tooltip="Leave plan mode; every edit asks first (permission mode default)",
        )
        keep = w.Button(description="Keep planning", icon="pencil", layout=_button_layout())
        feedback = w.Text(placeholder="What to change in the plan (sent to Claude)", layout=w.Layout(width="100%"))
        choices = w.HBox([accept, review, keep], layout=w.Layout(flex_flow="row wrap"))
        super().__init__("Claude's plan", [body, choices, feedback], _Record(plan))
        self._controls = [accept, review, keep, feedback]

        def approved(mode: str, words: str) -> None:
            self._settle(Allow(mode=mode), f"✔ {words}", words)

        def kept() -> None:
            said = feedback.value.strip()
            message = f"Keep planning. The user's feedback on the plan: {said}" if said else "Keep planning."
            outcome = f"keep planning: {said}" if said else "keep planning"
            self._settle(Deny(message), "✎ " + outcome, outcome)

        accept.on_click(lambda _: approved("acceptEdits", "approved; edits are accepted without asking"))
        review.on_click(lambda _: approved("default", "approved; each edit asks first"))
        keep.on_click(lambda _: kept())
