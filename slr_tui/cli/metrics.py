"""``slr check-metrics``: a run's final metrics against reference values, for users' CI.

Torch-free: it reads the run folder through :mod:`engine.runs` (``RunInfo.report`` is
eval/report.json through ``clean_report``; ``iter_epochs`` the epoch rows of
metrics.jsonl) and starts no engine job.

The reference file (REF.json) is one JSON object; each key names a metric, each value
says what it must be::

    {
      "test.accuracy": {"value": 0.90, "tolerance": 0.02},
      "val.nll":       {"max": 1.5},
      "epoch.val_acc": {"min": 0.5, "max": 1.0}
    }

- a key ``SPLIT.FIGURE`` (any dotted path) is read from eval/report.json: ``test.accuracy``,
  ``val.macro_f1``, ``val.bleu4`` of a translation run, ``beam.test.bleu4`` where the
  report nests it;
- a key ``epoch.FIELD`` is read from the last epoch row of metrics.jsonl (``val_loss``,
  ``val_acc``, ``train_loss``, ...);
- ``value`` with ``tolerance`` (default 0) passes when ``|actual - value| <= tolerance``;
  ``min`` and ``max`` are inclusive bounds; they combine (all given must hold), and at
  least one of ``value``, ``min``, ``max`` is required.

A metric the run does not have (no report yet, no such figure, not a number) is a failure
with its reason. Exit codes: 0 every metric in range, 1 one out of range or missing,
2 a bad REF.json or an unknown run (one line).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from engine import runs
from slr_tui import tables
from slr_tui.cli.options import JsonOpt, RunsDirOpt, run_ref
from slr_tui.cli.render import console, fail

EPOCH = "epoch"  # the prefix of a key read from the last epoch row
FIELDS = ("value", "tolerance", "min", "max")


class BadReference(ValueError):
    """A reference file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Reference:
    """One metric's expectation (see the module docstring)."""

    metric: str
    value: float | None = None
    tolerance: float = 0.0
    min: float | None = None
    max: float | None = None

    def check(self, actual: float) -> tuple[bool, str | None]:
        """(ok, why not) for the run's figure ``actual``."""
        if self.value is not None and not abs(actual - self.value) <= self.tolerance:
            return False, f"off by {abs(actual - self.value):.4g}"
        if self.min is not None and not actual >= self.min:
            return False, f"below {self.min:g}"
        if self.max is not None and not actual <= self.max:
            return False, f"above {self.max:g}"
        return True, None


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parse_reference(raw: Any, source: str = "REF.json") -> list[Reference]:
    """The references of a decoded REF.json, or BadReference (one line) saying what is wrong."""
    if not isinstance(raw, dict):
        raise BadReference(f"{source} must hold a JSON object of metric: {{...}} entries")
    if not raw:
        raise BadReference(f"{source} names no metrics")
    out = []
    for metric, spec in raw.items():
        where = f"{source}: '{metric}'"
        if not metric.strip() or metric.startswith(".") or metric.endswith("."):
            raise BadReference(f"{source}: '{metric}' is not a metric name (e.g. test.accuracy)")
        if not isinstance(spec, dict):
            raise BadReference(
                f'{where} must be an object: {{"value": V, "tolerance": T}}, {{"min": A}} '
                f'or {{"max": B}}'
            )
        unknown = [k for k in spec if k not in FIELDS]
        if unknown:
            raise BadReference(
                f"{where} has unknown key '{unknown[0]}' (known: {', '.join(FIELDS)})"
            )
        for k, v in spec.items():
            if not _number(v):
                raise BadReference(f"{where}: {k} must be a finite number, not {v!r}")
        if not any(k in spec for k in ("value", "min", "max")):
            raise BadReference(f"{where} needs value (with tolerance), min or max")
        if "tolerance" in spec and "value" not in spec:
            raise BadReference(f"{where}: tolerance needs a value to be a tolerance of")
        if spec.get("tolerance", 0) < 0:
            raise BadReference(f"{where}: tolerance must not be negative")
        if "min" in spec and "max" in spec and spec["min"] > spec["max"]:
            raise BadReference(f"{where}: min {spec['min']} is above max {spec['max']}")
        out.append(
            Reference(
                metric,
                value=spec.get("value"),
                tolerance=float(spec.get("tolerance", 0.0)),
                min=spec.get("min"),
                max=spec.get("max"),
            )
        )
    return out


def load_reference(path: Path) -> list[Reference]:
    """REF.json read and parsed; BadReference (one line) for anything unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadReference(f"no reference file at {path}") from None
    except IsADirectoryError:
        raise BadReference(f"{path} is a folder, not a reference file") from None
    except UnicodeDecodeError:
        raise BadReference(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise BadReference(f"cannot read {path}: {runs.os_error_line(exc)}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadReference(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    return parse_reference(raw, str(path))


def _lookup(tree: Any, parts: list[str], where: str) -> tuple[float | None, str | None]:
    """The number at the dotted path ``parts`` in ``tree``, or None and why not."""
    node = tree
    for i, p in enumerate(parts):
        if not isinstance(node, dict) or p not in node:
            at = ".".join(parts[:i]) or where
            known = sorted(str(k) for k in node) if isinstance(node, dict) else []
            more = ", ..." if len(known) > 8 else ""
            hint = f" (has: {', '.join(known[:8])}{more})" if known else ""
            return None, f"no '{p}' in {at}{hint}"
        node = node[p]
    if not _number(node):
        return None, f"not a number in {where} ({node!r})"
    return float(node), None


def actual_values(
    run: runs.RunInfo, refs: list[Reference]
) -> dict[str, tuple[float | None, str | None]]:
    """metric -> (the run's figure, or None and why it is missing)."""
    report = run.report()
    wants_epochs = any(r.metric.split(".", 1)[0] == EPOCH for r in refs)
    epochs = list(runs.iter_epochs(run.metrics())) if wants_epochs else []
    out: dict[str, tuple[float | None, str | None]] = {}
    for r in refs:
        parts = r.metric.split(".")
        if parts[0] == EPOCH and len(parts) > 1:
            if not epochs:
                out[r.metric] = (None, "no epoch rows in metrics.jsonl")
                continue
            last = epochs[-1]
            out[r.metric] = _lookup(last, parts[1:], f"epoch {last.get('epoch')}'s row")
        elif report is None:
            out[r.metric] = (None, "no eval/report.json (the run has not finished evaluating)")
        else:
            out[r.metric] = _lookup(report, parts, "eval/report.json")
    return out


def check_run(run: runs.RunInfo, refs: list[Reference]) -> list[dict[str, Any]]:
    """One row per reference: metric, bounds, actual, ok, why (None when ok)."""
    got = actual_values(run, refs)
    rows = []
    for r in refs:
        actual, why = got[r.metric]
        ok = False
        if actual is not None:
            ok, why = r.check(actual)
        rows.append(
            {
                "metric": r.metric,
                "value": r.value,
                "tolerance": r.tolerance if r.value is not None else None,
                "min": r.min,
                "max": r.max,
                "actual": actual,
                "ok": ok,
                "why": why,
            }
        )
    return rows


def check_metrics(
    ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique prefix, or path.")],
    reference: Annotated[
        Path,
        typer.Option(
            "--reference",
            "-r",
            metavar="REF.json",
            help='Reference values, e.g. {"test.accuracy": {"value": 0.9, "tolerance": 0.02}, '
            '"val.nll": {"max": 1.5}, "epoch.val_acc": {"min": 0.5}}.',
        ),
    ],
    runs_dir: RunsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a run's final metrics against reference values (exit 1 when one is out).

    REF.json is one JSON object, metric -> what it must be. A metric is SPLIT.FIGURE read
    from eval/report.json (test.accuracy, val.macro_f1, val.nll, val.bleu4 of a
    translation run, any dotted path into the report) or epoch.FIELD read from the last
    epoch row of metrics.jsonl (epoch.val_loss, epoch.val_acc). Each takes
    {"value": V, "tolerance": T} (|actual - V| <= T; T defaults to 0), {"min": A},
    {"max": B}, or a combination (all must hold). A metric the run lacks fails with its
    reason. Exit 0: all in range; 1: one out or missing; 2: a bad REF.json or run.
    """
    try:
        refs = load_reference(reference)
    except BadReference as exc:
        raise fail(str(exc)) from None
    run = run_ref(ref, runs_dir)
    rows = check_run(run, refs)
    ok = all(r["ok"] for r in rows)
    if as_json:
        out = {"run": run.id, "reference": str(reference), "ok": ok, "metrics": rows}
        typer.echo(json.dumps(out, indent=2))
    else:
        console.print(tables.metrics_check_table(run.id, rows))
        bad = sum(not r["ok"] for r in rows)
        if ok:
            console.print(f"[green]all {len(rows)} metrics within the reference[/]")
        else:
            console.print(
                f"[bold red]{bad} of {len(rows)} metrics out of the reference[/]",
                highlight=False,
            )
    if not ok:
        raise typer.Exit(1)
