"""The undo button (widgets.UndoPanel), clicked in-process: one click, one undo."""

from __future__ import annotations

import asyncio
from typing import Any

from claude_kernel.conversation import UndoNeedsConfirmation
from claude_kernel.widgets import UndoPanel


class _Sink:
    def publish(
        self, bundle: dict[str, Any], display_id: str, *, new: bool, metadata: dict[str, Any] | None = None
    ) -> None:
        pass


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_double_click_undoes_once() -> None:
    calls: list[bool] = []

    async def main() -> None:
        release = asyncio.Event()

        async def undo(confirmed: bool) -> str:
            calls.append(confirmed)
            await release.wait()
            return "restored as before the cell: a.txt"

        panel = UndoPanel("Files this cell changed", ("a.txt",), undo)
        panel.show(_Sink(), "not undone")
        panel._button.click()
        await _settle()
        assert panel._button.disabled  # while the undo runs
        panel._button.click()  # the second click of a double click
        await _settle()
        release.set()
        assert await panel.wait() is True

    asyncio.run(main())
    assert calls == [False]


def test_the_button_comes_back_for_the_explicit_confirmation() -> None:
    calls: list[bool] = []

    async def main() -> None:
        async def undo(confirmed: bool) -> str:
            calls.append(confirmed)
            if not confirmed:
                raise UndoNeedsConfirmation("Nothing was changed yet: a.txt changed since the cell ran.")
            return "restored as before the cell: a.txt"

        panel = UndoPanel("Files this cell changed", ("a.txt",), undo)
        panel.show(_Sink(), "not undone")
        panel._button.click()
        await _settle()
        assert not panel._button.disabled and panel._button.description == "Undo anyway"
        panel._button.click()
        assert await panel.wait() is True

    asyncio.run(main())
    assert calls == [False, True]
