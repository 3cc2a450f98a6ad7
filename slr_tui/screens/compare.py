"""Compare: two or more runs side by side. One metric's curves overlaid (``m`` cycles the
metric), the summary metrics with the best of each row highlighted, and only the config
keys that differ. Runs still training keep growing here too (polled every second)."""

from __future__ import annotations

import os
import textwrap
import time
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
    """Cut on the right (the start of an id is the time stamp that tells runs apart)."""
    return run_id if len(run_id) <= width else run_id[: width - 1] + "…"


def _short_value(v: Any) -> str:
    """A swept value as typed, or compact (5e-4, not 0.0005)."""
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def sweep_labels(metas: list[dict[str, Any]]) -> list[str] | None:
    """``lr=5e-4`` labels from the swept values that differ between the runs (the last part
    of a dotted key, the whole key when two would read the same); None when not every run
    has swept values or they do not tell the runs apart."""
    params = [m.get("sweep_params") for m in metas]
    if len(params) < 2 or not all(isinstance(p, dict) and p for p in params):
        return None
    keys = [k for k in dict.fromkeys(k for p in params for k in p)]
    differ = [k for k in keys if len({_short_value(p.get(k)) for p in params}) > 1]
    if not differ:
        return None
    tails = [k.rsplit(".", 1)[-1] for k in differ]
    names = [t if tails.count(t) == 1 else k for k, t in zip(differ, tails, strict=True)]
    labels = [
        ",".join(f"{n}={_short_value(p.get(k, '-'))}" for n, k in zip(names, differ, strict=True))
        for p in params
    ]
    return labels if len(set(labels)) == len(labels) else None


def id_labels(ids: list[str], width: int = 22) -> list[str]:
    """The run ids when they fit, else the part of each that differs (the tokens between
    the common start and the common end, split at ``-``), cut on the right."""
    if all(len(i) <= width for i in ids) or len(ids) < 2:
        return [short_label(i, width) for i in ids]
    parts = [i.split("-") for i in ids]
    head = 0
    while all(len(p) > head for p in parts) and len({p[head] for p in parts}) == 1:
        head += 1
    tail = 0
    while (
        all(len(p) - head > tail for p in parts) and len({p[len(p) - 1 - tail] for p in parts}) == 1
    ):
        tail += 1
    mids = ["-".join(p[head : len(p) - tail]) for p in parts]
    if not all(mids):  # one id is another's start: keep each id's own end
        mids = ["-".join(p[head:]) or p[-1] for p in parts]
    return [short_label(m, width) for m in mids]


def run_labels(ids: list[str], metas: list[dict[str, Any]], width: int = 22) -> list[str]:
    """Labels that tell the runs apart: the swept values, else the differing part of the
    ids; a repeat gets its position (#2) so no two read the same."""
    labels = sweep_labels(metas) or id_labels(ids, width)
    labels = [short_label(x, width) for x in labels]
    seen: dict[str, int] = {}
    out = []
    for x in labels:
        seen[x] = seen.get(x, 0) + 1
        out.append(x if labels.count(x) == 1 else f"{x[: width - 3]}#{seen[x]}")
    return out


def diff_cells(texts: list[str], width: int, max_lines: int = 2) -> list[list[str]]:
    """Config values in columns ``width`` wide: a long value wraps onto ``max_lines``
    lines and is then cut (…); when long values share a start (``sweep member 0: ...``),
    the shared words are left out (…) so what differs shows."""
    if len(set(texts)) > 1 and any(len(x) > width for x in texts):
        p = len(os.path.commonprefix(texts))
        p = texts[0].rfind(" ", 0, p) + 1 if " " in texts[0][:p] else p
        if p >= 4:
            texts = ["…" + x[p:] for x in texts]
    out = []
    for x in texts:
        lines = textwrap.wrap(x, width) or [""]
        if len(lines) > max_lines:
            lines = lines[:max_lines]
            lines[-1] = lines[-1][: width - 1] + "…"
        out.append(lines)
    return out


# the summary rows a run without eval/ (still training, stopped) fills from its latest epoch
LATEST_FROM_EPOCH = {
    "val accuracy": "val_acc",
    "val top-5": "val_top5",
    "val per-class acc": "val_per_class_acc",
    "val macro F1": "val_macro_f1",
    "val loss": "val_loss",
    "val BLEU-4": "val_bleu4",
    "val BLEU-1": "val_bleu1",
    "val chrF": "val_chrf",
    "val WER": "val_wer",
    "val token acc": "val_token_acc",
}
_ROW_MODES = {
    "val loss": "min",
    "val WER": "min",
}


class CompareScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("m", "next_metric", "metric"),
        Binding("q", "back", "back", show=False),
        Binding("R", "report", "report", show=False),  # <runs_dir>/reports/compare-<time>/
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
        self._last_diff: list[tuple[str, list[Any]]] = []
        self.report_line: str | None = None  # what the last report key said
        self.reporting = False  # a report worker is writing

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """--read-only: the report key (it writes files) is off."""
        if action == "report" and getattr(self.app, "read_only", False):
            return False
        return True

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
        self.query_one(
            "#summary-box"
        ).border_title = "summary (best of each row: green *; ~ latest epoch or so far, no mark)"
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
        if self.loads == 1 and self.metric == "val_acc":
            first = self._first_metric()
            if first != self.metric:
                self.metric = first
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

    def _first_metric(self) -> str:
        """The metric the runs are monitored on when they share one (macro F1 for binary
        runs), BLEU-4 for translation runs (no accuracy), else val accuracy."""
        if all(s.translation for s in self.series):
            return "val_bleu4"
        mons = {m.get("monitor") for m in self.metas}
        if len(mons) == 1 and (mon := mons.pop()) in METRICS:
            return str(mon)
        return "val_acc"

    # ------------------------------------------------------------------ views

    def ids(self) -> list[str]:
        return [m.get("id") or p.name for m, p in zip(self.metas, self.paths, strict=True)]

    def labels(self) -> list[str]:
        """Distinct short names of the runs (legend, summary and diff headers)."""
        return run_labels(self.ids(), self.metas)

    def _plot(self) -> None:
        curves = []
        for i, (s, m, lab) in enumerate(zip(self.series, self.metas, self.labels(), strict=True)):
            xs, ys, scale = s.curve(self.metric, m.get("steps_per_epoch"))
            curves.append(Curve(lab, xs, ys, color=PALETTE[i % len(PALETTE)], xscale=scale))
        plot = self.query_one("#compare-plot", MetricPlot)
        plot.plot_title = CURVES.get(self.metric, self.metric)
        plot.set_curves(curves)

    def _summary(self, rows: list[tuple[str, list[Any], str]], statuses: list[str]) -> None:
        t = self.query_one("#summary-table", DataTable)
        t.clear(columns=True)
        t.add_column("metric", key="metric")
        for i, lab in enumerate(self.labels()):
            t.add_column(Text(lab, justify="right"), key=f"r{i}")
        t.add_row(
            "status",
            *(Text(s, justify="right", style=tables.STATUS_STYLE.get(s, "")) for s in statuses),
        )
        for label, vals, mode, latest in self._with_latest(rows, statuses):
            numeric = [
                v
                for v, late in zip(vals, latest, strict=True)
                if isinstance(v, (int, float)) and not isinstance(v, bool) and not late
            ]
            best = None
            if numeric and mode and len(numeric) > 1:
                best = max(numeric) if mode == "max" else min(numeric)
            cells = []
            for v, late in zip(vals, latest, strict=True):
                s = format_duration(v) if label == "duration" else tables.fmt(v)
                if best is not None and v == best and not late:
                    cells.append(Text(s + " *", style="bold green", justify="right"))
                elif late:  # the latest epoch, or an unfinished run's time so far
                    cells.append(Text(s + " ~", style="italic", justify="right"))
                else:
                    cells.append(Text(s + "  ", justify="right"))
            t.add_row(label, *cells)

    def _with_latest(
        self, rows: list[tuple[str, list[Any], str]], statuses: list[str]
    ) -> list[tuple[str, list[Any], str, list[bool]]]:
        """The summary rows, with ``latest`` flags: a run without best.pt's figures (still
        training, stopped) shows its latest epoch's value, and an unfinished run's duration
        is its time so far; neither takes part in the best mark."""
        n = len(self.paths)
        last = [s.last_epoch() or {} for s in self.series]
        have = {label for label, _, _ in rows}
        out: list[tuple[str, list[Any], str, list[bool]]] = []
        for label, key in LATEST_FROM_EPOCH.items():  # rows no run has a report value for
            if label not in have and any(e.get(key) is not None for e in last):
                mode = _ROW_MODES.get(label, "max")
                rows = [*rows[:-3], (label, [None] * n, mode), *rows[-3:]]
        for label, vals, mode in rows:
            vals = list(vals)
            latest = [False] * n
            key = LATEST_FROM_EPOCH.get(label)
            for i in range(n):
                if key and vals[i] is None and last[i].get(key) is not None:
                    vals[i], latest[i] = last[i][key], True
                elif label == "duration" and statuses[i] != "finished":
                    if statuses[i] in runs.ACTIVE:  # so far, on the app's clock
                        vals[i] = runs.active_seconds(self.metas[i], self.app.clock(), statuses[i])
                    latest[i] = vals[i] is not None
            out.append((label, vals, mode, latest))
        return out

    def on_resize(self) -> None:
        if self.loads:
            self._diff(self._last_diff)

    def _diff(self, diff: list[tuple[str, list[Any]]]) -> None:
        self._last_diff = diff
        t = self.query_one("#diff-table", DataTable)
        t.clear(columns=True)
        n = len(self.paths)
        key_w = min(28, max([len("key"), *(len(k) for k, _ in diff)]))
        width = self.size.width or self.app.size.width or 120
        # every run's column shares what the key column leaves (cells pad 1 each side)
        col_w = max(10, (width - 4 - key_w - 2 * (n + 1)) // max(n, 1))
        labels = self.labels()
        longest = [len(x) for x in labels] + [len(tables.fmt(v)) for _, vs in diff for v in vs]
        col_w = min(col_w, max(longest, default=10))  # no wider than what it holds
        key_w = max(key_w, len("(identical configs)") if not diff else 0)
        t.add_column("key", key="key", width=key_w)
        for i, lab in enumerate(labels):
            t.add_column(short_label(lab, col_w), key=f"r{i}", width=col_w)
        if not diff:
            t.add_row("(identical configs)", *([""] * n))
        for key, vals in diff:
            cells = diff_cells([tables.fmt(v) for v in vals], col_w)
            lines = max(len(c) for c in cells)
            t.add_row(
                short_label(key, key_w),
                *(Text("\n".join(c)) for c in cells),
                height=lines,
            )

    # ------------------------------------------------------------------ actions

    @on(Select.Changed, "#metric-select")
    def _metric_changed(self, event: Select.Changed) -> None:
        if event.value != self.metric and isinstance(event.value, str):
            self.metric = event.value
            self._plot()

    def action_next_metric(self) -> None:
        i = (METRICS.index(self.metric) + 1) % len(METRICS)
        self.query_one("#metric-select", Select).value = METRICS[i]

    def action_report(self) -> None:
        """`slr report` of the shown runs into <runs_dir>/reports/compare-<time>/."""
        if self.app.read_only:
            self.notify("read-only mode: writing a report is off", severity="warning")
            return
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.app.clock()))
        out = Path(self.app.runs_root) / "reports" / f"compare-{stamp}"
        if self.reporting:
            self.notify("a report is being written already", severity="warning")
            return
        self.reporting = True
        self.notify(f"writing the report into {out} ...", markup=False)
        self.report_worker(out)

    @work(thread=True, exclusive=True, exit_on_error=False, group="report")
    def report_worker(self, out: Path) -> None:
        from slr_tui.screens.live import report_in_thread

        try:
            text, sev = report_in_thread(list(self.paths), out)
        finally:
            self.reporting = False
        self.report_line = text
        self.app.call_from_thread(self.notify, text, severity=sev, markup=False)

    def action_back(self) -> None:
        self.app.pop_screen()
