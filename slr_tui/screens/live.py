"""Live run: status line, loss/accuracy plots that grow with metrics.jsonl, GPU panel,
per-epoch table, log tail, and (once eval/ exists) per-class figures and confusions.
A translation run plots BLEU-4 and chrF instead of accuracy, tabulates BLEU/chrF/WER per
epoch and has a "translations" tab (the latest examples row: reference vs hypothesis)
instead of the per-class and confusion tabs; thresholds are not offered for it.

A finished run opens the same way and costs nothing once shown: polling (every
``app.live_poll_s`` s, never overlapping) runs only while the run is active and this
screen is on top.

Plot keys (not in the footer; the ``?`` screen lists them): ``m`` picks the metrics of the
selected plot (any numeric key of metrics.jsonl), ``[``/``]`` select the plot, ``p`` a
grid of plots (2x2 when the terminal is big enough, one at a time at 80x24), ``-``/``+``
the EMA smoothing, ``l`` a log y axis, ``x`` the x axis (epoch, step, wall time), ``z``
the last N epochs. The two plots the screen opens with keep their classic look until one
of those changes them; every other plot has its legend on a line of its own and a mark per
curve. ``y`` shows the system panel (host CPU/RAM/disk, the engine process, GPU history;
on by itself for a run whose system.jsonl has host figures). ``e`` evaluates a run that
ended without eval/ (stopped, pruned, failed after training started) on its own data into
``eval-rescore/`` (as ``slr eval RUN``), which the per-class views then show.
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
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from engine import runs
from engine.runs import JsonlTail, TextTail, format_duration
from slr_tui.screens._common import epoch_text, fmt, on_top, status_text
from slr_tui.tables import figure_digits, grouped_table
from slr_tui.widgets._series import CURVES, RunSeries, ema, read_initial
from slr_tui.widgets.class_bars import ClassBars
from slr_tui.widgets.gpu_panel import GpuPanel
from slr_tui.widgets.heatmap import ConfusionHeatmap
from slr_tui.widgets.log_tail import LogTail
from slr_tui.widgets.metric_plot import Curve, MetricPlot
from slr_tui.widgets.sortable_table import Col, SortableTable
from slr_tui.widgets.system_panel import SystemHistory, SystemPanel, initial_rows

NVML_EVERY_S = 1.0
LOG_LINES = 1000
SMOOTHING = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)  # EMA factors the -/+ keys step through
ZOOMS = (None, 20, 10, 5)  # z: all epochs, then the last N
AXIS_LABELS = {"epoch": "epoch", "step": "step", "time": "time"}
GRID_PLOTS = 4
RESCORE = "eval-rescore"  # what the e key writes (slr eval RUN: the run's own data)


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


def _magnitude(ys: Any) -> float:
    """A curve's typical size (mean absolute value of its last 50 points)."""
    tail = [abs(y) for y in list(ys[-50:])]
    return sum(tail) / len(tail) if tail else 0.0


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
        # plots (see the module docstring); not in the footer, listed by the ? screen
        Binding("m", "pick_metrics", "choose the selected plot's metrics", show=False),
        Binding("p", "toggle_grid", "plot grid on/off", show=False),
        Binding("left_square_bracket", "select_plot(-1)", "select the previous plot", show=False),
        Binding("right_square_bracket", "select_plot(1)", "select the next plot", show=False),
        Binding("minus", "smooth(-1)", "less smoothing (EMA)", show=False),
        Binding("plus,equals_sign", "smooth(1)", "more smoothing (EMA)", show=False),
        Binding("l", "toggle_log", "log y axis of the selected plot", show=False),
        Binding("x", "next_axis", "x axis: epoch / step / wall time", show=False),
        Binding("z", "zoom", "zoom: all / last 20 / 10 / 5 epochs", show=False),
        Binding("y", "toggle_system", "system panel (CPU, RAM, disk, GPU history)", show=False),
        Binding("e", "evaluate", "evaluate a run without eval/ into eval-rescore/", show=False),
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

    class EvalProgress(Message):
        def __init__(self, text: str | None, done: bool = False, error: str | None = None):
            super().__init__()
            self.text, self.done, self.error = text, done, error

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """--read-only: the keys that would start, stop or write something are off (and
        left out of the footer)."""
        if action in ("stop", "report", "evaluate") and getattr(self.app, "read_only", False):
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
        self._system_tail = JsonlTail(self.path / runs.SYSTEM)  # first read: initial_rows
        self._log_tail = TextTail(self.path / runs.LOG)
        self._last_sys: dict[str, Any] | None = None
        self.sys_history = SystemHistory()  # filled and shown on the UI thread
        self._sys_started = False  # the first read of system.jsonl was made
        self.sys_shown: bool | None = None  # y: on/off; None: on when host figures exist
        # plots: the view, the shared settings, and what each plot shows
        self.grid = False  # p: the grid of plots instead of the two classic ones
        self.smooth_i = 0  # index into SMOOTHING
        self.axis = "epoch"
        self.zoom_i = 0  # index into ZOOMS
        self.sel = 0  # the selected plot (of the view shown)
        self._sel_shown = False  # the selection is marked once a plot key was used
        self.classic_keys: list[list[str] | None] = [None, None]  # None: the classic curves
        self.classic_log: list[bool] = [False, False]
        self.grid_specs: list[dict[str, Any]] = []  # {"keys": [...], "log": None|bool}
        self._ema_cache: dict[tuple[int, float], list[float]] = {}
        self.eval_dir: Path | None = None  # eval/, else eval-rescore/ (the e key's)
        self.evaluating: str | None = None  # the e key's progress line while it runs
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
            yield Grid(id="plot-grid")  # p: filled when first shown
            with Vertical(id="gpu-box"):
                yield SystemPanel(id="sys")
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
        if self.grid:
            self._layout_grid()

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
            data["has_eval"] = self._find_eval() is not None
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
        data["has_eval"] = self._find_eval() is not None
        self.post_message(self.Polled(data))

    def _read_side(self, status: str, meta: dict[str, Any]) -> dict[str, Any]:
        """New log lines, the last system sample, and a live NVML reading when due."""
        out: dict[str, Any] = {"log": self._log_tail.read_new()}
        if not self._sys_started:
            self._sys_started = self._system_tail.path.exists()
            rows = initial_rows(self._system_tail.read_chunk())  # spread over a long file
        else:
            rows = self._system_tail.read_new()
        if rows:
            self._last_sys = rows[-1]
        out["sys_rows"] = rows  # into sys_history on the UI thread (the panel reads it)
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

        eval_dir = self._find_eval() or self.path / runs.EVAL_DIR
        data: dict[str, Any] = {"per_class": {}, "confused": {}, "splits": [], "dir": eval_dir}
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

    def _find_eval(self) -> Path | None:
        """eval/ when it has a report, else eval-rescore/ (the e key's, ``slr eval RUN``)."""
        for name in (runs.EVAL_DIR, RESCORE):
            if (self.path / name / "report.json").is_file():
                return self.path / name
        return None

    def on_live_run_screen_eval_loaded(self, msg: EvalLoaded) -> None:
        hinted = self.eval_hint() is not None
        self.eval = msg.data
        self.eval_loaded = True
        self.eval_dir = msg.data.get("dir")
        if hinted:  # the "press e" hint goes
            self._render_status()
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
        if d.get("sys_rows"):
            self.sys_history.add_rows(d["sys_rows"])
        self._show_system()
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

    # ------------------------------------------------------------------ plots

    def _draw_plots(self) -> None:
        """Every plot shown: the classic two (as they always looked while their settings
        are the defaults) or the grid's."""
        if self.grid:
            for i, plot in self._grid_visible():
                spec = self.grid_specs[i]
                self._draw_generic(plot, spec["keys"], spec["log"], self._grid_title(i), i)
            return
        plots = (self.query_one("#loss-plot", MetricPlot), self.query_one("#acc-plot", MetricPlot))
        for i, plot in enumerate(plots):
            if self._classic_default(i):
                plot.set_style(False, False)
                mark = "▸ " if self._sel_shown and self.sel == i else ""
                plot.plot_title = mark + self._classic_title(i)
                plot.xlabel = "epoch"
                self._draw_classic(i, plot)
            else:
                keys = self.classic_keys[i] or self._classic_curves(i)
                labels = self._classic_labels(i) if self.classic_keys[i] is None else None
                self._draw_generic(
                    plot, keys, self.classic_log[i], self._classic_title(i), i, labels
                )

    def _classic_default(self, i: int) -> bool:
        """Whether classic plot ``i`` is as the screen opens it (drawn the classic way)."""
        return (
            self.smooth_i == 0
            and self.axis == "epoch"
            and self.zoom_i == 0
            and not self.classic_log[i]
            and self.classic_keys[i] is None
        )

    def _classic_title(self, i: int) -> str:
        if i == 0:
            return "loss: CTC | NLL" if self.ctc else "loss"
        if self.translation:
            return "BLEU / chrF"
        if self.second == "val_top5":
            return "accuracy"
        return "accuracy / " + SECOND_FIGURES[self.second][1]

    def _classic_curves(self, i: int) -> list[str]:
        if i == 0:
            return ["train_loss", "val_loss"]
        if self.translation:
            return ["val_bleu4", "val_chrf"]
        return ["val_acc", self.second]

    def _classic_labels(self, i: int) -> dict[str, str]:
        """The classic plots' legend names (kept when they are restyled)."""
        if i == 0:
            if self.ctc:
                return {"train_loss": "train CTC", "val_loss": "val NLL"}
            return {"train_loss": "train", "val_loss": "val"}
        if self.translation:
            return {"val_bleu4": "val BLEU-4", "val_chrf": "val chrF"}
        return {"val_acc": "val acc", self.second: SECOND_FIGURES[self.second][0]}

    def _draw_classic(self, i: int, plot: MetricPlot) -> None:
        """Classic plot ``i`` as the screen always drew it."""
        s = self.series
        if i == 0:
            tx, ty, tscale = s.curve("train_loss", self.meta.get("steps_per_epoch"))
            vx, vy, _ = s.curve("val_loss")
            if self.ctc:  # CTC (tens) and NLL (about 1) on one axis would flatten val
                loss = [
                    Curve("train CTC", tx, ty, xscale=tscale),
                    Curve("val NLL", vx, vy, yside="right"),
                ]
            else:
                loss = [Curve("train", tx, ty, xscale=tscale), Curve("val", vx, vy)]
            plot.set_curves(loss)
        elif self.translation:
            bx, by, _ = s.curve("val_bleu4")
            cx, cy, _ = s.curve("val_chrf")
            plot.set_curves(
                [
                    Curve("val BLEU-4", bx, by, color="green+"),
                    Curve("val chrF", cx, cy, color="yellow+"),
                ]
            )
        else:
            ax, ay, _ = s.curve("val_acc")
            kx, ky, _ = s.curve(self.second)
            plot.set_curves(
                [
                    Curve("val acc", ax, ay, color="green+"),
                    Curve(SECOND_FIGURES[self.second][0], kx, ky, color="yellow+"),
                ]
            )

    def _smoothed(self, ys: Any, alpha: float) -> list[float]:
        """EMA of ``ys``; the step columns' (which only grow) extended, not recomputed."""
        s = self.series
        if ys is s.step_loss or ys is s.step_lr:
            key = (id(ys), alpha)
            done = self._ema_cache.get(key)
            if done is not None and len(done) > len(ys):
                done = None
            out = ema(ys, alpha, done)
            self._ema_cache[key] = out
            return out
        return ema(ys, alpha)

    def plot_curves(self, keys: list[str], labels: dict[str, str] | None = None) -> list[Curve]:
        """The curves of ``keys`` with the screen's x axis, zoom and smoothing (``labels``:
        the legend's names for some of them)."""
        s = self.series
        spe = self.meta.get("steps_per_epoch")
        alpha = SMOOTHING[self.smooth_i]
        last_n = ZOOMS[self.zoom_i]
        curves: list[Curve] = []
        for k in keys:
            xs, ys, scale, off = s.points(k, self.axis, spe)
            if alpha:
                ys = self._smoothed(ys, alpha)
            if last_n:
                zx, _zy, scale, off = s.points(k, self.axis, spe, last_n)
                cut = len(xs) - len(zx)
                xs, ys = zx, ys[cut:]
            if labels and k in labels:
                label = labels[k]
            else:
                label = CURVES.get(k, k)
                if s.in_steps(k) and k in ("train_loss", "lr") and len(keys) > 1:
                    label += " (steps)"
            curves.append(Curve(label, xs, ys, xscale=scale, xoffset=off))
        # a curve on another scale (10x and more) gets the right axis (CTC vs NLL losses)
        mags = [_magnitude(c.ys) for c in curves]
        if len(curves) >= 2 and mags[0]:
            for c, m in zip(curves[1:], mags[1:], strict=True):
                if m and (m / mags[0] > 10 or mags[0] / m > 10):
                    c.yside = "right"
        return curves

    def _draw_generic(
        self,
        plot: MetricPlot,
        keys: list[str],
        log: bool | None,
        base: str,
        i: int,
        labels: dict[str, str] | None = None,
    ) -> None:
        curves = self.plot_curves(keys, labels)
        positive = all(all(y > 0 for y in c.ys) for c in curves if len(c.ys))
        asked = log is not None
        if log is None:  # the default: log for losses and lr when every value is > 0
            log = all(k == "lr" or k.endswith("loss") for k in keys)
        ylog = bool(log) and positive and any(len(c.ys) for c in curves)
        if ylog:
            for c in curves:
                c.yside = "left"
        parts = [base]
        if log and asked and not positive:
            parts.append("log n/a (values <= 0)")
        elif ylog:
            parts.append("log")
        if SMOOTHING[self.smooth_i]:
            parts.append(f"EMA {SMOOTHING[self.smooth_i]:g}")
        if ZOOMS[self.zoom_i]:
            parts.append(f"last {ZOOMS[self.zoom_i]} ep")
        title = " · ".join(parts)
        cols, rows = self.grid_shape()
        if self.grid and cols * rows < len(self.grid_specs):  # one page of the grid shown
            title = f"{i + 1}/{len(self.grid_specs)} " + title
        elif self._sel_shown and i == self.sel:
            title = "▸ " + title
        if self.axis == "time":
            plot.xlabel = f"time ({self.series.time_unit()[0]})"
        else:
            plot.xlabel = AXIS_LABELS[self.axis]
        plot.plot_title = title
        plot.set_style(True, ylog)
        plot.set_curves(curves)

    # ------------------------------------------------------------------ grid

    def _default_grid(self) -> list[dict[str, Any]]:
        if self.translation:
            keys = [["train_loss", "val_loss"], ["val_bleu4", "val_chrf"], ["lr"], ["val_wer"]]
        else:
            keys = [["train_loss", "val_loss"], ["val_acc", self.second], ["lr"]]
            keys.append(["val_blank_share"] if self.ctc else ["train_acc", "val_acc"])
        return [{"keys": k, "log": None} for k in keys[:GRID_PLOTS]]

    def _grid_title(self, i: int) -> str:
        keys = self.grid_specs[i]["keys"]
        if keys == ["train_loss", "val_loss"]:
            return "loss"
        return " / ".join(CURVES.get(k, k) for k in keys[:3]) + (" ..." if len(keys) > 3 else "")

    def grid_shape(self) -> tuple[int, int]:
        """(columns, rows) of the grid: 2x2 when there is room, one plot at 80x24."""
        box = 24 if self.size.width < 110 else 30
        w = (self.size.width or 80) - box
        h = (self.size.height or 24) - 4
        return (2 if w >= 90 else 1), (2 if h >= 30 else 1)

    def _grid_visible(self) -> list[tuple[int, MetricPlot]]:
        """The grid's plots on screen: the page of cols x rows that holds the selection."""
        cols, rows = self.grid_shape()
        per = cols * rows
        first = (self.sel // per) * per
        out = []
        for plot in self.query("#plot-grid MetricPlot").results(MetricPlot):
            k = int(str(plot.id).rsplit("-", 1)[1])
            if first <= k < first + per:
                out.append((k, plot))
        return out

    def _layout_grid(self) -> None:
        grid = self.query_one("#plot-grid", Grid)
        if not grid.children:
            if not self.grid_specs:
                self.grid_specs = self._default_grid()
            grid.mount_all(
                MetricPlot("", xlabel="epoch", empty="waiting for metrics", id=f"grid-plot-{k}")
                for k in range(len(self.grid_specs))
            )
        cols, rows = self.grid_shape()
        per = cols * rows
        grid.styles.grid_size_columns = cols
        grid.styles.grid_size_rows = rows
        first = (self.sel // per) * per
        for plot in grid.query(MetricPlot):
            k = int(str(plot.id).rsplit("-", 1)[1])
            plot.display = first <= k < first + per

    def _n_plots(self) -> int:
        return len(self.grid_specs) if self.grid else 2

    def _refresh_metrics(self, all_epochs: bool = False) -> None:
        s = self.series
        self._draw_plots()
        if self.translation:
            self._show_translations()
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
        hint = self.evaluating or self.eval_hint()
        if hint:
            text.append(f"\n{hint}", style="bold cyan" if self.evaluating else "cyan")
        self.query_one("#live-status", Static).update(text)
        if self.query("#per-class-note") and not self.eval_loaded:
            self.query_one("#per-class-note", Static).update(self._no_eval_note())

    def _no_eval_note(self) -> str:
        if self.evaluating:
            return self.evaluating
        return self.eval_hint() or "no evaluation yet (eval/ is written when the run finishes)"

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
                Static(self._no_eval_note(), id="per-class-note", classes="note"),
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
        src = self.eval.get("dir")
        other = src is not None and Path(src).name != runs.EVAL_DIR
        tag = f"{split} · {Path(src).name.removeprefix('eval-')}" if other else split
        tabs.get_tab("per-class").label = f"per-class ({tag})"
        tabs.get_tab("confused").label = f"confused ({tag})"
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
            if other:
                note = f"from {Path(src).name}/ (slr eval; the run has no eval/) · " + note
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
        if self.grid:  # the tabs are hidden under the grid: back to the classic view
            self.action_toggle_grid()
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

    # ------------------------------------------------------------------ plot keys

    def _plot_widgets(self) -> list[MetricPlot]:
        if self.grid:
            return [p for _, p in sorted(self._grid_visible(), key=lambda kp: kp[0])]
        return [self.query_one("#loss-plot", MetricPlot), self.query_one("#acc-plot", MetricPlot)]

    def _replot(self) -> None:
        if self.loaded:
            self._draw_plots()

    def action_select_plot(self, step: int) -> None:
        n = self._n_plots()
        if self._sel_shown:
            self.sel = (self.sel + step) % n
        self._sel_shown = True
        if self.grid:
            self._layout_grid()
        self._replot()

    def action_toggle_grid(self) -> None:
        self.grid = not self.grid
        self.set_class(self.grid, "-grid")
        self.sel = 0
        self._sel_shown = self.grid
        if self.grid:
            self._layout_grid()
        self._replot()

    def action_smooth(self, step: int) -> None:
        self.smooth_i = min(max(self.smooth_i + step, 0), len(SMOOTHING) - 1)
        self._replot()  # the titles say it (a toast would cover the plot at 80x24)

    def action_next_axis(self) -> None:
        axes = list(AXIS_LABELS)
        self.axis = axes[(axes.index(self.axis) + 1) % len(axes)]
        self._replot()  # the x label says it

    def action_zoom(self) -> None:
        self.zoom_i = (self.zoom_i + 1) % len(ZOOMS)
        self._replot()

    def action_toggle_log(self) -> None:
        self._sel_shown = True
        i = self.sel
        if self.grid:
            spec = self.grid_specs[i]
            keys = spec["keys"]
            now = spec["log"]
            if now is None:  # the automatic choice, made explicit and flipped
                now = all(k == "lr" or k.endswith("loss") for k in keys)
            spec["log"] = not now
        else:
            self.classic_log[i] = not self.classic_log[i]
        self._replot()

    def _selected_keys(self) -> list[str]:
        if self.grid:
            return list(self.grid_specs[self.sel]["keys"])
        return list(self.classic_keys[self.sel] or self._classic_curves(self.sel))

    def action_pick_metrics(self) -> None:
        keys = self.series.numeric_keys()
        if not keys:
            self.notify("no metrics yet to choose from", severity="warning")
            return
        from slr_tui.screens.metric_picker import MetricPickerScreen

        self._sel_shown = True
        i = self.sel
        where = {k: "steps" if self.series.in_steps(k) else "epochs" for k in keys}
        title = f"plot {i + 1}" + (" (grid)" if self.grid else "")

        def picked(chosen: list[str] | None) -> None:
            if not chosen:
                self._replot()
                return
            if self.grid:
                self.grid_specs[i] = {"keys": chosen, "log": None}
            else:
                self.classic_keys[i] = chosen
            self._replot()

        self.app.push_screen(MetricPickerScreen(keys, self._selected_keys(), title, where), picked)

    # ------------------------------------------------------------------ system panel

    def _show_system(self) -> None:
        hist = self.sys_history
        shown = self.sys_shown if self.sys_shown is not None else hist.host
        if shown != self.has_class("-sys"):  # only a change touches the layout
            self.set_class(shown, "-sys")
            self.query_one("#gpu-box").border_title = "GPU · system" if shown else "GPU"
        if shown:
            self.query_one(SystemPanel).show(hist)

    def action_toggle_system(self) -> None:
        shown = self.sys_shown if self.sys_shown is not None else self.sys_history.host
        self.sys_shown = not shown
        self._show_system()

    # ------------------------------------------------------------------ e: evaluate

    def eval_hint(self) -> str | None:
        """What to do about a run that ended without eval/ (None: nothing to say)."""
        if self.translation or self.status in runs.ACTIVE or not self.loaded:
            return None
        if self.eval_dir is not None or self._find_eval() is not None:
            return None
        if not (self.path / "best.pt").is_file():
            return None
        rid = self.meta.get("id", self.path.name)
        return f"no eval/: press e to evaluate best.pt (as: slr eval {rid})"

    def action_evaluate(self) -> None:
        if self.app.read_only:
            self.notify("read-only mode: evaluating is off", severity="warning")
            return
        if self.evaluating is not None:
            self.notify("an evaluation is running already", severity="warning")
            return
        if self.translation:
            self.notify("slr eval scores classifiers; a translation run's figures are in eval/")
            return
        if self.status in runs.ACTIVE:
            self.notify("the run is still training (eval/ comes when it ends)", severity="warning")
            return
        if not (self.path / "best.pt").is_file():
            self.notify("no best.pt: this run has no weights to evaluate", severity="warning")
            return
        if (self.path / runs.EVAL_DIR / "report.json").is_file():
            self.notify("the run has eval/ already (slr eval RUN --name NAME for another)")
            return
        if (self.path / RESCORE).exists():
            self.notify(
                f"{RESCORE}/ exists; to redo it: slr eval {self.path.name} --overwrite",
                severity="warning",
            )
            return
        self.evaluating = "evaluating: starting the engine..."
        self._render_status()
        self.eval_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="live-evaluate")
    def eval_worker(self) -> None:
        """``slr eval RUN`` (the run's own data, best.pt) into eval-rescore/, as a job."""
        from textual.worker import get_current_worker

        from engine import config as cfgmod
        from engine.errors import ConfigError
        from slr_tui import launch

        worker = get_current_worker()
        path = self.path / runs.CONFIG_JSON
        try:
            cfg = cfgmod.validate(cfgmod.load_file(path), str(path), saved=True)
            job = launch.start_eval(self.path, cfg, RESCORE.removeprefix("eval-"))
        except (ConfigError, OSError) as exc:
            self.post_message(self.EvalProgress(None, done=True, error=str(exc)))
            return

        def on_row(row: dict[str, Any]) -> None:
            if row.get("kind") == "batch" and row.get("total"):
                text = f"evaluating: batch {row['done']}/{row['total']}"
            elif row.get("kind") == "stage":
                text = f"evaluating: {row.get('stage')}"
            else:
                return
            self.post_message(self.EvalProgress(text))

        with job:
            code = launch.follow(job, on_row, cancelled=lambda: worker.is_cancelled)
            if code is None:
                return
            result, error = job.outcome()
        if code or result is None:
            error = error or f"the evaluation failed (exit {code})"
        self.post_message(self.EvalProgress(None, done=True, error=error))

    def on_live_run_screen_eval_progress(self, msg: EvalProgress) -> None:
        if not msg.done:
            self.evaluating = msg.text
            self._render_status()
            return
        self.evaluating = None
        if msg.error:
            self.notify(f"evaluation failed: {msg.error}", severity="error", markup=False)
        else:
            self.notify(f"evaluated: {self.path / RESCORE}", markup=False)
            self.eval_loaded = False
            self.load_eval()
        self._render_status()
