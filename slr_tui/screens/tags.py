"""Edit a run's tags and note (RUN/notes.json) over the runs screen: two inputs, ``enter``
saves, ``escape`` cancels. What is typed is checked here (a bad tag is one line in the
box); the runs screen writes it (:func:`engine.runs.update_notes`)."""

from __future__ import annotations

import re

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from engine import runs

_SPLIT = re.compile(r"[\s,]+")


def parse_tags(text: str) -> list[str]:
    """Tags typed as words (spaces or commas between them; a leading # or + is dropped),
    each checked (RunError, one line), without repeats."""
    words = [w.lstrip("#+") for w in _SPLIT.split(text.strip()) if w.lstrip("#+")]
    return list(dict.fromkeys(runs.check_tag(w) for w in words))


class TagsScreen(ModalScreen[tuple[list[str], str] | None]):
    """Dismissed with ``(tags, note)`` on save, None on cancel."""

    DEFAULT_CSS = """
    TagsScreen { align: center middle; background: $background 60%; }
    #tags-box {
        width: 72; max-width: 95%; height: auto; padding: 1 2;
        border: thick $primary 60%; background: $surface;
    }
    #tags-title { text-style: bold; height: auto; margin: 0 0 1 0; }
    .tags-label { color: $text-muted; height: 1; }
    #tags-tags, #tags-note { margin: 0 0 1 0; }
    #tags-error { color: $error; height: auto; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "cancel"),
        Binding("ctrl+s", "save", "save"),
    ]

    def __init__(self, run_id: str, tags: list[str], note: str) -> None:
        super().__init__()
        self.run_id, self.tags, self.note = run_id, list(tags), note

    def compose(self) -> ComposeResult:
        with Vertical(id="tags-box"):
            yield Static(f"Tags and note of {self.run_id}", id="tags-title")
            yield Static("tags (words: baseline ablation-3)", classes="tags-label")
            yield Input(" ".join(self.tags), id="tags-tags", compact=True, select_on_focus=False)
            yield Static("note", classes="tags-label")
            yield Input(self.note, id="tags-note", compact=True, select_on_focus=False)
            yield Static("enter: save   tab: next field   escape: cancel", classes="note")
            yield Static("", id="tags-error")

    def on_mount(self) -> None:
        self.query_one("#tags-tags", Input).focus()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        try:
            tags = parse_tags(self.query_one("#tags-tags", Input).value)
        except runs.RunError as exc:
            self.query_one("#tags-error", Static).update(str(exc))
            return
        note = self.query_one("#tags-note", Input).value.strip()
        if len(note) > runs.MAX_NOTE_CHARS:
            self.query_one("#tags-error", Static).update(
                f"the note is {len(note)} characters: {runs.MAX_NOTE_CHARS} at most"
            )
            return
        self.dismiss((tags, note))

    def action_cancel(self) -> None:
        self.dismiss(None)
