"""The live screen's metric picker: every numeric key of a run's metrics.jsonl, to choose what
one plot shows. ``enter`` shows the highlighted key alone; ``space`` checks or unchecks keys
(then ``enter`` shows the checked ones); ``escape`` leaves the plot as it was. It dismisses
with the chosen keys, or None."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection


class MetricPickerScreen(ModalScreen[list[str] | None]):
    BINDINGS = [
        Binding("enter", "apply", "show", priority=True),
        Binding("escape", "cancel", "cancel"),
    ]

    DEFAULT_CSS = """
    MetricPickerScreen { align: center middle; }
    #picker-box {
        width: 48; max-width: 100%; height: auto; max-height: 90%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    #picker-list { height: auto; max-height: 20; }
    #picker-help { color: $text-muted; }
    """

    def __init__(
        self,
        keys: list[str],
        chosen: list[str],
        title: str = "plot",
        where: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.keys = list(keys)
        self.chosen = [k for k in chosen if k in self.keys]
        self.title_text = title
        self.where = where or {}  # key -> "steps" / "epochs"
        self.toggled = False  # space was pressed: enter applies the checked keys

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Static(Text(f"metrics of {self.title_text}", style="bold"), id="picker-title")
            yield SelectionList[str](
                *[
                    Selection(
                        f"{k}  ({self.where[k]})" if k in self.where else k, k, k in self.chosen
                    )
                    for k in self.keys
                ],
                id="picker-list",
            )
            yield Static(
                "enter: show the highlighted key · space: check more · esc: cancel",
                id="picker-help",
            )

    def on_mount(self) -> None:
        sel = self.query_one(SelectionList)
        sel.focus()
        if self.chosen:
            sel.highlighted = self.keys.index(self.chosen[0])

    def on_selection_list_selection_toggled(self, _event: SelectionList.SelectionToggled) -> None:
        self.toggled = True

    def action_apply(self) -> None:
        sel = self.query_one(SelectionList)
        if self.toggled:
            picked = [k for k in self.keys if k in sel.selected]
            self.dismiss(picked or None)
            return
        i = sel.highlighted
        self.dismiss([self.keys[i]] if i is not None and self.keys else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
