"""Compare: two or more runs side by side. One metric's curves overlaid (``m`` cycles the
metric), the summary metrics with the best of each row highlighted, and only the config
keys that differ. Runs still training keep growing here too (polled every second)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Select, Static

from engine import runs
from engine.runs import JsonlTail, format_duration
from slr_tui import tables
from slr_tui.screens._common import on_top
from slr_tui.widgets._series import CURVES, RunSeries
from slr_tui.widgets.metric_plot import PALETTE, Curve, MetricPlot

METRICS = [
    "val_acc",
    "val_loss",
    "train_loss",
    "val_top5",
    "val_macro_f1",
    "val_per_class_acc",
    "lr",
    "val_bleu4",  # translation runs
    "val_chrf",
    "val_wer",
]
POLL_S = 1.0


def _safe(fn: Any, infos: list[runs.RunInfo]) -> list[Any]:
    """A table's rows, or none when a run's files make it fail (the screen stays up)."""
    try:
        return fn(infos)
    except Exception:  # noqa: BLE001
        return []


def short_label(run_id: str, width: int = 22) -> str:
    return run_id if len(run_id) <= width else "…" + run_id[-(width - 1) :]


class CompareScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("m", "next_metric", "metric"),
        Binding("q", "back", "back", show=False),
    ]

    class Loaded(Message):
        def __init__(self, data: dict[str, Any]) -> None:
            super().__init__()
            self.data = data

    def __init__(self, paths: list[Path], title: str | None = None) -> None:
        super().__init__()
        self.paths = [Path(p) for p in paths]
        self.title_text = title
        self.metric = "val_acc"
        self.series: list[RunSeries] = [RunSeries() for _ in self.paths]
        self.metas: list[dict[str, Any]] = [{} for _ in self.paths]
        self._tails = [JsonlTail(p / runs.METRICS) for p in self.paths]
        self.loads = 0
        self._timer = None

    def compose(self) -> ComposeResult:
        yield Static("", id="compare-title", classes="title-bar")
        with Horizontal(id="compare-bar"):
            yield Static("metric", id="metric-label")
            yield Select(
                [(CURVES.get(m, m), m) for m in METRICS],
                value=self.metric,
                allow_blank=False,
                id="metric-select",
                compact=True,
            )
        with VerticalScroll(id="compare-body"):
            yield MetricPlot("", xlabel="epoch", empty="no epochs yet", id="compare-plot")
            with Vertical(id="summary-box"):
                yield DataTable(id="summary-table", zebra_stripes=True, cursor_type="row")
            with Vertical(id="diff-box"):
                yield DataTable(id="diff-table", zebra_stripes=True, cursor_type="row")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#summary-box").border_title = "summary (best of each row: green *)"
        self.query_one("#diff-box").border_title = "config keys that differ"
        n = len(self.paths)
        head = self.title_text or f"{n} runs"
        self.query_one("#compare-title", Static).update(f"[b]compare[/b]  {head}")
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-load")
    def load(self) -> None:
        infos = []
        for p in self.paths:
            try:
                infos.append(runs.load_run(p))
            except runs.RunError:
                infos.append(runs.RunInfo(path=p, meta={"id": p.name, "status": "missing"}))
            except Exception as exc:  # noqa: BLE001 - one bad run is one bad column
                infos.append(runs.RunInfo(path=p, meta={"id": p.name}, problem=str(exc)))
        rows = []
        for t in self._tails:
            try:
                rows.append(t.read_new())
            except Exception:  # noqa: BLE001
                rows.append([])
        data: dict[str, Any] = {
            "metas": [dict(i.meta) for i in infos],
            "statuses": [i.status for i in infos],
            "rows": rows,
            "summary": _safe(tables.compare_rows, infos),
            "diff": _safe(tables.config_diff, infos),
        }
        self.post_message(self.Loaded(data))

    def on_compare_screen_loaded(self, msg: Loaded) -> None:
        d = msg.data
        self.loads += 1
        self.metas = d["metas"]
        for s, rows in zip(self.series, d["rows"], strict=True):
            if rows:
                s.add_rows(rows)
        if self.loads == 1 and self.metric == "val_acc" and all(s.translation for s in self.series):
            self.metric = "val_bleu4"  # translation runs have no accuracy
            self.query_one("#metric-select", Select).value = self.metric
        self._plot()
        self._summary(d["summary"], d["statuses"])
        self._diff(d["diff"])
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if any(st in runs.ACTIVE for st in d["statuses"]) and on_top(self):
            self._timer = self.set_timer(POLL_S, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if on_top(self):
            self.load()

    def on_screen_resume(self) -> None:
        if self.loads:
            self._tick()

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    # ------------------------------------------------------------------ views

    def ids(self) -> list[str]:
        return [m.get("id") or p.name for m, p in zip(self.metas, self.paths, strict=True)]

    def _plot(self) -> None:
        curves = []
        for i, (s, m, rid) in enumerate(zip(self.series, self.metas, self.ids(), strict=True)):
            xs, ys, scale = s.curve(self.metric, m.get("steps_per_epoch"))
            curves.append(
                Curve(short_label(rid), xs, ys, color=PALETTE[i % len(PALETTE)], xscale=scale)
            )
        plot = self.query_one("#compare-plot", MetricPlot)
        plot.plot_title = CURVES.get(self.metric, self.metric)
        plot.set_curves(curves)

    def _summary(self, rows: list[tuple[str, list[Any], str]], statuses: list[str]) -> None:
        t = self.query_one("#summary-table", DataTable)
        t.clear(columns=True)
        t.add_column("metric", key="metric")
        for i, rid in enumerate(self.ids()):
            t.add_column(Text(short_label(rid), justify="right"), key=f"r{i}")
        t.add_row(
            "status",
            *(Text(s, justify="right", style=tables.STATUS_STYLE.get(s, "")) for s in statuses),
        )
        for label, vals, mode in rows:
            numeric = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
            best = None
            if numeric and mode and len(numeric) > 1:
                best = max(numeric) if mode == "max" else min(numeric)
            cells = []
            for v in vals:
                s = format_duration(v) if label == "duration" else tables.fmt(v)
                if best is not None and v == best:
                    cells.append(Text(s + " *", style="bold green", justify="right"))
                else:
                    cells.append(Text(s + "  ", justify="right"))
            t.add_row(label, *cells)

    def _diff(self, diff: list[tuple[str, list[Any]]]) -> None:
        t = self.query_one("#diff-table", DataTable)
        t.clear(columns=True)
        t.add_column("key", key="key")
        for i, rid in enumerate(self.ids()):
            t.add_column(short_label(rid), key=f"r{i}")
        if not diff:
            t.add_row("(identical configs)", *([""] * len(self.paths)))
        for key, vals in diff:
            t.add_row(key, *(tables.fmt(v) for v in vals))

    # ------------------------------------------------------------------ actions

    @on(Select.Changed, "#metric-select")
    def _metric_changed(self, event: Select.Changed) -> None:
        if event.value != self.metric and isinstance(event.value, str):
            self.metric = event.value
            self._plot()

    def action_next_metric(self) -> None:
        i = (METRICS.index(self.metric) + 1) % len(METRICS)
        self.query_one("#metric-select", Select).value = METRICS[i]

    def action_back(self) -> None:
        self.app.pop_screen()
