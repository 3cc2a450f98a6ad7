"""System panel: the machine's CPU and RAM, the run folder's free disk, the engine process's
own CPU and RSS (the host fields of ``system.jsonl``, :class:`engine.schema.SystemRow`), and
sparklines of the run's history: CPU, RAM, and each GPU's temperature and VRAM.

:class:`SystemHistory` keeps at most about :data:`MAX_POINTS` samples of a run of any length
(every other one is dropped when it fills up, so the history stays spread over the run);
:func:`initial_rows` parses about that many lines spread over a long system.jsonl. The panel
lays itself out for its size: two compact lines in a small box (80x24), the sparklines and
one history line per GPU when there is room (an aggregate line when there are too many).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text
from textual.widget import Widget

from engine.runs import parse_rows
from engine.schema import SYSTEM_HOST_KEYS

HOST_KEYS = SYSTEM_HOST_KEYS  # the host fields of a system.jsonl row

MAX_POINTS = 512
BLOCKS = "▁▂▃▄▅▆▇█"


def initial_rows(chunk: bytes | None, keep: int = MAX_POINTS) -> list[dict[str, Any]]:
    """The rows of a system.jsonl's first read (``chunk``: its whole lines): about ``keep``
    lines at even intervals and the last one, so a day-long run's file opens quickly."""
    if not chunk:
        return []
    lines = chunk.split(b"\n")
    if len(lines) > keep:
        step = len(lines) / keep
        picked = [lines[int(i * step)] for i in range(keep)]
        picked.append(lines[-1])
        lines = picked
    return parse_rows(lines)[0]


def _num(v: Any) -> float | None:
    return float(v) if type(v) in (int, float) else None


class SystemHistory:
    """Columns of the samples read so far (None where a sample lacks a figure)."""

    def __init__(self) -> None:
        self.t: list[float] = []
        self.cpu: list[float | None] = []
        self.ram: list[float | None] = []
        self.rss: list[float | None] = []
        self.temp: dict[int, list[float | None]] = {}
        self.vram: dict[int, list[float | None]] = {}
        self.vram_total: dict[int, float] = {}
        self.last: dict[str, Any] | None = None  # the latest sample
        self.last_host: dict[str, Any] | None = None  # the latest sample with host figures
        self.rows = 0
        self.version = 0

    @property
    def host(self) -> bool:
        return self.last_host is not None

    def add_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        n = 0
        for r in rows:
            t = _num(r.get("t"))
            if t is None:
                continue
            n += 1
            i = len(self.t)
            self.t.append(t)
            self.cpu.append(_num(r.get("cpu_percent")))
            self.ram.append(_num(r.get("ram_used_mb")))
            self.rss.append(_num(r.get("proc_rss_mb")))
            for g in r.get("gpus") or []:
                if not isinstance(g, dict) or type(g.get("index")) is not int:
                    continue
                k = g["index"]
                for store, key in ((self.temp, "temp_c"), (self.vram, "mem_used_mb")):
                    col = store.setdefault(k, [])
                    col.extend([None] * (i - len(col)))
                    col.append(_num(g.get(key)))
                if _num(g.get("mem_total_mb")):
                    self.vram_total[k] = float(g["mem_total_mb"])
            self.last = r
            if any(r.get(k) is not None for k in HOST_KEYS):
                self.last_host = r
            if len(self.t) > 2 * MAX_POINTS:
                self._halve()
        if n:
            self.rows += n
            self.version += 1

    def _halve(self) -> None:
        self.t = self.t[::2]
        self.cpu, self.ram, self.rss = self.cpu[::2], self.ram[::2], self.rss[::2]
        for store in (self.temp, self.vram):
            for k in store:
                store[k] = store[k][::2]

    def series(self, store: dict[int, list[float | None]], k: int) -> list[float | None]:
        col = store.get(k, [])
        return col + [None] * (len(self.t) - len(col))


def sparkline(
    values: Sequence[float | None], width: int, lo: float | None = None, hi: float | None = None
) -> str:
    """``values`` over the whole run in ``width`` cells (the mean of each bucket), scaled
    between ``lo`` and ``hi`` (default: their own range); a gap where a bucket has none."""
    vals = list(values)
    if width <= 0 or not any(v is not None for v in vals):
        return ""
    n = len(vals)
    cells: list[float | None] = []
    for c in range(min(width, n)):
        a, b = c * n // min(width, n), (c + 1) * n // min(width, n)
        got = [v for v in vals[a : max(b, a + 1)] if v is not None]
        cells.append(sum(got) / len(got) if got else None)
    real = [v for v in cells if v is not None]
    lo = min(real) if lo is None else lo
    hi = max(real) if hi is None else hi
    span = hi - lo
    out = []
    for v in cells:
        if v is None:
            out.append(" ")
        else:
            f = 0.0 if span <= 0 else min(max((v - lo) / span, 0.0), 1.0)
            out.append(BLOCKS[round(f * (len(BLOCKS) - 1))])
    return "".join(out)


def _gb(mb: float | None, digits: int = 0) -> str:
    return "-" if mb is None else f"{mb / 1024:.{digits}f}"


def _pct(v: Any) -> str:
    return "-" if v is None else f"{float(v):.0f}%"


class SystemPanel(Widget):
    """The host figures and the run's history; ``show`` hands it a :class:`SystemHistory`."""

    DEFAULT_CSS = """
    SystemPanel { height: auto; padding: 0 1; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history = SystemHistory()
        self.reason = "no system samples (system.jsonl is empty)"
        self._shown = -1

    def show(self, history: SystemHistory) -> None:
        self.history = history
        if history.version != self._shown:
            self._shown = history.version
            self.refresh(layout=True)

    def lines_wanted(self) -> int:
        """Lines for everything: 4 host lines, the GPU history heading and one per GPU."""
        h = self.history
        return 4 + (1 + len(h.temp) if h.temp else 0)

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return self.lines_wanted()

    def render(self) -> Text:
        width = max(self.size.width, 10)  # the content width (inside the padding)
        height = max(self.size.height, 1)
        h = self.history
        if not h.rows:
            return Text(self.reason, style="dim")
        if height <= 3:
            return self._compact(width, height)
        return self._full(width, height)

    def _host_figures(self) -> dict[str, Any]:
        return dict(self.history.last_host or {})

    def _compact(self, width: int, height: int) -> Text:
        r = self._host_figures()
        lines: list[Text] = []
        if not r:
            lines.append(Text("host: not recorded", style="dim"))
        else:
            total = r.get("ram_total_mb")
            lines.append(
                Text.assemble(
                    ("CPU ", "bold"),
                    _pct(r.get("cpu_percent")),
                    (" RAM ", "bold"),
                    f"{_gb(r.get('ram_used_mb'))}/{_gb(total)}G",
                )
            )
            eng = Text.assemble(
                ("eng ", "bold"),
                f"{_pct(r.get('proc_cpu_percent'))} {_gb(r.get('proc_rss_mb'), 1)}G",
            )
            disk = r.get("disk_free_gb")
            if disk is not None:  # as much of it as fits
                for label in (" disk ", " d"):
                    if eng.cell_len + len(label) + len(f"{disk:.0f}G") <= width:
                        eng.append(label, style="bold")
                        eng.append(f"{disk:.0f}G")
                        break
            lines.append(eng)
        if self.history.temp and len(lines) < height:
            lines.append(self._gpu_aggregate(width))
        for line in lines:
            line.truncate(width, overflow="crop")
        return Text("\n").join(lines[:height])

    def _full(self, width: int, height: int) -> Text:
        h = self.history
        r = self._host_figures()
        lines: list[Text] = []
        if r:
            total = r.get("ram_total_mb")
            eng = f"{_pct(r.get('proc_cpu_percent'))} {_gb(r.get('proc_rss_mb'), 1)}G"
            for label, figure, vals, lo, hi in (
                ("CPU ", _pct(r.get("cpu_percent")), h.cpu, 0.0, 100.0),
                ("RAM ", f"{_gb(r.get('ram_used_mb'))}/{_gb(total)}G", h.ram, 0.0, total),
                ("eng ", eng, h.rss, 0.0, None),
            ):
                line = Text(label, style="bold") + Text(figure)
                room = width - line.cell_len - 1
                if room >= 4:
                    line.append(" " + sparkline(vals, room, lo, hi), style="cyan")
                lines.append(line)
            disk = r.get("disk_free_gb")
            lines.append(
                Text("disk ", style="bold")
                + Text("-" if disk is None else f"{disk:.1f}G free (runs)")
            )
        else:
            lines.append(Text("host: not recorded by this run", style="dim"))
        if h.temp:
            room = height - len(lines) - 1
            span = h.t[-1] - h.t[0] if len(h.t) > 1 else 0.0
            lines.append(Text(f"GPU history ({_span(span)}): temp · VRAM", style="bold dim"))
            if len(h.temp) <= room:
                half = max((width - 12) // 2, 3)
                for k in sorted(h.temp):
                    temps = h.series(h.temp, k)
                    vram = h.series(h.vram, k)
                    last_t = next((v for v in reversed(temps) if v is not None), None)
                    last_v = next((v for v in reversed(vram) if v is not None), None)
                    line = Text(f"{k} ", style="bold")
                    line.append(sparkline(temps, half, None, None), style="yellow")
                    line.append(f"{'-' if last_t is None else f'{last_t:.0f}'}°".rjust(4))
                    line.append(" ")
                    line.append(sparkline(vram, half, 0.0, h.vram_total.get(k)), style="magenta")
                    line.append(f" {_gb(last_v)}G")
                    lines.append(line)
            elif room >= 1:
                lines.append(self._gpu_aggregate(width))
        for line in lines:
            line.truncate(width, overflow="crop")
        return Text("\n").join(lines[:height])

    def _gpu_aggregate(self, width: int) -> Text:
        """One line for every GPU: the hottest one's temperature, the VRAM of all."""
        h = self.history
        n = len(h.t)
        temps: list[float | None] = []
        vram: list[float | None] = []
        cols_t = [h.series(h.temp, k) for k in h.temp]
        cols_v = [h.series(h.vram, k) for k in h.vram]
        for i in range(n):
            ts = [c[i] for c in cols_t if c[i] is not None]
            vs = [c[i] for c in cols_v if c[i] is not None]
            temps.append(max(ts) if ts else None)
            vram.append(sum(vs) if vs else None)
        half = max((width - 14) // 2, 3)
        line = Text("T ", style="bold")
        line.append(sparkline(temps, half), style="yellow")
        last = next((v for v in reversed(temps) if v is not None), None)
        line.append(f" {'-' if last is None else f'{last:.0f}'}°")
        line.append(" V ", style="bold")
        line.append(sparkline(vram, half, 0.0, sum(h.vram_total.values()) or None), style="magenta")
        return line


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
