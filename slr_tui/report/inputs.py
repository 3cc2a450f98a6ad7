"""What a report reads from one run folder, through the tolerant readers of
:mod:`engine.runs` and :mod:`engine.evaluate`: the curves (metrics.jsonl), the evaluation
(``eval/`` or ``eval-<name>/``: report.json, predictions.npz, per_class.csv) and the
calibrated threshold (threshold.json). Whatever is missing or damaged becomes a reason a
figure or table is left out, never an exception. numpy/scikit-learn, no torch, no plots."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import runs
from slr_tui.widgets._series import RunSeries, read_initial

SPLITS = ("test", "val")


class ReportError(Exception):
    """One line: why no report can be written for what was asked."""


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


@dataclass
class RunInputs:
    """One run's inputs to the report. ``split`` is the evaluated split the figures use
    (None without an evaluation); ``skipped`` collects (what, why) for what cannot be drawn."""

    path: Path
    info: runs.RunInfo
    series: RunSeries
    eval_dir: Path
    report: dict[str, Any] | None = None
    split: str | None = None
    splits: list[str] = field(default_factory=list)
    y: np.ndarray | None = None
    probs: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    per_class: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    threshold: float | None = None  # the calibrated one (threshold.json, else the report's)
    threshold_rule: str | None = None
    eval_problem: str | None = None  # why there is no evaluation to draw from
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def task(self) -> str:
        """``translation``, ``binary``, ``multiclass``, or ``unknown`` (no evaluation and
        no class count in run.json)."""
        rep = self.report or {}
        if rep.get("task") == "translation" or self.info.translation:
            return "translation"
        n = self.num_classes
        if n is None:
            return "unknown"
        return "binary" if n == 2 else "multiclass"

    @property
    def num_classes(self) -> int | None:
        rep = self.report or {}
        for v in (rep.get("num_classes"), self.info.meta.get("num_classes")):
            if type(v) is int and v > 0:
                return v
        if self.class_names:
            return len(self.class_names)
        return None

    def skip(self, what: str, why: str) -> None:
        self.skipped.append((what, why))


def load_inputs(path: Path, split: str | None = None, eval_name: str | None = None) -> RunInputs:
    """Read one run folder. Raises :class:`ReportError` only for what the user named that
    is not there (``eval_name``'s folder); a run still training, or one that failed before
    its evaluation, loads with ``eval_problem`` saying why."""
    from engine import evaluate  # numpy + scikit-learn

    path = Path(path)
    try:
        info = runs.load_run(path)
    except runs.RunError as exc:
        raise ReportError(str(exc)) from None
    series, _ = read_initial(path / runs.METRICS)
    if eval_name is not None:
        eval_dir = path / f"eval-{eval_name}"
        if not eval_dir.is_dir():
            have = sorted(p.name for p in path.glob("eval-*") if p.is_dir())
            raise ReportError(
                f"run {info.id} has no eval-{eval_name}/ "
                f"(evaluations: {', '.join(have) or 'none'}; `slr eval` writes them)"
            )
    else:
        eval_dir = path / runs.EVAL_DIR
    inp = RunInputs(path=path, info=info, series=series, eval_dir=eval_dir)

    raw = runs.read_json(eval_dir / evaluate.REPORT_FILE)
    inp.report = runs.clean_report(raw)
    if inp.report is None:
        if info.status in runs.ACTIVE:
            inp.eval_problem = f"no evaluation yet: the run is {info.status}"
        elif info.status in ("failed", "stopped", "lost"):
            inp.eval_problem = f"no evaluation: the run {info.status} before it was evaluated"
        elif (eval_dir / evaluate.REPORT_FILE).exists():
            inp.eval_problem = f"{eval_dir.name}/report.json cannot be read"
        else:
            inp.eval_problem = f"no {eval_dir.name}/report.json"
    rep = inp.report or {}
    inp.splits = [s for s in SPLITS if isinstance(rep.get(s), dict)]
    if inp.report is not None and inp.task != "translation":
        try:
            stored = evaluate.prediction_splits(eval_dir)
        except (OSError, ValueError):
            stored = []
        inp.splits = [s for s in SPLITS if s in inp.splits or s in stored]
    if split is not None:
        if inp.report is not None and split not in inp.splits:
            inp.eval_problem = f"no split '{split}' in {eval_dir.name}/ (stored: {', '.join(inp.splits) or 'none'})"
        else:
            inp.split = split if inp.report is not None else None
    elif inp.splits:
        inp.split = inp.splits[0]  # test when present, else val
    elif inp.report is not None:
        inp.eval_problem = f"{eval_dir.name}/ holds no val or test split"
    if inp.report is not None and inp.task != "translation":
        for s in inp.splits:
            inp.per_class[s] = evaluate.read_per_class(eval_dir, s, include_absent=True)
        if inp.split is not None:
            try:
                _, y, probs, names = evaluate.load_predictions(eval_dir, inp.split)
                inp.y, inp.probs, inp.class_names = y, np.asarray(probs), names
            except (OSError, ValueError) as exc:
                inp.skip("predictions", f"{eval_dir.name}/predictions.npz: {exc}")
        if not inp.class_names and isinstance(rep.get("class_names"), list):
            inp.class_names = [str(n) for n in rep["class_names"]]
    thr = runs.read_json(path / "threshold.json") or {}
    if _num(thr.get("threshold")) is not None:
        inp.threshold, inp.threshold_rule = _num(thr["threshold"]), str(thr.get("rule") or "")
    elif isinstance(rep.get("calibration"), dict):
        cal = rep["calibration"]
        inp.threshold, inp.threshold_rule = _num(cal.get("threshold")), str(cal.get("rule") or "")
    return inp
