"""The engine's jobs besides training: ``check``, ``extract``, ``predict``, ``export`` and
``eval``.

``python -m engine JOB ...`` runs one (see ``engine/__main__.py``; ``slr_tui/launch.py``
starts them). A job reports only through files, never by printing for people, so the CLI
and the TUI render the same facts without importing torch:

- its result, one JSON object: ``check`` the report of :func:`engine.data.check_data`
  (``--out``), ``extract`` the summary of :func:`engine.extract.extract` (``--summary``),
  ``predict`` ``{"predictions": [...]}`` (``--out``), ``export`` the result of
  :func:`engine.export.export_onnx` (``--out``), ``eval`` the result of
  :func:`engine.predict.evaluate_run` (``--out``: eval_dir, name, report, skipped_unknown);
- progress rows appended to ``--progress`` (JSONL, read with
  :class:`engine.runs.JsonlTail`); each has a ``kind``::

      {"kind": "probe", "done": 3, "total": 40}     videos probed (check, extract)
      {"kind": "plan", "selected": 40, "todo": 37, ...}          what extract will do
      {"kind": "video", "done": 2, "total": 37, "frames": 96, "fps": 11.5}   extract
      {"kind": "file", "done": 1, "total": 2}        files classified (predict)
      {"kind": "batch", "done": 5, "total": 12}      batches scored (eval, all splits)
      {"kind": "summary", ...}                       extract's summary, as in --summary
      {"kind": "stage", "stage": "exporting (torchscript)"}   what export (eval) does now
      {"kind": "check", "done": 2, "total": 4}       batches compared (export)
      {"kind": "end", "code": 0, "error": null}      always the last row

Bad input (ConfigError, DataError, ModelError, ExtractError) and OSError end a job with
``{"error": "one line"}`` as its result, the same line in the ``end`` row and a non-zero
exit code (:data:`EXIT_BAD_INPUT`, :data:`EXIT_FAILED`), never a traceback. torch is
imported inside the job bodies only.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import runs
from engine.config import ConfigError, RunConfig, load_file, validate
from engine.errors import DataError, ModelError
from engine.holistic import ExtractError

EXIT_OK = 0
EXIT_FAILED = 1  # an OSError, nothing extracted, an internal error
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
BAD_INPUT = (ConfigError, DataError, ModelError, ExtractError)
END = "end"
ROWS_PER_S = 10  # probe rows at most this often: a big dataset probes thousands of videos


@dataclass
class Done:
    """How a job body ended: its result, exit code and (for a failure) the one line why."""

    result: dict[str, Any]
    code: int = EXIT_OK
    error: str | None = None


class Reporter:
    """Writes a job's progress rows and, once, its result or its error."""

    def __init__(self, result: str | Path, progress: str | Path | None = None) -> None:
        self.result = Path(result)
        self.progress = Path(progress) if progress else None
        self._last_row: dict[str, float] = {}

    def row(self, kind: str, **fields: Any) -> None:
        if self.progress is not None:
            runs.append_jsonl(self.progress, runs.to_jsonable({"kind": kind, **fields}))

    def throttled(self, kind: str) -> Callable[[int, int], None]:
        """A ``(done, total)`` callback writing a ``kind`` row at most :data:`ROWS_PER_S`
        times a second, and always the last one."""

        def emit(done: int, total: int) -> None:
            now = time.monotonic()
            if done < total and now - self._last_row.get(kind, 0.0) < 1 / ROWS_PER_S:
                return
            self._last_row[kind] = now
            self.row(kind, done=done, total=total)

        return emit

    def finish(self, done: Done) -> int:
        """Write the result and the end row; an error here (a full disk) is one line on
        stderr and the exit code says the job failed."""
        try:
            runs.atomic_write_json(self.result, done.result)
            self.row(END, code=done.code, error=done.error)
        except OSError as exc:
            print(
                f"error: cannot write the job's result: {runs.os_error_line(exc)}", file=sys.stderr
            )
            return done.code or EXIT_FAILED
        return done.code

    def fail(self, line: str, code: int) -> int:
        return self.finish(Done({"error": line}, code, line))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _config(path: str) -> RunConfig:
    return validate(load_file(path), path)


# --------------------------------------------------------------------------- the jobs


def check(args: argparse.Namespace, rep: Reporter) -> Done:
    """What the dataset of ``--config`` holds, per split (``slr data check``)."""
    from engine.data import check_data

    return Done(check_data(_config(args.config), progress=rep.throttled("probe")))


def parse_face_indices(text: str | None) -> tuple[int, ...] | None:
    """``"all"``/None -> None (all 468 points); ``"1,33,61"`` -> (1, 33, 61)."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    try:
        return tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise ExtractError(
            f"--face-indices '{text}': give comma-separated face mesh indices (0-467) or 'all'"
        ) from None


def extract(args: argparse.Namespace, rep: Reporter) -> Done:
    """Landmarks (or, with ``--rois``, face and hand crops) of the videos of ``--config``
    into the cache ``--out`` (``slr extract``)."""
    from engine.data.roi_cache import DEFAULT_ROI_SIZE
    from engine.extract import ExtractSettings
    from engine.extract import extract as run_extract

    cfg = _config(args.config)
    settings = ExtractSettings(
        model_complexity=args.model_complexity,
        stride=args.stride,
        max_size=args.max_size,
        # only the video sources have crop_bbox, and extract refuses every other source
        crop_bbox=bool(getattr(cfg.data, "crop_bbox", False)),
        face_indices=parse_face_indices(args.face_indices),
        # --rois: face and hand crops into an ROI cache (getattr: older callers lack them)
        rois=bool(getattr(args, "rois", False)),
        roi_size=_or_default(getattr(args, "roi_size", None), DEFAULT_ROI_SIZE),
        roi_margin=_or_default(getattr(args, "roi_margin", None), ExtractSettings.roi_margin),
        roi_hold=_or_default(getattr(args, "roi_hold", None), ExtractSettings.roi_hold),
    )
    summary = run_extract(
        cfg,
        args.out,
        settings,
        workers=args.workers,
        max_glosses=args.max_glosses,
        samples_per_gloss=args.samples_per_gloss,
        limit=args.limit,
        model_file=args.model_file,
        on_probe=rep.throttled("probe"),
        on_plan=lambda plan: rep.row("plan", **plan),
        on_progress=lambda done, total, frames, fps: rep.row(
            "video", done=done, total=total, frames=frames, fps=fps
        ),
    )
    rep.row("summary", **summary)
    if summary["interrupted"]:
        return Done(summary, EXIT_INTERRUPTED)
    if summary["selected"] and not summary["manifest_rows"]:
        return Done(summary, EXIT_FAILED, "no video could be extracted (see the failures)")
    return Done(summary)


def predict(args: argparse.Namespace, rep: Reporter) -> Done:
    """Classify files with the trained run ``--run-dir`` (``slr predict``): CSV recordings,
    features arrays, landmark .npz files or videos, whichever its source reads; the run's
    own config.json and data.json say how (:func:`engine.predict.predict_files`)."""
    from engine.predict import predict_files

    results = predict_files(
        args.run_dir,
        args.files,
        top=_or_default(getattr(args, "top", None), 5),
        on_file=lambda done, total: rep.row("file", done=done, total=total),
    )
    return Done({"predictions": results})


def evaluate(args: argparse.Namespace, rep: Reporter) -> Done:
    """Score the trained run ``--run-dir`` (its best.pt, or last.pt with ``--checkpoint
    last``) on the data section of ``--config`` and write ``RUN/eval-<name>/`` (``slr
    eval``, :func:`engine.predict.evaluate_run`)."""
    from engine.predict import evaluate_run

    splits = [s for s in (args.splits or "").split(",") if s] or None
    result = evaluate_run(
        args.run_dir,
        _config(args.config),
        name=args.name,
        checkpoint=args.checkpoint,
        splits=splits,
        skip_unknown=args.skip_unknown,
        overwrite=args.overwrite,
        aggregate=args.aggregate,
        device=args.device,
        on_stage=lambda stage: rep.row("stage", stage=stage),
        on_batch=rep.throttled("batch"),
    )
    return Done(result)


def export(args: argparse.Namespace, rep: Reporter) -> Done:
    """The trained run ``--run-dir`` as ONNX (``--onnx``), checked with onnxruntime against
    PyTorch on its own val/test data (``slr export``, :func:`engine.export.export_onnx`).
    A difference above the tolerance fails the job (exit 1) with the result written."""
    from engine.export import DEFAULT_ATOL, DEFAULT_BATCHES, OPSET, export_onnx

    result = export_onnx(
        args.run_dir,
        args.onnx,
        atol=_or_default(args.atol, DEFAULT_ATOL),
        batches=_or_default(args.batches, DEFAULT_BATCHES),
        batch_size=args.batch_size,
        opset=_or_default(args.opset, OPSET),
        exporter=args.exporter,
        on_stage=lambda stage: rep.row("stage", stage=stage),
        on_check=lambda done, total: rep.row("check", done=done, total=total),
    )
    if result["ok"]:
        return Done(result)
    if result["max_abs_diff"] is None:
        return Done(result, EXIT_FAILED, f"the ONNX graph does not run: {result['error']}")
    return Done(
        result,
        EXIT_FAILED,
        f"ONNX differs from PyTorch by {result['max_abs_diff']:.3g} "
        f"(tolerance {result['limit']:.3g})",
    )


def _or_default(value: Any, default: Any) -> Any:
    return default if value is None else value


JOBS: dict[str, Callable[[argparse.Namespace, Reporter], Done]] = {
    "check": check,
    "extract": extract,
    "predict": predict,
    "export": export,
    "eval": evaluate,
}


def run(
    name: str,
    args: argparse.Namespace,
    early: list[str] | None = None,
    take_stops: Callable[[], None] | None = None,
) -> int:
    """Run job ``name`` and report how it ended (see the module docstring); the exit code.

    ``take_stops()`` makes a stop raise KeyboardInterrupt from then on (the engine's
    ``__main__`` passes it); ``early`` holds the signals of stops that came before that."""
    rep = Reporter(args.summary if name == "extract" else args.out, args.progress)
    try:
        if take_stops is not None:
            take_stops()
        if early:
            return rep.fail(f"stopped ({early[0]}) before the job started", EXIT_INTERRUPTED)
        done = JOBS[name](args, rep)
    except BAD_INPUT as exc:
        return rep.fail(_first_line(exc), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return rep.fail("interrupted", EXIT_INTERRUPTED)
    except OSError as exc:
        return rep.fail(runs.os_error_line(exc), EXIT_FAILED)
    except Exception as exc:  # noqa: BLE001 - a bug: its traceback goes to the job's log
        traceback.print_exc()
        return rep.fail(f"internal error ({type(exc).__name__}): {_first_line(exc)}", EXIT_FAILED)
    return rep.finish(done)
