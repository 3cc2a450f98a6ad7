"""GPU panel: temperature (warning colour from a limit), VRAM bar, utilisation, power.

Fed either a live NVML reading (:func:`engine.telemetry.read_gpus_now`, when the run is on
this machine) or the last sample of the run's ``system.jsonl``; without a GPU it says so.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget


def _bar(frac: float, width: int) -> Text:
    width = max(width, 3)
    frac = min(max(frac, 0.0), 1.0)
    full = round(frac * width)
    style = "green" if frac < 0.75 else "yellow" if frac < 0.92 else "red"
    return Text("█" * full, style=style) + Text("░" * (width - full), style="dim")


def _num(v: Any, unit: str = "", digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{float(v):.{digits}f}{unit}"


class GpuPanel(Widget):
    """One block per GPU; ``source`` says where the figures come from."""

    DEFAULT_CSS = """
    GpuPanel { height: 1fr; padding: 0 1; }
    """

    def __init__(self, warn_c: int = 80, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.warn_c = warn_c
        self.gpus: list[dict[str, Any]] = []
        self.reason: str | None = "waiting for a GPU sample..."
        self.source = ""

    def show(self, gpus: list[dict[str, Any]] | None, reason: str | None, source: str) -> None:
        """Show a reading (``gpus``), or ``reason`` when there is none."""
        gpus = list(gpus or [])
        if (gpus, reason, source) == (self.gpus, self.reason, self.source):
            return
        self.gpus, self.reason, self.source = gpus, reason, source
        self.refresh()

    def warning(self) -> bool:
        return any((g.get("temp_c") or 0) >= self.warn_c for g in self.gpus)

    def hot(self) -> list[dict[str, Any]]:
        """The GPUs at or above the warning temperature, hottest first."""
        hot = [g for g in self.gpus if (g.get("temp_c") or 0) >= self.warn_c]
        return sorted(hot, key=lambda g: -(g.get("temp_c") or 0))

    def render(self) -> Text:
        width = max(self.size.width - 2, 12)
        out = Text()
        if not self.gpus:
            out.append("no GPU\n", style="bold")
            out.append(self.reason or "no GPU samples", style="dim")
            return out
        height = self.size.height or 24
        # a block is 5 lines (plus a blank between blocks) and the source line
        if len(self.gpus) * 6 - 1 + bool(self.source) > height:
            return self._compact(max(self.size.width, 12), height)
        for i, g in enumerate(self.gpus):
            if i:
                out.append("\n")
            name = str(g.get("name") or "GPU").replace("NVIDIA ", "")
            out.append(f"GPU {g.get('index', i)} ", style="bold")
            out.append(name[: max(width - 6, 4)] + "\n", style="dim")
            temp = g.get("temp_c")
            hot = temp is not None and temp >= self.warn_c
            out.append("temp  ")
            out.append(
                _num(temp, "°C") + (" HOT" if hot else ""),
                style="bold reverse red" if hot else "green" if temp is not None else "",
            )
            out.append("\n")
            used, total = g.get("mem_used_mb"), g.get("mem_total_mb")
            out.append("VRAM  ")
            if used is not None and total:
                label = f" {used / 1024:.1f}/{total / 1024:.0f}G"
                out.append_text(_bar(used / total, width - 6 - len(label)))
                out.append(label)
            else:
                out.append("-")
            out.append("\n")
            util = g.get("util_pct")
            out.append("util  ")
            if util is not None:
                label = f" {util:.0f}%"
                out.append_text(_bar(util / 100.0, width - 6 - len(label)))
                out.append(label)
            else:
                out.append("-")
            out.append("\n")
            out.append("power " + _num(g.get("power_w"), " W"))
        if self.source:
            out.append(f"\n{self.source}", style="dim italic")
        return out

    def _compact(self, width: int, height: int) -> Text:
        """Every GPU in a line of its own (index, temperature, utilisation bar, VRAM, power
        as room allows), or in two or more columns when the lines do not fit; a warning
        line on top when any is hot. Only when even that does not fit: hottest first and a
        count of the ones left out (a hot GPU is never hidden)."""
        out = Text()
        hot = self.hot()
        lines = height
        if hot:
            names = " ".join(f"{g.get('index', '?')}:{_num(g.get('temp_c'))}°" for g in hot)
            out.append(f"{len(hot)} HOT {names}"[:width] + "\n", style="bold reverse red")
            lines -= 1
        gpus = list(self.gpus)
        n = len(gpus)
        ncols = 1 if n <= lines else -(-n // max(lines, 1))
        cell_w = (width - (ncols - 1)) // ncols
        cut = 0
        if cell_w < 9:  # too narrow for columns: the hottest, and how many are left out
            ncols, cell_w = 1, width
            gpus.sort(key=lambda g: -(g.get("temp_c") or 0))
            keep = max(lines - 1, 0)
            cut, gpus = n - keep, gpus[:keep]
        nrows = -(-len(gpus) // ncols)
        show_source = bool(self.source) and nrows + bool(cut) < lines
        for r in range(nrows):
            if r:
                out.append("\n")
            for c in range(ncols):
                k = c * nrows + r  # down the first column, then the next
                if k >= len(gpus):
                    break
                if c:
                    out.append("│", style="dim")
                out.append_text(self._cell(gpus[k], cell_w))
        if cut:
            out.append(f"\n+{cut} cooler GPUs", style="dim")
        if show_source:
            src = self.source
            if len(src) > width:
                src = src.replace("system.jsonl", "system")
            out.append("\n" + src[:width], style="dim italic")
        return out

    def _cell(self, g: dict[str, Any], width: int) -> Text:
        """One GPU in ``width`` cells: ``6 83° 96% ███░ 35/80G 480W`` as room allows."""
        out = Text()
        temp = g.get("temp_c")
        is_hot = temp is not None and temp >= self.warn_c
        idx = str(g.get("index", "?"))
        out.append(f"{idx} ", style="bold")
        out.append(
            f"{_num(temp):>2}°",
            style="bold reverse red" if is_hot else "green" if temp is not None else "",
        )
        util = g.get("util_pct")
        used, total = g.get("mem_used_mb"), g.get("mem_total_mb")
        vram = f" {used / 1024:.0f}/{total / 1024:.0f}G" if used is not None and total else ""
        power = g.get("power_w")
        pw = f" {power:.0f}W" if power is not None else ""
        tail = f" {util:>2.0f}%" if util is not None else " -"
        room = width - out.cell_len
        for extra in (vram, pw):
            if len(tail) + len(extra) <= room:
                tail += extra
        bar_w = room - len(tail) - 1
        if util is not None and bar_w >= 4:
            out.append(" ")
            out.append_text(_bar(util / 100.0, bar_w))
        out.append(tail[: max(room, 0)])
        pad = width - out.cell_len
        if pad > 0:
            out.append(" " * pad)
        return out
