"""The new-run screen's data-check panel: what ``slr data check --json`` reports for the
chosen dataset, and the subprocess that gets it (the data sources import torch, the TUI
does not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from slr_tui.tables import fmt

SPLITS = ("train", "val", "test")
COLS = ("listed", "present", "missing", "unreadable")
SHOWN_CLASSES = 6


def check_command(preset: str, root: str, sets: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "slr_tui.cli", "data", "check", "--preset", preset]
    cmd += ["--data-root", root, "--json"]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def error_line(stderr: str, code: int) -> str:
    """The one line a failed ``slr`` command printed for people (its ``error:`` line)."""
    lines = [x.strip() for x in stderr.splitlines() if x.strip()]
    for line in lines:
        if line.startswith("error:"):
            return line.removeprefix("error:").strip()
    return lines[-1] if lines else f"data check exited with status {code}"


def run_check(
    preset: str, root: str, sets: list[str], cancelled: Callable[[], bool]
) -> tuple[dict[str, Any] | None, str | None] | None:
    """Run the check; ``(report, None)``, ``(None, error)``, or None when ``cancelled()``
    turned true first (the subprocess is then killed)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        proc = subprocess.Popen(
            check_command(preset, root, sets),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    except OSError as exc:
        return None, f"cannot start the data check: {exc}"
    while True:
        try:
            out, err = proc.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if cancelled():
                proc.kill()
                proc.communicate()
                return None
    if proc.returncode != 0:
        return None, error_line(err, proc.returncode)
    try:
        report = json.loads(out)
    except ValueError:
        return None, error_line(err, proc.returncode) if err.strip() else "no report came back"
    return report, None


def report_view(report: dict[str, Any]) -> Group:
    """Counts per split, then classes, training videos per class, imbalance."""
    t = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    t.add_column("split")
    for col in COLS:
        t.add_column(col, justify="right")
    for split in SPLITS:
        row = report.get(split) or {}
        cells = [Text(fmt(row.get(k))) for k in COLS]
        for cell, k in zip(cells[2:], COLS[2:], strict=True):
            if row.get(k):
                cell.stylize("yellow")
        t.add_row(split, *cells)
    lines: list[Text] = []
    c = report.get("classes") or {}
    line = Text(f"classes {fmt(report.get('num_classes'))}")
    if c:
        ratio = c.get("imbalance_ratio")
        line.append(f" · imbalance {'-' if ratio is None else f'{ratio:.1f}:1'} (max/min)")
    lines.append(line)
    if c:
        lines.append(
            Text(
                f"train videos per class: min {fmt(c.get('per_class_min'))}, "
                f"mean {fmt(c.get('per_class_mean'), 1)}, max {fmt(c.get('per_class_max'))}"
            )
        )
        empty = c.get("without_train") or []
        if empty:
            shown = ", ".join(empty[:SHOWN_CLASSES]) + (
                " ..." if len(empty) > SHOWN_CLASSES else ""
            )
            lines.append(Text(f"no training video ({len(empty)}): {shown}", style="yellow"))
        else:
            lines.append(Text("every class has training videos", style="green"))
    return Group(t, *lines)


class DataCheckPanel(Static):
    """Shows "checking...", a report, or the one-line error of the check."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.state = "idle"  # idle, checking, ok, error
        self.report: dict[str, Any] | None = None
        self.error: str | None = None

    def show_checking(self, root: str) -> None:
        self.state, self.report, self.error = "checking", None, None
        self.update(Text(f"checking {root}...", style="cyan"))

    def show_result(self, report: dict[str, Any] | None, error: str | None) -> None:
        self.report, self.error = report, error
        if error or report is None:
            self.state = "error"
            self.update(Text(error or "no report", style="bold red"))
        else:
            self.state = "ok"
            self.update(report_view(report))
