"""The widget that shows the tail of a run's ``log.txt`` (read by
:class:`engine.runs.TextTail`)."""

from __future__ import annotations

from textual.widgets import Log


class LogTail(Log):
    """A Log widget that keeps the last ``max_lines`` lines and follows the end."""

    DEFAULT_CSS = """
    LogTail { height: 1fr; }
    """

    def __init__(self, max_lines: int = 1000, **kwargs) -> None:
        super().__init__(max_lines=max_lines, auto_scroll=True, **kwargs)
        self.lines_seen = 0

    def add_lines(self, lines: list[str]) -> None:
        if lines:
            self.lines_seen += len(lines)
            self.write_lines(lines)
