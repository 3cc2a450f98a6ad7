"""``slr``: the headless command line. It starts engine processes only through
:mod:`slr_tui.launch` (training runs and the check, extract, predict and export jobs) and
renders the files they write; it never imports torch itself.

One module per group of commands: :mod:`.run` (run, sweep, stop), :mod:`.browse` (runs,
show, compare, thresholds), :mod:`.evaluate`, :mod:`.report`, :mod:`.predict`,
:mod:`.export` (ONNX), :mod:`.metrics` (check-metrics), :mod:`.manage` (tag, note, rm,
archive, restore), :mod:`.data` (data check, extract), :mod:`.presets`, :mod:`.tui`; the
options they share are declared in :mod:`.options`, the consoles and the one-line error
exit are in :mod:`.render`.

Start-up: a command's module is imported only when that command runs (or prints its own
``--help``). ``slr --help`` lists every command from :data:`COMMANDS` below (name, panel,
one-line help) without importing any of them; ``tests/test_cli_lazy.py`` checks that this
listing is the same as the one Typer builds from the real commands, so the two cannot drift.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

import typer
from typer._click.exceptions import UsageError
from typer.core import TyperCommand, TyperGroup

__all__ = ["COMMANDS", "app", "console", "main"]  # console: where every command prints


def __getattr__(name: str) -> Any:  # the consoles, without importing Rich's console at start
    if name in ("console", "err_console"):
        from slr_tui.cli import render

        return getattr(render, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


TRAIN, RUNS, MANAGE, DATA = "Train", "Read runs", "Manage runs", "Data"


@dataclass(frozen=True)
class Lazy:
    """One ``slr`` command, imported when used: ``target`` is ``module:function`` for a
    command or ``module:app`` (a Typer) for a group of sub-commands."""

    name: str
    target: str
    panel: str
    help: str
    group: bool = False
    context_settings: dict[str, Any] = field(default_factory=dict)


_M = "slr_tui.cli."
# the order of `slr --help`: Typer lists the plain commands first, then the groups
COMMANDS: tuple[Lazy, ...] = (
    Lazy(
        "run",
        _M + "run:run",
        TRAIN,
        "Train one run: preset < --config < --set. Exits non-zero if the run fails or is stopped.",
    ),
    Lazy(
        "stop",
        _M + "run:stop",
        TRAIN,
        "Stop a running run: it finishes the current step, writes last.pt and marks itself "
        "stopped.",
    ),
    Lazy(
        "runs",
        _M + "browse:list_runs",
        RUNS,
        "List runs, newest first (archived and deleted runs left out).",
    ),
    Lazy(
        "show",
        _M + "browse:show",
        RUNS,
        "A run's summary, epochs, results and per-class table (worst first).",
    ),
    Lazy(
        "compare",
        _M + "browse:compare",
        RUNS,
        "Runs side by side: summary metrics (best marked) and only the config keys that differ.",
    ),
    Lazy(
        "thresholds",
        _M + "browse:thresholds",
        RUNS,
        "Print the threshold sweep of a run's predictions; --pick writes threshold.json.",
    ),
    Lazy(
        "report",
        _M + "report:report",
        RUNS,
        "Figures and tables of runs for a thesis or a paper, and one index.html.",
    ),
    Lazy(
        "eval",
        _M + "evaluate:evaluate",
        RUNS,
        "Evaluate a trained run's weights on its own splits or on other data.",
    ),
    Lazy(
        "predict",
        _M + "predict:predict",
        RUNS,
        "Classify new inputs with a trained run's best.pt: the top classes with probabilities.",
    ),
    Lazy(
        "export",
        _M + "export:export",
        RUNS,
        "Write a trained run's model as ONNX (dynamic batch and length axes) and check it.",
    ),
    Lazy(
        "check-metrics",
        _M + "metrics:check_metrics",
        RUNS,
        "Check a run's final metrics against reference values (exit 1 when one is out).",
    ),
    Lazy(
        "tag",
        _M + "manage:tag",
        MANAGE,
        "Add or remove a run's tags, then print them: `slr tag RUN +baseline -old`.",
        # -TAG is an argument of `slr tag`, not an option
        context_settings={"ignore_unknown_options": True},
    ),
    Lazy(
        "note",
        _M + "manage:note",
        MANAGE,
        'Set, print or clear a run\'s note: `slr note RUN "lr too high, rerun"`.',
    ),
    Lazy(
        "rm",
        _M + "manage:rm",
        MANAGE,
        "Move a run to the trash (RUNS/.trash/RUN); `slr restore RUN` brings it back.",
    ),
    Lazy(
        "archive",
        _M + "manage:archive",
        MANAGE,
        "Move a run to RUNS/archive/: out of `slr runs` and the runs screen, kept whole.",
    ),
    Lazy(
        "restore",
        _M + "manage:restore",
        MANAGE,
        "Move a run back from the trash or the archive into the runs folder.",
    ),
    Lazy(
        "extract",
        _M + "data:extract",
        DATA,
        "Extract MediaPipe Holistic landmarks from a dataset's videos into a landmark cache.",
    ),
    Lazy("tui", _M + "tui:tui", "Interactive", "Open the terminal UI (the same as `slr-tui`)."),
    Lazy(
        "presets",
        _M + "presets:app",
        TRAIN,
        "List presets, or show one's effective config.",
        group=True,
    ),
    Lazy(
        "sweep",
        _M + "run:sweep_app",
        TRAIN,
        "Grid search or an Optuna study; every member is its own run, ranked at the end.",
        group=True,
    ),
    Lazy("data", _M + "data:app", DATA, "Look at a dataset before training on it.", group=True),
)
_BY_NAME = {c.name: c for c in COMMANDS}


def load(spec: Lazy) -> Any:
    """The click command Typer builds for ``spec`` (imports its module)."""
    module, attr = spec.target.split(":")
    obj = getattr(importlib.import_module(module), attr)
    one = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    if spec.group:
        one.add_typer(obj, name=spec.name, rich_help_panel=spec.panel)
    else:
        one.command(spec.name, rich_help_panel=spec.panel, context_settings=spec.context_settings)(
            obj
        )
    return typer.main.get_group(one).commands[spec.name]


class LazyGroup(TyperGroup):
    """The ``slr`` group: every command of :data:`COMMANDS` is built on first use; while the
    group prints its own help it lists them from the table instead."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(c.name for c in COMMANDS if c.name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        spec = _BY_NAME.get(cmd_name)
        if spec is None:
            return None
        if self._listing:  # a name, a panel and a line: nothing imported
            return TyperCommand(name=spec.name, help=spec.help, rich_help_panel=spec.panel)
        self.commands[cmd_name] = cmd = load(spec)
        return cmd

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return self._click_resolve_command(ctx, args)
        except UsageError as exc:  # as Typer does it, over every name, imported or not
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches:
                suggestions = ", ".join(f"{m!r}" for m in matches)
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {suggestions}?"
            raise


app = typer.Typer(
    name="slr",
    cls=LazyGroup,
    help="Train and compare sign-language-recognition experiments (headless).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Train and compare sign-language-recognition experiments (headless)."""


def main() -> None:
    """The ``slr`` console script: Ctrl-C exits 130, an OSError (a full disk, a folder
    that vanished) is one line, never a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        from engine import runs
        from slr_tui.cli.render import err_console

        err_console.print(
            f"[bold red]error:[/] {runs.os_error_line(exc)}", highlight=False, soft_wrap=True
        )
        sys.exit(1)
