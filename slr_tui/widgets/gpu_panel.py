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

    def render(self) -> Text:
        width = max(self.size.width - 2, 12)
        out = Text()
        if not self.gpus:
            out.append("no GPU\n", style="bold")
            out.append(self.reason or "no GPU samples", style="dim")
            return out
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
