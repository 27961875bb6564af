"""Claude Code's ``AskUserQuestion``: its questions as choices the person answers in the cell.

The CLI asks for permission to run the tool, with ``{"questions": [{"question", "header",
"options": [{"label", "description", "preview"?}], "multiSelect"}]}``. Allowing it unchanged tells
the model that the user did not answer; the answers go back as ``updated_input`` with an
``"answers"`` map from each question's text to the chosen label (several joined by ", "), or to
the person's own words. Answering is never an "Always allow": each question gets its own answer.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as w

from .._html import strip_controls
from ..invisible import show_invisible
from ..session import PermissionRequest
from ..turn import Allow, Deny
from ._base import Panel, code_span, outcome_markdown

__all__ = ["QuestionPanel", "questions_of"]

TOOL = "AskUserQuestion"

_OTHER = "Other"
_MUTED = "font-size: 90%; opacity: 0.8"


@dataclass(frozen=True)
class Question:
    text: str
    header: str
    options: tuple[tuple[str, str, str], ...]  # (label, description, preview)
    multi: bool


def questions_of(tool_input: dict[str, Any]) -> list[Question]:
    """The questions in the tool's input; anything malformed is skipped, never fatal."""
    found = []
    for raw in tool_input.get("questions") or ():
        if not isinstance(raw, dict) or not isinstance(raw.get("question"), str):
            continue
        options = tuple(
            (str(o.get("label", "")), str(o.get("description", "")), str(o.get("preview", "") or ""))
            for o in raw.get("options") or ()
            if isinstance(o, dict) and o.get("label")
        )
        found.append(Question(raw["question"], str(raw.get("header", "")), options, bool(raw.get("multiSelect"))))
    return found


@dataclass
class _Record:
    """The questions and, once given, the answers: what the saved notebook shows."""

    questions: list[Question]
    answers: dict[str, str] = field(default_factory=dict)

    def bundle(self, outcome: str) -> dict[str, str]:
        plain = ["Claude asked:"]
        markdown = ["**Claude asked:**", ""]
        for question in self.questions:
            text = show_invisible(strip_controls(question.text))
            answer = self.answers.get(question.text)
            plain.append(f"- {text}" + (f" → {answer}" if answer is not None else ""))
            shown = f" → {code_span(show_invisible(answer))}" if answer is not None else ""
            markdown.append(f"- {code_span(text)}{shown}")
        plain.append(f"- {outcome}")
        markdown += ["", outcome_markdown(outcome)]
        return {"text/plain": "\n".join(plain), "text/markdown": "\n".join(markdown)}


def _choice(label: str, description: str) -> str:
    """A choice as it reads next to its button: the label, then what it means."""
    shown = f"{label} — {description}" if description else label
    return show_invisible(shown)


def _previews(options: tuple[tuple[str, str, str], ...]) -> str:
    """What the options that come with a preview (a snippet, a mock-up) would look like."""
    return "".join(
        f"<div style='margin: 4px 0 0 0.5em'><b>{html.escape(label)}</b> <span style='{_MUTED}'>preview:</span>"
        "<pre style='white-space: pre-wrap; margin: 2px 0 4px 0; padding: 4px; "
        f"border: 1px solid var(--jp-border-color2, #ddd)'>{html.escape(preview)}</pre></div>"
        for label, _, preview in options
        if preview
    )


class _Asked:
    """One question's widgets, and the answer they hold."""

    def __init__(self, question: Question) -> None:
        self.question = question
        self.other = w.Text(placeholder="Other: your own answer", layout=w.Layout(width="100%"))
        # Several answers: a checkbox each; one answer: radio buttons, with "Other" for one's own words.
        self.boxes: dict[str, w.Checkbox] = {}
        self.radio: w.RadioButtons | None = None
        if question.multi:
            self.boxes = {
                label: w.Checkbox(
                    value=False, description=_choice(label, about), indent=False, layout=w.Layout(width="100%")
                )
                for label, about, _ in question.options
            }
        else:
            choices = [(_choice(label, about), label) for label, about, _ in question.options]
            self.radio = w.RadioButtons(
                options=[*choices, ("Other (write it below)", _OTHER)], value=None, layout=w.Layout(width="100%")
            )
        head = f"<b>{html.escape(question.header)}</b> " if question.header else ""
        buttons: list[w.Widget] = [*self.boxes.values()] if self.radio is None else [self.radio]
        self.widgets: list[w.Widget] = [
            w.HTML(f"<div style='margin-top: 6px'>{head}{html.escape(show_invisible(question.text))}</div>"),
            *buttons,
            w.HTML(_previews(question.options)),
            self.other,
        ]
        self.controls: list[w.Widget] = [*buttons, self.other]

    def answer(self) -> str:
        """The chosen label(s), or the person's own words ("" if nothing was chosen)."""
        own = self.other.value.strip()
        if self.radio is None:
            chosen = [label for label, box in self.boxes.items() if box.value]
            return ", ".join([*chosen, own] if own else chosen)
        value = self.radio.value
        return own if value in (None, _OTHER) else str(value)


class QuestionPanel(Panel):
    """Each question with its choices (one, or several), an "Other" answer, and Submit."""

    def __init__(self, request: PermissionRequest) -> None:
        questions = questions_of(request.input)
        asked = [_Asked(question) for question in questions]
        submit = w.Button(description="Submit", button_style="primary", icon="paper-plane")
        skip = w.Button(description="Don't answer", icon="times")
        self._problem = w.HTML()
        record = _Record(questions)
        super().__init__(
            "Claude asks you",
            [*(widget for one in asked for widget in one.widgets), self._problem, w.HBox([submit, skip])],
            record,
        )
        self._controls = [submit, skip, *(control for one in asked for control in one.controls)]

        def submitted(_: w.Button) -> None:
            answers = {one.question.text: one.answer() for one in asked}
            missing = [one.question.header or one.question.text for one in asked if not answers[one.question.text]]
            if missing:
                self._problem.value = (
                    "<span style='color: var(--jp-error-color1)'>Choose or write an answer for: "
                    + html.escape(", ".join(missing))
                    + "</span>"
                )
                return
            record.answers = answers
            self._settle(Allow({**request.input, "answers": answers}), "✔ answered", "answered")

        def skipped(_: w.Button) -> None:
            self._settle(Deny("The user chose not to answer these questions."), "✘ not answered", "not answered")

        submit.on_click(submitted)
        skip.on_click(skipped)
