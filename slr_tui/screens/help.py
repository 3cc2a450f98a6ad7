"""``?``: every key of the screen below, with what it does, grouped by where it is bound
(the focused widget, the screen, everywhere). Built from the bindings Textual holds for
that screen when ``?`` is pressed (its BINDINGS and those of the focused widget and the
app, hidden ones included), so it never goes stale; keys the screen turned off
(``--read-only``) are left out, as they are from its footer."""

from __future__ import annotations

import re

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

# the keys Textual gives every screen (tab, shift+tab, ctrl+c)
_BASE_ACTIONS = frozenset(b.action for b in Screen.BINDINGS if isinstance(b, Binding))


def binding_rows(screen: Screen) -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(group, [(keys, description), ...]), ...]`` for ``screen``: the screen's keys
    first, then the focused widget's (and its containers'), then the app's; one line per
    action (its keys joined), in the order they are declared."""
    app = screen.app
    groups: dict[int, tuple[str, dict[str, tuple[list[str], str]]]] = {}
    for active in screen.active_bindings.values():
        node = active.node
        b: Binding = active.binding
        if b.system or b.action in ("help", "app.help"):
            continue
        if node is app or (node is screen and b.action in _BASE_ACTIONS):
            title = "everywhere"  # the app's keys and those every screen has (tab...)
        elif node is screen:
            title = "this screen"
        else:  # RunsTable -> "runs table"
            title = re.sub(r"(?<!^)(?=[A-Z])", " ", type(node).__name__).lower()
        _, lines = groups.setdefault(id(app) if title == "everywhere" else id(node), (title, {}))
        desc = b.description or b.action.replace("_", " ")
        keys, _ = lines.setdefault(b.action, ([], desc))
        shown = app.get_key_display(b)
        if shown not in keys:
            keys.append(shown)
    order = {"this screen": 0, "everywhere": 2}
    out = [
        (title, [(" ".join(k), d) for k, d in lines.values()])
        for title, lines in sorted(groups.values(), key=lambda g: order.get(g[0], 1))
    ]
    return [g for g in out if g[1]]


class HelpScreen(ModalScreen[None]):
    """The keys of ``target`` (the screen ``?`` was pressed on); any of ``escape``, ``q``
    or ``?`` closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; background: $background 60%; }
    #help-box {
        width: 64; max-width: 95%; height: auto; max-height: 90%; padding: 0 2;
        border: thick $primary 60%; background: $surface;
    }
    #help-keys { height: auto; }
    """

    BINDINGS = [
        Binding("escape", "close", "close"),
        Binding("q", "close", "close", show=False),
        # a modal screen keeps the app's keys away: ? closes it here
        Binding("question_mark", "close", "close", show=False),
    ]

    def __init__(self, target: Screen) -> None:
        super().__init__()
        self.target = target
        self.groups = binding_rows(target)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = f"keys: {self.target_name()}"
            box.border_subtitle = "escape closes"
            yield Static(self.render_keys(), id="help-keys")

    def target_name(self) -> str:
        name = type(self.target).__name__.removesuffix("Screen")
        return {"Runs": "runs", "LiveRun": "live run"}.get(name, name.lower() or "screen")

    def render_keys(self) -> Text:
        width = max((len(k) for _, rows in self.groups for k, _ in rows), default=4)
        text = Text()
        for i, (title, rows) in enumerate(self.groups):
            if i:
                text.append("\n")
            text.append(title + "\n", style="bold")
            for keys, desc in rows:
                text.append(f"  {keys:<{width}}  ", style="bold cyan")
                text.append(desc + "\n")
        return text

    def action_close(self) -> None:
        self.dismiss(None)
