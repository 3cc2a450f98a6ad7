"""Small pieces the screens share: run rows, durations, formatting. No torch."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from rich.text import Text

from engine import runs
from slr_tui.tables import STATUS_STYLE, fmt

__all__ = [
    "STATUS_STYLE",
    "fmt",
    "on_top",
    "run_row",
    "short_when",
    "status_text",
]


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, "dim"))


def short_when(ts: float | None, wide: bool = True) -> str:
    if not ts:
        return "-"
    d = _dt.datetime.fromtimestamp(ts)
    return d.strftime("%Y-%m-%d %H:%M" if wide else "%m-%d %H:%M")


def run_row(info: runs.RunInfo, now: float) -> dict[str, Any]:
    """One runs-list row (plain data, computed in a worker thread)."""
    m = info.meta
    status = info.status
    best = m.get("best_val_acc")  # recorded whatever the monitor (older runs: best_metric)
    if best is None and m.get("monitor", "val_acc") == "val_acc":
        best = info.best_metric
    return {
        "key": info.path.name,
        "id": info.id,
        "path": str(info.path),
        "status": status,
        "preset": info.preset,
        "dataset": info.dataset,
        "epoch": info.epoch,
        "max_epochs": info.max_epochs,
        "best": best,
        "started": info.started,
        "duration": runs.active_seconds(m, now, status),
        "active": status in runs.ACTIVE,
        "sweep": m.get("sweep"),
        "has_eval": (info.path / runs.EVAL_DIR / "predictions.npz").is_file(),
    }


def epoch_text(epoch: int | None, max_epochs: int | None) -> str:
    if max_epochs:
        return f"{epoch or 0}/{max_epochs}"
    return str(epoch or 0)


def on_top(screen: Any) -> bool:
    """The screen is the top one, or only a modal dialog covers it (Textual's is_current
    is also true for the screen right below the top one)."""
    stack = screen.app.screen_stack
    if not stack:
        return False
    if stack[-1] is screen:
        return True
    return len(stack) >= 2 and stack[-2] is screen and stack[-1].is_modal
