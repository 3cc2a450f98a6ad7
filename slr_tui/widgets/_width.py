"""A Static that draws its text for the width it has, and again when that width changes."""

from __future__ import annotations

from textual.events import Resize
from textual.widgets import Static


class WidthDrawn(Static):
    """Subclasses implement :meth:`_draw` (drawing for :meth:`_width` columns) and call it
    when their data changes; a resize to another width draws again."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("", id=id)
        self._drawn_for = -1

    def _width(self) -> int:
        """The columns to draw for: the content region once laid out, else the parent's
        (less a border), else 78."""
        w = self.content_region.width if self.size.width else 0
        if not w and self.parent is not None:
            w = self.parent.size.width - 2
        return w if w > 0 else 78

    def _draw(self) -> None:
        raise NotImplementedError

    def redraw(self) -> None:
        self._drawn_for = self._width()
        self._draw()

    def on_resize(self, event: Resize) -> None:
        if self._width() != self._drawn_for:
            self.redraw()
