"""``slr``: the headless command line. It starts engine processes only through
:mod:`slr_tui.launch` (training runs and the check, extract, predict and export jobs) and
renders the files they write; it never imports torch itself.

One module per group of commands: :mod:`.run` (run, sweep, stop), :mod:`.browse` (runs,
show, compare, thresholds), :mod:`.predict`, :mod:`.export` (ONNX), :mod:`.metrics`
(check-metrics), :mod:`.manage` (tag, note, rm, archive, restore), :mod:`.data` (data
check, extract), :mod:`.presets`, :mod:`.tui`; the
options they share are declared in :mod:`.options`, the consoles and the one-line error
exit are in :mod:`.render`.
"""

from __future__ import annotations

import sys

import typer

from engine import runs
from slr_tui.cli import browse, data, export, manage, metrics, predict, presets, run, tui
from slr_tui.cli import evaluate as eval_cli
from slr_tui.cli import report as report_cli
from slr_tui.cli.render import console, err_console

__all__ = ["app", "console", "main"]  # console: where every command prints (tests widen it)

app = typer.Typer(
    name="slr",
    help="Train and compare sign-language-recognition experiments (headless).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

TRAIN, RUNS, DATA = "Train", "Read runs", "Data"
app.add_typer(presets.app, name="presets", rich_help_panel=TRAIN)
app.command(rich_help_panel=TRAIN)(run.run)
app.add_typer(run.sweep_app, name="sweep", rich_help_panel=TRAIN)
app.command(rich_help_panel=TRAIN)(run.stop)
app.command("runs", rich_help_panel=RUNS)(browse.list_runs)
app.command(rich_help_panel=RUNS)(browse.show)
app.command(rich_help_panel=RUNS)(browse.compare)
app.command(rich_help_panel=RUNS)(browse.thresholds)
app.command(rich_help_panel=RUNS)(report_cli.report)
app.command("eval", rich_help_panel=RUNS)(eval_cli.evaluate)
app.command(rich_help_panel=RUNS)(predict.predict)
app.command(rich_help_panel=RUNS)(export.export)
app.command("check-metrics", rich_help_panel=RUNS)(metrics.check_metrics)
MANAGE = "Manage runs"
# -TAG is an argument of `slr tag`, not an option
app.command(rich_help_panel=MANAGE, context_settings={"ignore_unknown_options": True})(manage.tag)
app.command(rich_help_panel=MANAGE)(manage.note)
app.command(rich_help_panel=MANAGE)(manage.rm)
app.command(rich_help_panel=MANAGE)(manage.archive)
app.command(rich_help_panel=MANAGE)(manage.restore)
app.add_typer(data.app, name="data", rich_help_panel=DATA)
app.command(rich_help_panel=DATA)(data.extract)
app.command(rich_help_panel="Interactive")(tui.tui)


def main() -> None:
    """The ``slr`` console script: Ctrl-C exits 130, an OSError (a full disk, a folder
    that vanished) is one line, never a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        err_console.print(
            f"[bold red]error:[/] {runs.os_error_line(exc)}", highlight=False, soft_wrap=True
        )
        sys.exit(1)
