"""Live run: status line, loss/accuracy plots that grow with metrics.jsonl, GPU panel,
per-epoch table, log tail, and (once eval/ exists) per-class figures and confusions.
A translation run plots BLEU-4 and chrF instead of accuracy, tabulates BLEU/chrF/WER per
epoch and has a "translations" tab (the latest examples row: reference vs hypothesis)
instead of the per-class and confusion tabs; thresholds are not offered for it.

A finished run opens the same way and costs nothing once shown: polling (every
``app.live_poll_s`` s, never overlapping) runs only while the run is active and this
screen is on top.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from engine import runs
from engine.runs import JsonlTail, TextTail, format_duration
from slr_tui.screens._common import epoch_text, fmt, on_top, status_text
from slr_tui.tables import figure_digits, grouped_table
from slr_tui.widgets._series import RunSeries, read_initial
from slr_tui.widgets.class_bars import ClassBars
from slr_tui.widgets.gpu_panel import GpuPanel
from slr_tui.widgets.heatmap import ConfusionHeatmap
from slr_tui.widgets.log_tail import LogTail
from slr_tui.widgets.metric_plot import Curve, MetricPlot
from slr_tui.widgets.sortable_table import Col, SortableTable

NVML_EVERY_S = 1.0
LOG_LINES = 1000
SYSTEM_TAIL_BYTES = 256 * 1024


def _f3(v: Any) -> str:
    return fmt(v, 3)


def _f4(v: Any) -> str:
    return fmt(v, 4)


EPOCH_COLS = [  # fixed widths: the table grows while it is shown
    Col("epoch_s", "epoch", right=True, sortable=False, width=6),
    Col("train_loss", "train loss", _f4, right=True, sortable=False, width=10),
    Col("val_loss", "val loss", _f4, right=True, sortable=False, width=8),
    Col("val_acc", "val acc", _f4, right=True, sortable=False, width=7),
    Col("val_top5", "top-5", _f4, right=True, sortable=False, width=6),
    Col(
        "lr",
        "lr",
        lambda v: "-" if v is None else f"{v:.2e}",
        right=True,
        sortable=False,
        width=8,
    ),
    Col(
        "epoch_time_s",
        "time",
        lambda v: "-" if v is None else f"{v:.1f}s",
        right=True,
        sortable=False,
        width=7,
    ),
]


def _f2(v: Any) -> str:
    return fmt(v, 2)


# a translation run's epochs: no accuracy; token accuracy, BLEU-4, chrF (0..100), WER
TRANSLATION_EPOCH_COLS = [
    EPOCH_COLS[0],
    EPOCH_COLS[1],
    EPOCH_COLS[2],
    Col("val_token_acc", "tok acc", _f3, right=True, sortable=False, width=7),
    Col("val_bleu4", "BLEU-4", _f2, right=True, sortable=False, width=6),
    Col("val_chrf", "chrF", _f2, right=True, sortable=False, width=5),
    Col("val_wer", "WER", _f3, right=True, sortable=False, width=5),
    EPOCH_COLS[5],
    Col(
        "epoch_time_s",
        "time",
        lambda v: "-" if v is None else f"{v:.1f}s",
        right=True,
        sortable=False,
        width=6,
    ),
]
CLASSIFICATION_TABS = ("per-class", "confused")

# the figure plotted beside val accuracy and tabulated in top-5's place: the monitor when it
# is one of these, else macro F1 for a two-class run (its top-5 is always 1.0), else top-5
SECOND_FIGURES = {
    "val_macro_f1": ("val F1", "F1"),
    "val_per_class_acc": ("val per-class acc", "pc acc"),
    "val_top5": ("val top-5", "top-5"),
}
BLANK_COL = Col("val_blank_share", "blank", _f3, right=True, sortable=False, width=5)


def second_figure(meta: dict[str, Any]) -> str:
    """The epoch figure shown beside val accuracy for a run with this run.json."""
    mon = meta.get("monitor")
    if mon in SECOND_FIGURES and mon != "val_top5":
        return str(mon)
    return "val_macro_f1" if meta.get("num_classes") == 2 else "val_top5"


def epoch_cols(second: str, ctc: bool) -> list[Col]:
    """The classification epoch columns: ``second`` in top-5's place, CTC's blank share."""
    cols = list(EPOCH_COLS)
    if second != "val_top5":
        cols[4] = Col(second, SECOND_FIGURES[second][1], _f4, right=True, sortable=False, width=6)
    if ctc:
        cols.insert(5, BLANK_COL)
    return cols


PER_CLASS_COLS = [
    Col("class", "class"),
    Col("support", "support", right=True),
    Col("accuracy", "accuracy", _f3, right=True),
    Col("precision", "precision", _f3, right=True),
    Col("recall", "recall", _f3, right=True),
    Col("f1", "F1", _f3, right=True),
]

CONFUSED_COLS = [
    Col("true", "true class"),
    Col("pred", "predicted as"),
    Col("count", "count", right=True),
    Col("share", "share of class", lambda v: "-" if v is None else f"{v:.0%}", right=True),
]


def report_in_thread(paths: list[Path], out: Path) -> tuple[str, str]:
    """Write the report of ``paths`` into ``out`` (a worker thread's job): the line to
    notify and its severity; never raises."""
    try:
        from slr_tui.report import ReportError, write_report

        res = write_report(paths, out)
    except ReportError as exc:
        return f"no report: {exc}", "error"
    except OSError as exc:
        return f"no report: {runs.os_error_line(exc)}", "error"
    except Exception as exc:  # noqa: BLE001 - a damaged file must not take the screen down
        return f"no report: {type(exc).__name__}: {exc}", "error"
    return f"report written to {res.index}", "information"


class LiveRunScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("1", "tab('epochs')", "epochs"),
        Binding("2", "tab('log')", "log"),
        Binding("3", "tab('per-class')", "per-class"),
        Binding("3", "tab('translations')", "translations"),  # a translation run's 3
        Binding("4", "tab('confused')", "confused"),
        Binding("v", "toggle_split", "val/test"),
        Binding("t", "thresholds", "thresholds"),
        Binding("t", "no_thresholds", "thresholds", show=False),  # a translation run's t
        Binding("s", "stop", "stop"),
        Binding("q", "back", "back", show=False),
        # per-class and confused tabs: bar chart / heatmap instead of the table
        Binding("g", "toggle_charts", "chart/table", show=False),
        Binding("R", "report", "report", show=False),  # slr report into RUN/report/
    ]

    class Loaded(Message):
        def __init__(self, data: dict[str, Any]) -> None:
            super().__init__()
            self.data = data

    class Polled(Message):
        def __init__(self, data: dict[str, Any]) -> None:
            super().__init__()
            self.data = data

    class EvalLoaded(Message):
        def __init__(self, data: dict[str, Any]) -> None:
            super().__init__()
            self.data = data

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """--read-only: the keys that would start, stop or write something are off (and
        left out of the footer)."""
        if action in ("stop", "report") and getattr(self.app, "read_only", False):
            return False
        if action == "toggle_charts":
            return not self.translation
        # a translation run: "translations" instead of per-class/confused, no thresholds
        if action == "tab":
            if parameters and parameters[0] in CLASSIFICATION_TABS:
                return not self.translation
            if parameters and parameters[0] == "translations":
                return self.translation
        if action in ("toggle_split", "thresholds"):
            return not self.translation
        if action == "no_thresholds":
            return self.translation
        return True

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.meta: dict[str, Any] = {}
        self.status = "starting"
        self.model = "-"
        self.problem: str | None = None  # why run.json is unreadable
        self.series = RunSeries()
        self.loaded = False
        self.eval_loaded = False
        self.eval: dict[str, Any] = {}
        self.split = "test"
        self.charts = False  # per-class bars and confusion heatmap instead of the tables
        self.report_line: str | None = None  # what the last report key said
        self.reporting = False  # a report worker is writing
        self._bars: ClassBars | None = None  # the g views, made when their tab is first shown
        self._heat: ConfusionHeatmap | None = None
        self.translation = False  # set once the first read tells (config, run.json, rows)
        self.second = "val_top5"  # the figure beside val accuracy (second_figure)
        self.ctc = False  # a CTC model: loss on two axes, blank share tabulated
        self._examples_shown: dict[str, Any] | None = None
        self.polls = 0
        self.opened_at = time.perf_counter()
        self.loaded_in: float | None = None
        self._timer = None
        self._polling = False
        self._nvml_at = 0.0
        self._gpu_live = False
        # readers: used only from this screen's worker threads, one at a time
        self._metrics_tail = JsonlTail(self.path / runs.METRICS)
        self._system_tail = JsonlTail(self.path / runs.SYSTEM, from_end=SYSTEM_TAIL_BYTES)
        self._log_tail = TextTail(self.path / runs.LOG)
        self._last_sys: dict[str, Any] | None = None
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static("", id="live-status", classes="title-bar")
        with Horizontal(id="live-top"):
            yield MetricPlot(
                "loss", xlabel="epoch", empty="loss: waiting for metrics", id="loss-plot"
            )
            yield MetricPlot(
                "accuracy",
                xlabel="epoch",
                empty="accuracy: waiting for the first epoch",
                id="acc-plot",
            )
            with Vertical(id="gpu-box"):
                yield GpuPanel(warn_c=self.app.settings.gpu_temp_warn_c, id="gpu")
        with TabbedContent(id="live-tabs", initial="epochs"):
            with TabPane("epochs", id="epochs"):
                yield SortableTable(EPOCH_COLS, row_key="epoch", id="epoch-table")
            # the other panes are filled when first shown (a cheaper screen to open)
            yield TabPane("log", id="log")
            yield TabPane("per-class", id="per-class")
            yield TabPane("confused", id="confused")
        yield Footer(compact=True)

    def on_resize(self) -> None:
        self._render_status()

    def on_mount(self) -> None:
        self.query_one("#gpu-box").border_title = "GPU"
        self._render_status()
        self.load()

    # ------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, exit_on_error=False, group="live-load")
    def load(self) -> None:
        """The first read. Whatever the files hold, it ends in Loaded (the screen never
        stays on "loading"): a file that cannot be read becomes an error line."""
        data: dict[str, Any] = {}
        try:
            info = runs.load_run(self.path)
            data["meta"] = dict(info.meta)
            data["status"] = info.status
            data["problem"] = info.problem
            cfg = info.config()
            name = (cfg.get("model") or {}).get("name")
            data["model"] = str(name) if name is not None else "-"
            data["ctc_model"] = name == "ctc"
            series, offset = read_initial(self.path / runs.METRICS)
            self._metrics_tail.offset = offset  # later reads start where this one ended
            data["series"] = series
            data["translation"] = (
                series.translation or info.translation or runs.translation_config(cfg)
            )
            data.update(self._read_side(info.status, data["meta"]))
            data["has_eval"] = (self.path / runs.EVAL_DIR / "report.json").is_file()
        except Exception as exc:  # noqa: BLE001 - a reader must never take the screen down
            text = str(exc) if isinstance(exc, runs.RunError) else f"cannot read: {exc}"
            data = {"error": text}
        self.post_message(self.Loaded(data))

    @work(thread=True, exclusive=True, exit_on_error=False, group="live-poll")
    def poll(self) -> None:
        data: dict[str, Any] = {}
        try:
            info = runs.load_run(self.path)
            data["meta"] = dict(info.meta)
            data["status"] = info.status
            data["problem"] = info.problem
        except Exception:  # noqa: BLE001 - keep what was shown; the next poll tries again
            data["meta"], data["status"] = self.meta, self.status
            data["problem"] = self.problem
        try:
            data["rows"] = self._metrics_tail.read_new()
            data.update(self._read_side(data["status"], data["meta"]))
        except Exception:  # noqa: BLE001
            data.setdefault("rows", [])
        data["has_eval"] = (self.path / runs.EVAL_DIR / "report.json").is_file()
        self.post_message(self.Polled(data))

    def _read_side(self, status: str, meta: dict[str, Any]) -> dict[str, Any]:
        """New log lines, the last system sample, and a live NVML reading when due."""
        out: dict[str, Any] = {"log": self._log_tail.read_new()}
        rows = self._system_tail.read_new()
        if rows:
            self._last_sys = rows[-1]
        out["sys"] = self._last_sys
        local = meta.get("host") in (None, runs.hostname())
        if status in runs.ACTIVE and local and time.monotonic() - self._nvml_at >= NVML_EVERY_S:
            self._nvml_at = time.monotonic()
            try:
                out["nvml"] = self.app.gpu_reader()
            except Exception as exc:  # a reader must never take the screen down
                out["nvml"] = f"GPU reading failed: {exc}"
        return out

    @work(thread=True, exclusive=True, exit_on_error=False, group="live-eval")
    def load_eval(self) -> None:
        try:
            data = self._read_eval()
        except Exception:  # noqa: BLE001 - damaged eval files: no per-class figures
            data = {"per_class": {}, "confused": {}, "splits": []}
        self.post_message(self.EvalLoaded(data))

    def _read_eval(self) -> dict[str, Any]:
        from engine import evaluate  # numpy + scikit-learn, no torch
        from slr_tui.report.confusion import confusion_counts

        eval_dir = self.path / runs.EVAL_DIR
        data: dict[str, Any] = {"per_class": {}, "confused": {}, "splits": []}
        try:
            splits = evaluate.prediction_splits(eval_dir)
        except (OSError, ValueError):
            splits = [s for s in ("val", "test") if evaluate.read_per_class(eval_dir, s)]
        data["splits"] = splits
        # grouped metrics (per sample vs per group), shown with the per-class figures
        data["report"] = runs.clean_report(runs.read_json(eval_dir / "report.json")) or {}
        for split in splits:
            rows = evaluate.read_per_class(eval_dir, split)
            rows.sort(key=lambda r: (r["accuracy"], r["f1"], -r["support"]))
            data["per_class"][split] = rows
            support = {r["class"]: r["support"] for r in rows}
            try:
                _, y, probs, names = evaluate.load_predictions(eval_dir, split)
            except (OSError, ValueError):
                continue
            pred = probs.argmax(axis=1) if len(y) else y
            data.setdefault("matrix", {})[split] = {
                "cm": confusion_counts(y, pred, len(names)),
                "names": names,
            }
            pairs = evaluate.most_confused(y, pred, names, top=50)
            data["confused"][split] = [
                {
                    "pair": f"{p['true_index']}>{p['pred_index']}",
                    "true": p["true"],
                    "pred": p["pred"],
                    "count": p["count"],
                    "share": p["count"] / support[p["true"]] if support.get(p["true"]) else None,
                }
                for p in pairs
            ]
        return data

    # ------------------------------------------------------------------ message handlers

    def on_live_run_screen_loaded(self, msg: Loaded) -> None:
        d = msg.data
        if "error" in d:  # shown as an unreadable run, not "loading" forever
            self.meta, self.status, self.problem = {}, "unreadable", d["error"]
            self.loaded = True
            self._render_status()
            return
        self.meta, self.status, self.model = d["meta"], d["status"], d["model"]
        self.problem = d.get("problem")
        self.series = d["series"]
        self.loaded = True
        with self.app.batch_update():  # one repaint for all of it
            if d.get("translation"):
                self._translation_layout()
            else:
                self._classification_layout(d.get("ctc_model", False))
            self._apply_side(d)
            self._refresh_metrics(all_epochs=True)
            self._render_status()
        self.loaded_in = time.perf_counter() - self.opened_at
        if d["has_eval"] and not self.translation:
            self.load_eval()
        self._schedule()

    def on_live_run_screen_polled(self, msg: Polled) -> None:
        self._polling = False
        self.polls += 1
        d = msg.data
        was_active = self.status in runs.ACTIVE
        self.meta, self.status = d["meta"], d["status"]
        self.problem = d.get("problem")
        if d["rows"]:
            self.series.add_rows(d["rows"])
            if self.series.translation and not self.translation:
                self._translation_layout()
            elif not self.translation:
                self._classification_layout(self.ctc)
            self._refresh_metrics()
        self._apply_side(d)
        self._render_status()
        if d["has_eval"] and not self.eval_loaded and not self.translation:
            self.load_eval()
        ended = was_active and self.status not in runs.ACTIVE
        if ended:
            self.notify(f"run {self.meta.get('id', self.path.name)}: {self.status}")
        self._schedule(final=ended)

    def on_live_run_screen_eval_loaded(self, msg: EvalLoaded) -> None:
        self.eval = msg.data
        self.eval_loaded = True
        splits = msg.data["splits"]
        if self.split not in splits and splits:
            self.split = "test" if "test" in splits else splits[0]
        self._show_eval()

    # ------------------------------------------------------------------ scheduling

    def _schedule(self, final: bool = False) -> None:
        """Poll again after this poll finished, only while the run is active (plus one
        ``final`` read right after it ends, for its last lines) and while on top."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if (self.status in runs.ACTIVE or final) and on_top(self):
            self._timer = self.set_timer(self.app.live_poll_s, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if on_top(self) and not self._polling:
            self._polling = True
            self.poll()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A poll that failed (the app notifies) must not stop the polling."""
        if event.worker.group == "live-poll" and event.state in (
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self._polling = False
            self._schedule()

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def on_screen_resume(self) -> None:
        if self.loaded and self.status in runs.ACTIVE:
            self._tick()

    # ------------------------------------------------------------------ rendering

    def _apply_side(self, d: dict[str, Any]) -> None:
        if d.get("log"):
            self.log_lines.extend(d["log"])
            if self.query("#log-tail"):
                self.query_one(LogTail).add_lines(d["log"])
        panel = self.query_one(GpuPanel)
        nvml = d.get("nvml")
        sys_row = d.get("sys")
        if isinstance(nvml, list) and nvml:
            self._gpu_live = True
            panel.show(nvml, None, "live (NVML)")
            return
        if "nvml" not in d and self._gpu_live and self.status in runs.ACTIVE:
            return  # keep the live reading until the next one
        self._gpu_live = False
        if sys_row and sys_row.get("gpus"):
            when = time.strftime("%H:%M:%S", time.localtime(sys_row.get("t") or 0))
            panel.show(sys_row["gpus"], None, f"system.jsonl {when}")
        elif sys_row and sys_row.get("error"):
            panel.show([], str(sys_row["error"]), "")
        elif isinstance(nvml, str):
            panel.show([], nvml, "")
        elif not sys_row:
            panel.show([], "no GPU samples (system.jsonl is empty)", "")

    def _classification_layout(self, ctc_model: bool) -> None:
        """The figure beside val accuracy (the monitor, F1 for a two-class run) and, for a CTC
        model, the blank-share column; redone only when what it depends on changed."""
        second = second_figure(self.meta)
        ctc = ctc_model or self.series.ctc
        if (second, ctc) == (self.second, self.ctc):
            return
        self.second, self.ctc = second, ctc
        self.query_one("#epoch-table", SortableTable).set_columns(epoch_cols(second, ctc))
        plot = self.query_one("#acc-plot", MetricPlot)
        plot.plot_title = (
            "accuracy" if second == "val_top5" else "accuracy / " + (SECOND_FIGURES[second][1])
        )
        plot.invalidate()
        loss = self.query_one("#loss-plot", MetricPlot)
        loss.plot_title = "loss: CTC | NLL" if ctc else "loss"
        loss.styles.margin = (0, 1, 0, 0) if ctc else 0  # room after the right axis

    def _translation_layout(self) -> None:
        """Make the screen a translation run's: BLEU/chrF plot, translation epoch columns,
        a "translations" tab in place of per-class and confused (once, when first known)."""
        if self.translation:
            return
        self.translation = True
        plot = self.query_one("#acc-plot", MetricPlot)
        plot.plot_title = "BLEU / chrF"
        plot.invalidate()
        self.query_one("#epoch-table", SortableTable).set_columns(TRANSLATION_EPOCH_COLS)
        tabs = self.query_one(TabbedContent)
        for pane in CLASSIFICATION_TABS:
            tabs.remove_pane(pane)
        tabs.add_pane(TabPane("translations", id="translations"))
        self.refresh_bindings()
        self._empty_texts()

    def _refresh_metrics(self, all_epochs: bool = False) -> None:
        s = self.series
        spe = self.meta.get("steps_per_epoch")
        tx, ty, tscale = s.curve("train_loss", spe)
        vx, vy, _ = s.curve("val_loss")
        if self.ctc:  # CTC (tens) and NLL (about 1) on one axis would flatten val
            loss = [
                Curve("train CTC", tx, ty, xscale=tscale),
                Curve("val NLL", vx, vy, yside="right"),
            ]
        else:
            loss = [Curve("train", tx, ty, xscale=tscale), Curve("val", vx, vy)]
        self.query_one("#loss-plot", MetricPlot).set_curves(loss)
        if self.translation:
            bx, by, _ = s.curve("val_bleu4")
            cx, cy, _ = s.curve("val_chrf")
            self.query_one("#acc-plot", MetricPlot).set_curves(
                [
                    Curve("val BLEU-4", bx, by, color="green+"),
                    Curve("val chrF", cx, cy, color="yellow+"),
                ]
            )
            self._show_translations()
        else:
            ax, ay, _ = s.curve("val_acc")
            kx, ky, _ = s.curve(self.second)
            self.query_one("#acc-plot", MetricPlot).set_curves(
                [
                    Curve("val acc", ax, ay, color="green+"),
                    Curve(SECOND_FIGURES[self.second][0], kx, ky, color="yellow+"),
                ]
            )
        table = self.query_one("#epoch-table", SortableTable)
        at_end = table.cursor_row >= table.row_count - 1
        rows = []
        for r in s.epoch_rows():
            rows.append({**r, "epoch_s": f"{r['epoch']}{' *' if r.get('best') else ''}"})
        table.set_rows(rows)
        if at_end and table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)

    def _empty_texts(self) -> None:
        """What an empty plot says: waiting while the run is live, else how it ended (a run
        that failed before its first step must not look as if metrics were coming)."""
        st = self.status
        second = "BLEU" if self.translation else "accuracy"
        if not self.loaded or st in runs.ACTIVE:
            texts = ("loss: waiting for metrics", f"{second}: waiting for the first epoch")
        elif st in ("failed", "stopped", "pruned", "lost"):
            err = self.meta.get("error") if st == "failed" else None
            why = f": {err}" if err else ""
            texts = (
                f"loss: none (the run {st} before its first step{why})",
                f"{second}: none (the run {st} before an epoch ended)",
            )
        else:
            texts = (f"loss: none ({st})", f"{second}: none ({st})")
        for pid, text in zip(("#loss-plot", "#acc-plot"), texts, strict=True):
            try:
                self.query_one(pid, MetricPlot).set_empty(text)
            except Exception:  # noqa: BLE001 - not composed yet
                continue

    def _render_status(self) -> None:
        self._empty_texts()
        m = self.meta
        now = self.app.clock()
        st = self.status
        line1 = status_text(st if self.loaded else "loading")
        line1.stylize("bold")
        ep = m.get("epoch") or 0
        max_ep = m.get("max_epochs")
        spe = m.get("steps_per_epoch")
        step = m.get("step") or 0
        if self.series.last_step is not None:
            step = max(step, self.series.last_step.get("step") or 0)
            if st in runs.ACTIVE:  # the epoch in progress
                ep = max(ep, self.series.last_step.get("epoch") or 0)
        parts = [f"epoch {epoch_text(ep, max_ep)}"]
        total = spe * max_ep if spe and max_ep else None
        parts.append(f"step {step}/{total}" if total else f"step {step}")
        took = runs.active_seconds(m, now, st)  # a resumed run: not the gap it sat stopped
        if took is not None:
            label = "elapsed" if st in runs.ACTIVE else "took"
            parts.append(f"{label} {format_duration(took)}")
        if st in runs.ACTIVE:
            parts.append(f"ETA {self._eta(step, total, ep, max_ep)}")
        rid = m.get("id") or self.path.name
        preset = m.get("preset") or ""
        ident = [rid, "" if preset and rid.endswith(preset) else preset, m.get("dataset") or ""]
        ident.append(self.model)
        dev = m.get("device")
        if dev:
            world = m.get("world_size") or 1
            ident.append(f"{dev} x{world}" if world > 1 else str(dev))
        if m.get("stop_reason"):
            ident.append(f"stop: {m['stop_reason']}")
        best = None
        if m.get("best_metric") is not None:
            mon = m.get("monitor", "val_acc")
            value = fmt(m["best_metric"], figure_digits(str(mon)))
            best = f"best {mon} {value} (epoch {m.get('best_epoch', '-')})"
        width = self.size.width or 120
        if best and len(st) + 4 + len("  ".join([*parts, best])) <= width:
            parts.append(best)  # room on the first line
        elif best:
            ident.append(best.replace("(epoch ", "(ep "))
        text = line1 + "  " + "  ".join(parts)
        text.append("\n" + " · ".join(x for x in ident if x), style="dim")
        if st == "failed" and m.get("error"):
            text.append(f"\nerror: {m['error']}", style="bold red")
        elif st in ("stopped", "pruned"):
            text.append(
                f"\n{st}: resume with  slr run --resume {m.get('id', self.path.name)}",
                style="yellow",
            )
        elif st == "lost":
            text.append(
                "\nthe run's process is gone but run.json still says running", style="magenta"
            )
        elif st == "unreadable":
            text.append(f"\nunreadable: {self.problem or 'run.json'}", style="bold magenta")
        self.query_one("#live-status", Static).update(text)

    def _eta(self, step: int, total: int | None, ep: int, max_ep: int | None) -> str:
        rate = self.series.rate_s_per_step()
        if rate and total:
            return "~" + format_duration(max(0, total - step) * rate)
        last = self.series.last_epoch()
        if last and last.get("epoch_time_s") and max_ep:
            return "~" + format_duration(max(0, max_ep - ep) * last["epoch_time_s"])
        return "-"

    def _pane_ready(self, name: str) -> bool:
        """Mount a pane's widgets the first time it is shown; True once they exist."""
        pane = self.query_one(f"#{name}", TabPane)
        if pane.children:
            return True
        if self.query_one(TabbedContent).active != name:
            return False
        if name == "log":
            log = LogTail(id="log-tail")
            pane.mount(log)
            log.add_lines(list(self.log_lines))
        elif name == "per-class":
            self._bars = ClassBars(id="class-bars")
            pane.mount(
                Static(
                    "no evaluation yet (eval/ is written when the run finishes)",
                    id="per-class-note",
                    classes="note",
                ),
                SortableTable(
                    PER_CLASS_COLS, row_key="class", sort_by="accuracy", id="per-class-table"
                ),
                VerticalScroll(self._bars, id="class-bars-scroll", can_focus=True),
            )
            self._show_views()
            if self.eval_loaded:
                self._show_eval()
        elif name == "translations":
            self._examples_shown = self.series.examples
            view = Static(self.examples_renderable(), id="translations-view")
            pane.mount(VerticalScroll(view, id="translations-scroll", can_focus=True))
        elif name == "confused":
            self._heat = ConfusionHeatmap(id="heatmap")
            pane.mount(
                Static("no evaluation yet", id="confused-note", classes="note"),
                SortableTable(
                    CONFUSED_COLS,
                    row_key="pair",
                    sort_by="count",
                    reverse=True,
                    id="confused-table",
                ),
                VerticalScroll(self._heat, id="heatmap-scroll", can_focus=True),
            )
            self._show_views()
            if self.eval_loaded:
                self._show_eval()
        return False

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id:
            self._pane_ready(event.pane.id)

    def examples_renderable(self) -> Group | Text:
        """The latest examples row: which epoch, then reference beside hypothesis (green
        where the model wrote the reference exactly)."""
        row = self.series.examples
        if row is None:
            if not self.loaded or self.status in runs.ACTIVE:
                why = "a translation run writes a few after each epoch"
            else:
                why = f"none were recorded ({self.status})"
            return Text(f"no example translations yet ({why})", style="dim")
        examples = [e for e in row.get("examples") or [] if isinstance(e, dict)]
        head = Text.assemble(
            ("latest examples", "bold"),
            f": epoch {row.get('epoch', '-')} · {row.get('split') or 'val'} · "
            f"{row.get('decoding') or 'greedy'} decoding · {len(examples)} sentences",
        )
        if (self.path / runs.EVAL_DIR / runs.TRANSLATIONS_CSV).is_file():
            head.append(
                f"\nall of val/test (greedy and beam): slr show {self.path.name}", style="dim"
            )
        t = Table(expand=True, show_edge=False, header_style="bold", pad_edge=False)
        t.add_column("id", no_wrap=True, style="dim")
        t.add_column("reference", ratio=4)
        t.add_column("hypothesis", ratio=4)
        for e in examples:
            ref, hyp = e.get("reference") or "", e.get("hypothesis") or ""
            if not hyp.strip():
                cell = Text("(empty)", style="dim")
            else:
                cell = Text(hyp, style="green" if hyp.strip() == ref.strip() else "")
            t.add_row(e.get("id") or "", Text(ref), cell)
        return Group(head, t)

    def _show_translations(self) -> None:
        """Show the latest examples row, when it changed and the tab has been opened."""
        if not self.query("#translations-view"):
            return
        if self.series.examples is self._examples_shown and self._examples_shown is not None:
            return
        self._examples_shown = self.series.examples
        self.query_one("#translations-view", Static).update(self.examples_renderable())

    def _show_eval(self) -> None:
        split = self.split
        per_class = self.eval.get("per_class", {}).get(split, [])
        confused = self.eval.get("confused", {}).get(split, [])
        tabs = self.query_one(TabbedContent)
        tabs.get_tab("per-class").label = f"per-class ({split})"
        tabs.get_tab("confused").label = f"confused ({split})"
        if self.query("#per-class-table"):
            self.query_one("#per-class-table", SortableTable).set_rows(per_class)
            if self._bars is not None:  # mounted with the pane (its scroll mounts it later)
                self._bars.set_rows(per_class, split)
            n_bad = sum(1 for r in per_class if (r.get("accuracy") or 0) < 1.0)
            how = (
                "as bars (g: table; R: report)"
                if self.charts
                else "(click a header or press o to sort; v switches val/test)"
            )
            note = (
                f"[b]{split}[/b]: {len(per_class)} classes, {n_bad} below 100%; worst first {how}"
            )
            grouped = grouped_table(self.eval.get("report") or {}, "per sample vs per group")
            self.query_one("#per-class-note", Static).update(
                note if grouped is None else Group(Text.from_markup(note), grouped)
            )
        if self.query("#confused-table"):
            self.query_one("#confused-table", SortableTable).set_rows(confused)
            m = self.eval.get("matrix", {}).get(split)
            if self._heat is not None:
                self._heat.set_matrix(m["cm"] if m else None, m["names"] if m else [], split)
            if self.charts:
                note = f"[b]{split}[/b]: heatmap (g: table of pairs; v: val/test; R: report)"
            else:
                note = f"[b]{split}[/b]: most confused class pairs" + (
                    " (g: heatmap)" if confused else ": none (every prediction was right)"
                )
            self.query_one("#confused-note", Static).update(note)

    def _show_views(self) -> None:
        """Tables, or (``g``) the per-class bars and the confusion heatmap."""
        for table, chart in (
            ("#per-class-table", "#class-bars-scroll"),
            ("#confused-table", "#heatmap-scroll"),
        ):
            if self.query(table):
                self.query_one(table).display = not self.charts
                self.query_one(chart).display = self.charts

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = name

    def action_toggle_split(self) -> None:
        splits = self.eval.get("splits") or []
        if len(splits) < 2:
            self.notify("no evaluation with two splits yet", severity="warning")
            return
        self.split = (
            splits[(splits.index(self.split) + 1) % len(splits)]
            if self.split in splits
            else splits[0]
        )
        self._show_eval()

    def action_toggle_charts(self) -> None:
        self.charts = not self.charts
        self._show_views()
        if self.eval_loaded:
            self._show_eval()

    def action_report(self) -> None:
        if self.app.read_only:
            self.notify("read-only mode: writing a report is off", severity="warning")
            return
        if self.reporting:
            self.notify("a report is being written already", severity="warning")
            return
        self.reporting = True
        self.notify(f"writing the report into {self.path / 'report'} ...", markup=False)
        self.report_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="report")
    def report_worker(self) -> None:
        """`slr report` of this run into RUN/report/ (matplotlib loads here, off the UI)."""
        try:
            text, sev = report_in_thread([self.path], self.path / "report")
        finally:
            self.reporting = False
        self.report_line = text
        self.app.call_from_thread(self.notify, text, severity=sev, markup=False)

    def action_no_thresholds(self) -> None:
        from slr_tui.screens.thresholds import NOT_FOR_TRANSLATION

        self.notify(
            NOT_FOR_TRANSLATION.format(self.meta.get("id", self.path.name)), severity="warning"
        )

    def action_thresholds(self) -> None:
        if not (self.path / runs.EVAL_DIR / "predictions.npz").is_file():
            self.notify(
                "no predictions yet (eval/ is written when the run finishes)", severity="warning"
            )
            return
        from slr_tui.screens.thresholds import ThresholdsScreen

        self.app.push_screen(ThresholdsScreen(self.path))

    def action_stop(self) -> None:
        if self.app.read_only:
            self.notify("read-only mode: stopping is off", severity="warning")
            return
        if self.status not in runs.ACTIVE:
            self.notify(f"the run is not running ({self.status})", severity="warning")
            return
        from slr_tui.screens.confirm import ConfirmScreen

        rid = self.meta.get("id", self.path.name)

        def answered(yes: bool | None) -> None:
            if yes:
                self.stop_run()

        self.app.push_screen(
            ConfirmScreen(
                f"Stop run {rid}?",
                "It finishes the current step, writes last.pt and marks itself stopped.",
                yes="Stop",
                no="Keep running",
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="stop")
    def stop_run(self) -> None:
        from slr_tui import launch

        try:
            text = launch.stop_run(runs.load_run(self.path))
            sev = "information"
        except runs.RunError as exc:
            text, sev = str(exc), "error"
        self.app.call_from_thread(self.notify, text, severity=sev)
