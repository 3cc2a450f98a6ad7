"""The tail of a run's ``log.txt``: an incremental reader and the widget that shows it."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Log


class TextTail:
    """Reads whole new lines of a growing text file, remembering the byte offset.

    The first read starts at most ``initial_bytes`` from the end (a long log is not read
    whole); a partial last line waits for the next call; a file that shrank (replaced) is
    read again from the start.
    """

    def __init__(self, path: str | Path, initial_bytes: int = 64 * 1024) -> None:
        self.path = Path(path)
        self.offset: int | None = None
        self.initial_bytes = initial_bytes

    def read_new(self) -> list[str]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        skip_partial = False
        if self.offset is None:
            self.offset = max(0, size - self.initial_bytes)
            skip_partial = self.offset > 0
        elif size < self.offset:
            self.offset = 0
        if size == self.offset:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(size - self.offset)
        except OSError:
            return []
        start = 0
        if skip_partial:
            start = data.find(b"\n") + 1
            if start == 0:
                return []
        end = data.rfind(b"\n")
        if end < start:
            self.offset += start
            return []
        self.offset += end + 1
        return data[start:end].decode("utf-8", errors="replace").split("\n")


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
