"""Thresholds: a run's threshold sweep (val by default, ``tab`` switches to test), a plot of
precision/recall/F1 against the threshold with a marker at the cursor; ``left``/``right``
move the threshold by 0.01, ``b`` jumps to the best F1 on val, ``enter`` saves
threshold.json (the same file ``slr thresholds --pick`` writes).

The sweep is computed once per split on the 0.01 grid (a worker), so moving the cursor
only looks rows up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from engine import runs
from slr_tui.screens._common import fmt
from slr_tui.widgets.metric_plot import Curve, MetricPlot
from slr_tui.widgets.sortable_table import Col, SortableTable

STEP = 0.01
# the one line for a translation run (no class probabilities, so no threshold to pick)
NOT_FOR_TRANSLATION = "thresholds are for classification runs: {} is a translation run"


def _f3(v: Any) -> str:
    return fmt(v, 3)


def sweep_cols(task: str) -> list[Col]:
    cols = [
        Col("threshold", "threshold", lambda v: f"{v:.2f}", right=True, sortable=False, width=9),
        Col("precision", "precision", _f3, right=True, sortable=False, width=9),
        Col("recall", "recall", _f3, right=True, sortable=False, width=6),
        Col("f1", "F1", _f3, right=True, sortable=False, width=5),
        Col("accuracy", "accuracy", _f3, right=True, sortable=False, width=8),
    ]
    if task != "binary":
        cols.append(Col("coverage", "coverage", _f3, right=True, sortable=False, width=8))
    return cols


def figures_line(row: dict[str, Any] | None, task: str) -> str:
    """The figures at one threshold, as the screen shows them (and tests read them).
    Multi-class accuracy is the precision (both are measured on the accepted samples)."""
    if row is None:
        return "-"
    parts = [
        f"F1 {fmt(row.get('f1'), 3)}",
        f"P {fmt(row.get('precision'), 3)}",
        f"R {fmt(row.get('recall'), 3)}",
    ]
    if task == "binary":
        parts.append(f"acc {fmt(row.get('accuracy'), 3)}")
    else:
        parts.append(f"cov {fmt(row.get('coverage'), 3)} ({row.get('accepted')})")
    return "  ".join(parts)


class SweepTable(SortableTable):
    """The sweep rows; the cursor row is the threshold. Left/right belong to the screen."""

    BINDINGS = [
        Binding("left", "noop", show=False),
        Binding("right", "noop", show=False),
    ]

    def action_noop(self) -> None:  # the screen's priority bindings move the threshold
        pass


class ThresholdsScreen(Screen):
    BINDINGS = [
        Binding("left", "move(-1)", "-0.01", priority=True),
        Binding("right", "move(1)", "+0.01", priority=True),
        Binding("tab", "switch_split", "val/test", priority=True),
        Binding("b", "best", "best F1 (val)"),
        Binding("enter", "save", "save", priority=True),
        Binding("escape", "back", "back"),
        Binding("q", "back", "back", show=False),
    ]

    class Loaded(Message):
        def __init__(self, data: dict[str, Any]) -> None:
            super().__init__()
            self.data = data

    class Saved(Message):
        def __init__(self, data: dict[str, Any] | None, error: str | None) -> None:
            super().__init__()
            self.data, self.error = data, error

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """--read-only: the keys that would start, stop or write something are off (and
        left out of the footer)."""
        if action in ("save",) and getattr(self.app, "read_only", False):
            return False
        return True

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.split = "val"
        self.sweeps: dict[str, list[dict[str, Any]]] = {}
        self.grid: list[float] = []
        self.index = 0
        self.kind = "multiclass"
        self.best_index: int | None = None
        self.picked: dict[str, Any] | None = None
        self.saved: dict[str, Any] | None = None
        self.loaded = False
        self._syncing = False

    def compose(self) -> ComposeResult:
        yield Static("", id="thr-title", classes="title-bar")
        with Horizontal(id="thr-main"):
            with Vertical(id="thr-left"):
                yield SweepTable(sweep_cols("multiclass"), row_key="key", id="sweep-table")
            with Vertical(id="thr-right"):
                yield MetricPlot(
                    "",
                    xlabel="threshold",
                    empty="loading predictions...",
                    ylim=(0.0, 1.0),
                    id="thr-plot",
                )
                yield Static("", id="thr-figures")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#thr-title", Static).update(
            f"[b]thresholds[/b]  {self.path.name}  loading..."
        )
        self.query_one("#thr-left").border_title = "sweep"
        self.load()

    @property
    def table(self) -> SweepTable:
        return self.query_one(SweepTable)

    # ------------------------------------------------------------------ worker

    @work(thread=True, exclusive=True, exit_on_error=False, group="thr-load")
    def load(self) -> None:
        from engine import evaluate  # numpy + scikit-learn, no torch

        eval_dir = self.path / runs.EVAL_DIR
        grid = evaluate.default_thresholds(0.0, 1.0, STEP)
        data: dict[str, Any] = {"grid": grid, "sweeps": {}, "error": None}
        try:
            translation = runs.load_run(self.path).task() == "translation"
        except Exception:  # noqa: BLE001 - an unreadable run: the predictions decide
            translation = False
        if translation:
            data["error"] = NOT_FOR_TRANSLATION.format(self.path.name)
            self.post_message(self.Loaded(data))
            return
        for split in ("val", "test"):
            try:
                _, y, probs, _ = evaluate.load_predictions(eval_dir, split)
            except (OSError, ValueError):
                continue
            data["task"] = evaluate.task_of(probs.shape[1])
            data["sweeps"][split] = evaluate.threshold_sweep(y, probs, grid)
        if not data["sweeps"]:
            data["error"] = f"no predictions in {eval_dir} (eval/ is written when a run finishes)"
        data["picked"] = runs.read_json(self.path / runs.THRESHOLD_JSON)
        self.post_message(self.Loaded(data))

    def on_thresholds_screen_loaded(self, msg: Loaded) -> None:
        d = msg.data
        if d["error"]:
            self.query_one("#thr-title", Static).update(f"[red]{d['error']}[/]")
            self.query_one("#thr-plot", MetricPlot).empty = d["error"]
            self.query_one("#thr-plot", MetricPlot).invalidate()
            return
        self.grid, self.sweeps, self.kind = d["grid"], d["sweeps"], d.get("task", "multiclass")
        self.picked = d["picked"]
        if self.split not in self.sweeps:
            self.split = next(iter(self.sweeps))
        from engine.evaluate import best_threshold  # already imported by the worker

        best = best_threshold(self.sweeps["val"], "f1") if "val" in self.sweeps else None
        self.best_index = self._index_of(best["threshold"]) if best else None
        start = self.picked.get("threshold") if self.picked else None
        if start is not None:
            self.index = self._index_of(float(start))
        elif self.best_index is not None:
            self.index = self.best_index
        else:
            self.index = self._index_of(0.5)
        self.loaded = True
        self.table.set_columns(sweep_cols(self.kind))
        self.set_class(self.kind == "binary", "-binary")
        self._fill_table()
        self.table.focus()

    # ------------------------------------------------------------------ views

    def _index_of(self, value: float) -> int:
        if not self.grid:
            return 0
        return min(range(len(self.grid)), key=lambda i: abs(self.grid[i] - value))

    @property
    def value(self) -> float:
        return self.grid[self.index] if self.grid else 0.0

    def row_at(self, split: str) -> dict[str, Any] | None:
        rows = self.sweeps.get(split)
        return rows[self.index] if rows else None

    def _fill_table(self) -> None:
        rows = [{**r, "key": f"{r['threshold']:.2f}"} for r in self.sweeps[self.split]]
        self._syncing = True
        self.table.set_rows(rows)
        self.table.move_cursor(row=self.index, animate=False)
        self._syncing = False
        self.query_one("#thr-left").border_title = f"sweep on {self.split} (tab: switch)"
        rows0 = self.sweeps[self.split]

        def curve(label: str, key: str, color: str) -> Curve:
            pts = [(r["threshold"], r[key]) for r in rows0 if r.get(key) is not None]
            return Curve(label, [p[0] for p in pts], [p[1] for p in pts], color=color)

        curves = [
            curve("precision", "precision", "cyan+"),
            curve("recall", "recall", "orange+"),
            curve("F1", "f1", "green+"),
        ]
        if self.kind != "binary":
            curves.append(curve("coverage", "coverage", "gray"))
        plot = self.query_one("#thr-plot", MetricPlot)
        plot.plot_title = f"{self.split}: precision / recall / F1 by threshold"
        plot.set_curves(curves, marker_x=self.value)
        self._show_figures()

    def _show_figures(self) -> None:
        self.query_one("#thr-plot", MetricPlot).set_marker(self.value)
        title = Text.from_markup(f"[b]thresholds[/b]  {self.path.name}  ·  {self.kind}")
        saved = self.saved or self.picked
        if saved:
            title.append(
                f"  ·  saved {saved['threshold']:.2f} ({saved.get('rule', 'manual')})",
                style="green",
            )
        self.query_one("#thr-title", Static).update(title)
        out = Text()
        out.append(f" threshold {self.value:.2f} ", style="bold reverse")
        rule = (
            "positive when p(class 1) >= t"
            if self.kind == "binary"
            else "accept when max prob >= t"
        )
        out.append(f"  {rule}", style="dim")
        if self.best_index is not None:
            out.append(f"  ·  best F1 on val at {self.grid[self.best_index]:.2f}", style="dim")
        for split in ("val", "test"):
            if split in self.sweeps:
                out.append(f"\n{split:<4} ", style="bold" if split == self.split else "")
                out.append(figures_line(self.row_at(split), self.kind))
        self.query_one("#thr-figures", Static).update(out)

    def figures_shown(self) -> dict[str, str]:
        """What the figures panel shows per split (for tests)."""
        return {s: figures_line(self.row_at(s), self.kind) for s in self.sweeps}

    # ------------------------------------------------------------------ actions

    def _set_index(self, i: int) -> None:
        if not self.grid:
            return
        self.index = max(0, min(len(self.grid) - 1, i))
        if self.table.cursor_row != self.index:
            self._syncing = True
            self.table.move_cursor(row=self.index, animate=False)
            self._syncing = False
        self._show_figures()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.loaded and not self._syncing and event.cursor_row != self.index:
            self.index = event.cursor_row
            self._show_figures()

    def action_move(self, delta: int) -> None:
        self._set_index(self.index + delta)

    def action_best(self) -> None:
        if self.best_index is None:
            self.notify("no F1 on val to pick from", severity="warning")
            return
        self._set_index(self.best_index)

    def action_switch_split(self) -> None:
        if len(self.sweeps) < 2:
            self.notify(
                f"only {', '.join(self.sweeps) or 'no'} predictions stored", severity="warning"
            )
            return
        self.split = "test" if self.split == "val" else "val"
        self._fill_table()

    def action_save(self) -> None:
        if getattr(self.app, "read_only", False):
            self.notify("read-only mode: threshold.json is not written", severity="warning")
            return
        if not self.loaded:
            return
        rule = "best-f1 on val" if self.index == self.best_index else "manual"
        self.save(self.value, rule)

    @work(thread=True, exclusive=True, exit_on_error=False, group="thr-save")
    def save(self, value: float, rule: str) -> None:
        from engine import evaluate

        try:
            data = evaluate.write_threshold(self.path, value, rule)
            self.post_message(self.Saved(data, None))
        except OSError as exc:
            self.post_message(self.Saved(None, f"cannot write threshold.json: {exc}"))

    def on_thresholds_screen_saved(self, msg: Saved) -> None:
        if msg.error or msg.data is None:
            self.notify(msg.error or "save failed", severity="error")
            return
        self.saved = msg.data
        self._show_figures()
        self.notify(
            f"saved threshold {msg.data['threshold']:.2f} to {self.path.name}/threshold.json"
        )

    def action_back(self) -> None:
        self.app.pop_screen()
