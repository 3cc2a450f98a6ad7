"""The columns of a run's metrics.jsonl that the TUI plots and tabulates, and downsampling.

Rows come from :class:`engine.runs.JsonlTail` (orjson, incremental). Only the figures the
screens show are kept: for ``step`` rows the step, time, epoch, train loss and lr in columns
and any other numeric key in a column of its own; for ``epoch`` rows a slim copy (the last
row per epoch number: a resumed run may repeat one) with every numeric key; of the
``examples`` rows of a translation run, the latest. The named keys are checked against
:mod:`engine.schema` at import. :meth:`RunSeries.points` gives any numeric key against the
step, the epoch or the wall time, optionally only the last N epochs; :func:`ema` smooths.
No torch here.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from engine.runs import TRANSLATION_ROW_KEYS, Tail, parse_rows
from engine.schema import METRIC_ROWS, EpochRow, keys

# the slim copy of an epoch row the screens keep
EPOCH_KEYS = keys(
    EpochRow,
    "epoch",
    "step",
    "t",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_top5",
    "val_per_class_acc",
    "val_macro_f1",
    "val_blank_share",  # CTC runs: the collapse signal
    "lr",
    "epoch_time_s",
    "best",
    # translation runs
    "train_token_acc",
    "val_token_acc",
    "val_bleu1",
    "val_bleu4",
    "val_chrf",
    "val_wer",
)

# curves a screen can ask for: key (one of EPOCH_KEYS: curves come from the slim copy) -> label
CURVES: dict[str, str] = {
    "train_loss": "train loss",
    "val_loss": "val loss",
    "val_acc": "val accuracy",
    "val_top5": "val top-5",
    "val_macro_f1": "val macro F1",
    "val_per_class_acc": "val per-class acc",
    "train_acc": "train accuracy",
    "lr": "learning rate",
    "val_bleu4": "val BLEU-4",
    "val_bleu1": "val BLEU-1",
    "val_chrf": "val chrF",
    "val_wer": "val WER",
    "val_token_acc": "val token acc",
    "val_blank_share": "val blank share",
}


_TRANSLATION = tuple(k for k in EPOCH_KEYS if k in TRANSLATION_ROW_KEYS)
# the keys of a row that place it (never plotted as a metric)
POSITION_KEYS = frozenset(("t", "epoch", "step", "step_in_epoch"))
_STEP_COLUMNS = POSITION_KEYS | {"kind", "train_loss", "lr"}
AXES = ("epoch", "step", "time")


def is_number(v: Any) -> bool:
    return type(v) in (int, float) and v == v  # not bool, not NaN


def ema(ys: Sequence[float], alpha: float, start: list[float] | None = None) -> list[float]:
    """Exponential moving average: ``s[0] = y[0]``, ``s[i] = alpha * s[i-1] + (1 - alpha) *
    y[i]`` (alpha 0: the values themselves). ``start`` (an earlier result for a prefix of
    ``ys``) is extended, not recomputed."""
    out = list(start) if start else []
    if alpha <= 0:
        return [float(y) for y in ys]
    b = 1.0 - alpha
    s = out[-1] if out else None
    for y in ys[len(out) :]:
        s = float(y) if s is None else alpha * s + b * y
        out.append(s)
    return out


class RunSeries:
    """Columnar store of one run's metrics, fed row batches as the file grows."""

    def __init__(self) -> None:
        self.step_x: list[float] = []  # global step of each step row
        self.step_t: list[float] = []
        self.step_loss: list[float] = []
        self.step_lr: list[float] = []
        self.step_epoch: list[int] = []  # the epoch in progress of each step row
        # any other numeric key of the step rows: (indices into the step columns, values)
        self.step_extra: dict[str, tuple[list[int], list[float]]] = {}
        self.t0: float | None = None  # the first row's time (the time axis starts there)
        self._keys: tuple[int, list[str]] | None = None
        self.epochs: dict[int, dict[str, Any]] = {}
        self.evals: list[dict[str, Any]] = []
        self.rows = 0
        self.lines = 0  # lines consumed, sampled-out step rows included
        self.sampled_out = 0  # step rows left out of the first read of a long file
        self.version = 0  # bumps whenever something was added
        self.last_step: dict[str, Any] | None = None
        self.examples: dict[str, Any] | None = None  # the latest examples row (translation)
        self.translation = False  # an epoch row with a translation figure was read
        self.ctc = False  # an epoch row with val_blank_share was read (a CTC model)

    def add_rows(self, rows: Iterable[dict[str, Any]]) -> int:
        """Take a batch of rows; returns how many new epoch rows it held."""
        sx, st, sl, slr = self.step_x, self.step_t, self.step_loss, self.step_lr
        se, extra = self.step_epoch, self.step_extra
        epochs = self.epochs
        new_epochs = 0
        n = 0
        last_step = None
        for r in rows:
            n += 1
            kind = r.get("kind")
            if self.t0 is None and is_number(r.get("t")):
                self.t0 = float(r["t"])
            if kind == "step":
                loss = r.get("train_loss")
                step = r.get("step")
                if loss is None or step is None:
                    continue
                i = len(sx)
                sx.append(step)
                st.append(r.get("t") or 0.0)
                sl.append(loss)
                slr.append(r.get("lr") or 0.0)
                se.append(r.get("epoch") or 0)
                for k in r.keys() - _STEP_COLUMNS:  # a set difference: C speed
                    v = r[k]
                    if type(v) in (int, float):
                        col = extra.get(k)
                        if col is None:
                            col = extra[k] = ([], [])
                        col[0].append(i)
                        col[1].append(v)
                last_step = r
            elif kind == "epoch":
                e = r.get("epoch") or 0
                if type(e) is not int:  # a row of the wrong shape (readers clean rows first)
                    continue
                if e not in epochs:
                    new_epochs += 1
                slim = {k: r.get(k) for k in EPOCH_KEYS}
                for k, v in r.items():
                    if k not in slim and type(v) in (int, float):
                        slim[k] = v
                epochs[e] = slim
                if not self.translation and any(slim[k] is not None for k in _TRANSLATION):
                    self.translation = True
                if not self.ctc and slim["val_blank_share"] is not None:
                    self.ctc = True
            elif kind == "eval":
                self.evals.append(r)
            elif kind == "examples":
                if isinstance(r.get("examples"), list):  # clean_row made it a list or null
                    self.examples = r
        if last_step is not None:
            self.last_step = last_step
        if n:
            self.rows += n
            self.lines += n
            self.version += 1
        return new_epochs

    # ------------------------------------------------------------------ views

    def epoch_rows(self) -> list[dict[str, Any]]:
        return [self.epochs[k] for k in sorted(self.epochs)]

    def last_epoch(self) -> dict[str, Any] | None:
        return self.epochs[max(self.epochs)] if self.epochs else None

    def curve(
        self, name: str, steps_per_epoch: int | None = None
    ) -> tuple[list[float], list[float], float]:
        """``(x, y, x_scale)`` of one curve; x * x_scale is in epochs. ``train_loss`` and
        ``lr`` use the step rows (the store's own lists, not copies: x is the global step,
        x_scale 1 / steps_per_epoch) when there are any, else the epoch rows."""
        if name in ("train_loss", "lr") and self.step_x and steps_per_epoch:
            ys = self.step_loss if name == "train_loss" else self.step_lr
            return self.step_x, ys, 1.0 / float(steps_per_epoch)
        xs: list[float] = []
        ys2: list[float] = []
        for k in sorted(self.epochs):
            v = self.epochs[k].get(name)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                xs.append(float(k))
                ys2.append(float(v))
        return xs, ys2, 1.0

    def numeric_keys(self) -> list[str]:
        """Every numeric key of the step and epoch rows read so far (not the row's place:
        epoch, step, t), sorted."""
        if self._keys is not None and self._keys[0] == self.version:
            return self._keys[1]
        found = set(self.step_extra)
        if self.step_x:
            found |= {"train_loss", "lr"}
        for r in self.epochs.values():
            found.update(k for k, v in r.items() if is_number(v))
        out = sorted(found - POSITION_KEYS)
        self._keys = (self.version, out)
        return out

    def in_steps(self, key: str) -> bool:
        """Whether ``key`` is plotted from the step rows (where they have it)."""
        return key in self.step_extra or (key in ("train_loss", "lr") and bool(self.step_x))

    def last_epoch_seen(self) -> int:
        """The latest epoch number of any row (the one in progress included)."""
        e = max(self.epochs) if self.epochs else 0
        return max(e, self.step_epoch[-1]) if self.step_epoch else e

    def time_unit(self) -> tuple[str, float]:
        """``(label, seconds per unit)`` for the time axis: minutes, or hours past 3 h."""
        last = self.step_t[-1] if self.step_t else None
        for e in self.epochs.values():
            if is_number(e.get("t")) and (last is None or e["t"] > last):
                last = e["t"]
        span = (last or 0.0) - (self.t0 or 0.0)
        return ("hours", 3600.0) if span > 3 * 3600 else ("minutes", 60.0)

    def points(
        self,
        key: str,
        axis: str = "epoch",
        steps_per_epoch: int | None = None,
        last_n: int | None = None,
    ) -> tuple[Sequence[float], Sequence[float], float, float]:
        """``(x, y, x_scale, x_offset)`` of ``key`` (plotted x = (x - x_offset) * x_scale):
        from the step rows when they have it, else the epoch rows; ``axis`` is ``epoch``
        (fractional for step rows: steps / ``steps_per_epoch``), ``step`` or ``time`` (the
        unit of :meth:`time_unit` since the first row). ``last_n``: only the points of the
        last ``last_n`` epochs. Unzoomed train loss and lr are the store's own lists."""
        spe = steps_per_epoch or self._spe_estimate()
        thr = self.last_epoch_seen() - last_n if last_n else None
        if self.in_steps(key) and (axis != "epoch" or spe):
            if axis == "time":
                xs_all: list[float] = self.step_t
                scale, offset = 1.0 / self.time_unit()[1], self.t0 or 0.0
            else:
                xs_all = self.step_x
                scale, offset = (1.0 / spe if axis == "epoch" and spe else 1.0), 0.0
            if key in ("train_loss", "lr"):
                ys_all = self.step_loss if key == "train_loss" else self.step_lr
                if thr is None:
                    return xs_all, ys_all, scale, offset
                i0 = bisect_right(self.step_epoch, thr)
                return xs_all[i0:], ys_all[i0:], scale, offset
            idx, vals = self.step_extra[key]
            se = self.step_epoch
            pairs = [
                (xs_all[i], v) for i, v in zip(idx, vals, strict=True) if thr is None or se[i] > thr
            ]
            return [p[0] for p in pairs], [p[1] for p in pairs], scale, offset
        xs: list[float] = []
        ys: list[float] = []
        for k in sorted(self.epochs):
            if thr is not None and k <= thr:
                continue
            r = self.epochs[k]
            v = r.get(key)
            if not is_number(v):
                continue
            if axis == "step":
                x = r.get("step") if is_number(r.get("step")) else k * (spe or 1)
            elif axis == "time":
                if not is_number(r.get("t")):
                    continue
                x = r["t"]
            else:
                x = k
            xs.append(float(x))
            ys.append(float(v))
        if axis == "time":
            return xs, ys, 1.0 / self.time_unit()[1], self.t0 or 0.0
        return xs, ys, 1.0, 0.0

    def _spe_estimate(self) -> int | None:
        """Steps per epoch from the latest epoch row (when run.json does not say)."""
        if not self.epochs:
            return None
        k = max(self.epochs)
        step = self.epochs[k].get("step")
        return int(step // k) if is_number(step) and k > 0 and step >= k else None

    def best_epoch(self) -> int | None:
        best = [k for k, r in self.epochs.items() if r.get("best")]
        return max(best) if best else None

    def rate_s_per_step(self, window: int = 200) -> float | None:
        """Seconds per optimizer step over the last ``window`` step rows (None: too few)."""
        n = len(self.step_x)
        if n < 2:
            return None
        i = max(0, n - window)
        ds = self.step_x[-1] - self.step_x[i]
        dt = self.step_t[-1] - self.step_t[i]
        if ds <= 0 or dt <= 0:
            return None
        return dt / ds


def downsample(
    xs: Sequence[float], ys: Sequence[float], n: int
) -> tuple[Sequence[float], Sequence[float]]:
    """At most ``n`` points: consecutive points are averaged in equal-count buckets (a
    plot cannot show more points than it has character cells; averaging keeps the trend of
    a noisy loss curve). The last point is kept as is, so the curve ends where the run is."""
    m = len(xs)
    if m <= n or n < 2:
        return xs, ys
    import numpy as np

    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    buckets = n - 1
    edges = (np.arange(buckets) * (m - 1)) // buckets
    counts = np.diff(np.append(edges, m - 1))
    xo = np.add.reduceat(x[:-1], edges) / counts
    yo = np.add.reduceat(y[:-1], edges) / counts
    return [*xo.tolist(), float(x[-1])], [*yo.tolist(), float(y[-1])]


# the rows a first read never samples out: every kind but step (compact orjson and
# json.dumps spacing)
_KEEP_MARKS = tuple(
    mark
    for kind in METRIC_ROWS
    if kind != "step"
    for mark in (f'"kind":"{kind}"'.encode(), f'"kind": "{kind}"'.encode())
)


def _line_starts(data: bytes, keep_steps: int, tail_lines: int) -> list[int]:
    """Start offsets of the lines to parse in a long file: about ``keep_steps`` lines at
    even byte intervals, every epoch/eval line, and the last ``tail_lines`` lines."""
    starts: set[int] = set()
    size = len(data)
    stride = size / keep_steps
    for i in range(keep_steps):
        starts.add(data.rfind(b"\n", 0, int(i * stride)) + 1)
    for mark in _KEEP_MARKS:
        pos = data.find(mark)
        while pos >= 0:
            starts.add(data.rfind(b"\n", 0, pos) + 1)
            pos = data.find(mark, pos + len(mark))
    pos = size
    for _ in range(tail_lines):
        nl = data.rfind(b"\n", 0, pos)
        starts.add(nl + 1)
        if nl < 0:
            break
        pos = nl
    return sorted(starts)


def read_initial(
    path: str | Path, keep_steps: int = 4000, tail_lines: int = 400
) -> tuple[RunSeries, int]:
    """The first read of a metrics.jsonl: ``(series, byte offset after the last whole line)``
    (hand the offset to a :class:`engine.runs.JsonlTail` for the reads that follow).

    A long file is mostly step rows, and a plot shows a few thousand points at most, so
    beyond ``2 * keep_steps`` lines only about ``keep_steps`` lines at even intervals, every
    epoch and eval row, and the last ``tail_lines`` lines are parsed: a 100,000-line file
    opens in a fraction of the time a full parse takes. A torn last line is left for the
    tail; a line that is not valid JSON, or a row of the wrong shape (``"epoch": "x"``), is
    skipped (as JsonlTail does: :func:`engine.runs.clean_row`).
    """
    series = RunSeries()
    tail = Tail(path)
    data = tail.read_chunk()
    if data is None:
        return series, tail.offset
    n = data.count(b"\n") + 1
    if n > 2 * keep_steps:
        starts = _line_starts(data, keep_steps, tail_lines)
        lines = []
        for st in starts:
            stop = data.find(b"\n", st)
            lines.append(data[st : stop if stop >= 0 else len(data)])
    else:
        lines = data.split(b"\n")
    series.add_rows(parse_rows(lines)[0])
    series.sampled_out = n - len(lines)
    series.lines += series.sampled_out
    return series, tail.offset
