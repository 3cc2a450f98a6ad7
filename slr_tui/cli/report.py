"""``slr report``: figures (PNG, PDF) and tables (Markdown, CSV, LaTeX) of runs, and one
self-contained index.html. Reads run folders only (matplotlib, numpy, scikit-learn; no
torch); the drawing code is :mod:`slr_tui.report`, imported when the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slr_tui.cli.options import RunsDirOpt, run_ref
from slr_tui.cli.render import console, fail


def report(
    refs: Annotated[
        list[str],
        typer.Argument(metavar="RUN", help="Run ids, unique prefixes, or paths."),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder to write into (created; files are replaced)."),
    ],
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="test or val: the split of the confusion, per-class and threshold "
            "figures (default: test when it was evaluated, else val).",
            show_default=False,
        ),
    ] = None,
    formats: Annotated[
        str, typer.Option("--format", help="Figure formats, comma-separated: png, pdf.")
    ] = "png,pdf",
    eval_name: Annotated[
        str | None,
        typer.Option(
            "--eval",
            metavar="NAME",
            help="Read each run's eval-NAME/ (written by `slr eval`) instead of eval/.",
        ),
    ] = None,
    dpi: Annotated[int, typer.Option("--dpi", help="Resolution of the PNG figures.")] = 150,
    runs_dir: RunsDirOpt = None,
) -> None:
    """Figures and tables of runs for a thesis or a paper, and one index.html.

    \b
    Per run, in OUT/<run id>/, each figure as .png and .pdf:
      loss, accuracy, lr   learning curves (translation: bleu, wer;
                           CTC: also blank_share)
      confusion            rows normalised; above 30 classes the most
                           confused block alone (its title says so)
      per_class            per-class accuracy, sorted, with support
      threshold, roc, pr   two-class runs: P/R/F1 against threshold
                           (calibrated and 0.5 marked), ROC, PR
    and each table as .md, .csv and .tex (booktabs, best value bold):
      summary, per_class, thresholds (two-class runs),
      grouped (sub step vs step level, with grouped metrics)
    Two or more runs: OUT/compare/ with curves-<metric> (the runs
    overlaid) and the metrics table. OUT/index.html shows it all in
    one file (PNGs embedded, no external links). A run without an
    evaluation yet gets its curves; what is skipped is said.
    """
    from slr_tui import report as rp  # lazily: numpy and the figure code

    try:
        fmts = rp.parse_formats(formats)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if split is not None and split not in ("test", "val"):
        raise fail(f"--split must be test or val, not '{split}'")
    if eval_name is not None and (not eval_name or "/" in eval_name or "\0" in eval_name):
        raise fail(f"--eval takes the NAME of a run's eval-NAME/ folder, not '{eval_name}'")
    infos = [run_ref(ref, runs_dir) for ref in refs]
    if out.exists() and not out.is_dir():
        raise fail(f"--out {out} is a file, not a folder")
    try:
        result = rp.write_report(
            [i.path for i in infos],
            out,
            split=split,
            formats=fmts,
            eval_name=eval_name,
            dpi=dpi,
            progress=lambda line: console.print(
                line, markup=False, highlight=False, soft_wrap=True
            ),
        )
    except rp.ReportError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"report of {len(infos)} run{'s' if len(infos) != 1 else ''} written to {result.out} "
        f"({len(result.files)} files; open {result.index})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
