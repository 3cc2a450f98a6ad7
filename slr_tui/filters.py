"""The runs filter: what the runs screen's ``/`` box and ``slr runs --filter`` take.

Terms are separated by spaces and all must hold (AND); ``!`` before a term negates it:

- plain text: a case-insensitive substring of the run's id, status, preset, dataset or tags
  (``demo``, ``fin``), as the box always matched;
- ``KEY:PATTERN``: ``tag``, ``preset``, ``status``, ``dataset``, ``model``, ``sweep``,
  ``id`` or ``note``, matched with shell wildcards, case-insensitively
  (``tag:baseline``, ``preset:wlasl*``, ``status:finished``, ``note:*rerun*``); ``tag:``
  holds when any of the run's tags matches;
- ``NAME OP NUMBER`` with OP one of ``> >= < <= = == !=``: a figure of the run
  (``val_acc>0.5``, ``test_acc>=0.8``, ``epoch<10``, ``lr<=1e-3``, ``val_acc>50%``); a run
  without that figure never matches. The figures (:func:`run_fields`): ``epoch``,
  ``max_epochs``, ``best`` (the chosen checkpoint's monitored figure), ``val_acc`` /
  ``test_acc`` / ``val_f1`` / ``test_f1`` (the final evaluation's, else for val the best
  so far), ``lr`` and ``batch_size`` (the config's), ``duration`` (seconds), ``params``,
  and every number of the latest epoch row (``val_loss``, ``train_loss``, ...);
- ``archived``: archived runs (the list shows them only when asked for).

A bad term raises :class:`FilterError`, whose text is one line for people. Torch-free
(and Textual-free): the CLI and the TUI share it.
"""

from __future__ import annotations

import fnmatch
import math
import operator
import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FIELD_KEYS", "Filter", "FilterError", "parse", "rerun_command", "run_fields"]

FIELD_KEYS = ("tag", "preset", "status", "dataset", "model", "sweep", "id", "note")
TEXT_KEYS = ("id", "status", "preset", "dataset")  # what plain text matches (and tags)
# what run_fields adds to a runs-screen row (the rest the row has already)
EXTRA_KEYS = ("tags", "note", "metrics", "model", "study", "lr", "batch", "test_acc")
OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}
_COMPARE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)?(>=|<=|!=|==|>|<|=)(.*)$")
_SPACED_OP = re.compile(r"\s*(>=|<=|!=|==|>|<)\s*")
# results.json keys -> the short names the filter uses (val_acc, test_f1, ...)
_RESULT_NAMES = {
    "accuracy": "acc",
    "top5_accuracy": "top5",
    "per_class_accuracy": "per_class_acc",
    "macro_f1": "f1",
    "bleu4": "bleu4",
    "chrf": "chrf",
    "wer": "wer",
    "nll": "nll",
}


class FilterError(ValueError):
    """A filter that cannot be read; ``str()`` is one line."""


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Term:
    kind: str  # text | field | compare | archived
    key: str = ""  # the field key or the figure name
    value: Any = None  # the text (lower case), the pattern (lower case) or the number
    op: str = ""
    negate: bool = False

    def holds(self, row: Mapping[str, Any]) -> bool:
        return self._holds(row) != self.negate

    def _holds(self, row: Mapping[str, Any]) -> bool:
        if self.kind == "archived":
            return bool(row.get("archived"))
        if self.kind == "text":
            hay = " ".join(str(row.get(k) or "") for k in TEXT_KEYS)
            hay += " " + " ".join(row.get("tags") or ())
            return self.value in hay.lower()
        if self.kind == "field":
            if self.key == "tag":
                return any(
                    fnmatch.fnmatchcase(t.lower(), self.value) for t in row.get("tags") or ()
                )
            keys = ("sweep", "study") if self.key == "sweep" else (self.key,)
            return any(fnmatch.fnmatchcase(str(row.get(k) or "").lower(), self.value) for k in keys)
        v = (row.get("metrics") or {}).get(self.key)
        return _number(v) and OPS[self.op](float(v), self.value)


@dataclass(frozen=True)
class Filter:
    """Parsed terms; call it on a row (:func:`run_fields`) to know whether it is kept."""

    text: str
    terms: tuple[Term, ...]

    def __call__(self, row: Mapping[str, Any]) -> bool:
        return all(t.holds(row) for t in self.terms)

    @property
    def wants_archived(self) -> bool:
        """The filter asks for archived runs (the list must include them)."""
        return any(t.kind == "archived" and not t.negate for t in self.terms)

    @property
    def figures(self) -> tuple[str, ...]:
        """The figure names its comparisons use."""
        return tuple(dict.fromkeys(t.key for t in self.terms if t.kind == "compare"))

    def missing_figures(self, rows: list[Mapping[str, Any]]) -> list[str]:
        """Figures no row has (a typo, or a figure of other runs): worth a word to the user."""
        have = {k for r in rows for k in (r.get("metrics") or {})}
        return [f for f in self.figures if f not in have]


def _parse_number(text: str, term: str) -> float:
    t = text.strip()
    scale = 1.0
    if t.endswith("%"):
        t, scale = t[:-1], 0.01
    try:
        v = float(t) * scale
    except ValueError:
        raise FilterError(f"'{text}' is not a number (in {term})") from None
    if not math.isfinite(v):
        raise FilterError(f"'{text}' is not a finite number (in {term})")
    return v


def _term(tok: str) -> Term:
    negate = tok.startswith("!")
    body = tok[1:] if negate else tok
    if not body:
        raise FilterError("'!' must come before a term (!tag:old, !status:failed)")
    if body.lower() == "archived":
        return Term("archived", negate=negate)
    m = _COMPARE.match(body)
    if m and (m.group(1) or ":" not in body):
        name, op, value = m.groups()
        if not name:
            raise FilterError(f"'{tok}': a comparison needs a figure before {op} (val_acc>0.5)")
        if not value.strip():
            raise FilterError(f"'{tok}': a comparison needs a number after {op} (val_acc>0.5)")
        return Term("compare", name.lower(), _parse_number(value, tok), op, negate)
    if ":" in body:
        key, _, pattern = body.partition(":")
        key = key.lower()
        if key not in FIELD_KEYS:
            keys = ", ".join(f"{k}:" for k in FIELD_KEYS)
            raise FilterError(f"unknown filter '{key}:' (use {keys} or a comparison)")
        if not pattern:
            raise FilterError(f"'{tok}' needs a value ({key}:baseline, preset:wlasl*)")
        return Term("field", key, pattern.lower(), negate=negate)
    return Term("text", value=body.lower(), negate=negate)


def parse(text: str) -> Filter | None:
    """The filter ``text`` says; None when it is empty; :class:`FilterError` (one line)
    when a term cannot be read."""
    text = text or ""
    if not text.strip():
        return None
    try:
        tokens = shlex.split(_SPACED_OP.sub(lambda m: m.group(1), text))
    except ValueError as exc:  # an open quote
        raise FilterError(f"cannot read the filter: {str(exc).lower()}") from None
    return Filter(text, tuple(_term(t) for t in tokens if t))


# --------------------------------------------------------------------------- what a run offers


def _config_values(cfg: Mapping[str, Any]) -> dict[str, Any]:
    optim = cfg.get("optim") if isinstance(cfg.get("optim"), Mapping) else {}
    data = cfg.get("data") if isinstance(cfg.get("data"), Mapping) else {}
    model = cfg.get("model") if isinstance(cfg.get("model"), Mapping) else {}
    out: dict[str, Any] = {}
    if _number(optim.get("lr")):
        out["lr"] = float(optim["lr"])
    if _number(data.get("batch_size")):
        out["batch_size"] = data["batch_size"]
    if isinstance(model.get("name"), str):
        out["model"] = model["name"]
    return out


def run_fields(
    meta: Mapping[str, Any],
    *,
    status: str,
    config: Mapping[str, Any] | None = None,
    tags: list[str] | None = None,
    note: str = "",
    duration: float | None = None,
) -> dict[str, Any]:
    """What the filter (and the wide runs table) reads of a run, from its run.json
    ``meta``, its (viewer) ``status``, its config.json and its notes: the fields of
    ``KEY:`` terms and ``metrics``, the numbers comparisons look up. Cheap: nothing is
    read here."""
    metrics: dict[str, float] = {}
    last = meta.get("last_metrics")
    if isinstance(last, Mapping):
        metrics.update((k, float(v)) for k, v in last.items() if _number(v) and k != "t")
    for key, name in (
        ("epoch", "epoch"),
        ("max_epochs", "max_epochs"),
        ("best_metric", "best"),
        ("num_params", "params"),
        ("num_classes", "num_classes"),
    ):
        if _number(meta.get(key)):
            metrics[name] = float(meta[key])
    if "epoch" not in metrics:
        metrics["epoch"] = 0.0
    if _number(meta.get("best_val_acc")):
        metrics["val_acc"] = float(meta["best_val_acc"])
    elif meta.get("monitor", "val_acc") == "val_acc" and _number(meta.get("best_metric")):
        metrics["val_acc"] = float(meta["best_metric"])  # a run.json before best_val_acc
    results = meta.get("results")
    if isinstance(results, Mapping):
        for split in ("val", "test"):
            figs = results.get(split)
            if not isinstance(figs, Mapping):
                continue
            for key, short in _RESULT_NAMES.items():
                if _number(figs.get(key)):
                    metrics[f"{split}_{short}"] = float(figs[key])
    if duration is not None and _number(duration):
        metrics["duration"] = float(duration)
    conf = _config_values(config or {})
    for k in ("lr", "batch_size"):
        if k in conf:
            metrics[k] = float(conf[k])
    return {
        "id": meta.get("id") or "",
        "status": status,
        "preset": meta.get("preset") or "",
        "dataset": meta.get("dataset") or "",
        "sweep": meta.get("sweep"),
        "study": meta.get("study"),
        "model": conf.get("model", ""),
        "tags": list(tags or ()),
        "note": note or "",
        "metrics": metrics,
        "lr": conf.get("lr"),
        "batch": conf.get("batch_size"),
        "test_acc": metrics.get("test_acc"),
    }


def rerun_command(run_dir: str | Path, runs_root: str | Path, default_root: str | Path) -> str:
    """The exact command line that trains ``run_dir``'s config again: ``slr run --config
    RUN/config.json``, with ``--runs-dir`` when the run store is not the default one
    (absolute paths, quoted for a POSIX shell)."""
    cfg = os.path.abspath(Path(run_dir) / "config.json")
    cmd = ["slr", "run", "--config", cfg]
    root = os.path.abspath(runs_root)
    if root != os.path.abspath(default_root):
        cmd += ["--runs-dir", root]
    return shlex.join(cmd)
