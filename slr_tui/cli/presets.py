"""``slr presets``: list the presets, or show one's effective config."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from engine.errors import ConfigError
from slr_tui.cli.options import SetOpt
from slr_tui.cli.render import console, fail

app = typer.Typer(help="List presets, or show one's effective config.")


@app.callback(invoke_without_command=True)
def presets_list(ctx: typer.Context) -> None:
    """List the presets with their one-line descriptions."""
    if ctx.invoked_subcommand is not None:
        return
    from engine import config as cfgmod  # lazily: `slr --help` builds no config models

    t = Table(header_style="bold", show_lines=True)
    t.add_column("preset", no_wrap=True, style="bold")
    t.add_column("data, model, key hyperparameters / description")
    for p in cfgmod.presets():
        t.add_row(
            p.name,
            f"{p.dataset_label()} · {p.model.name} · batch {p.data.batch_size} · "
            f"{p.training.max_epochs} epochs · lr {p.optim.lr:g}\n[dim]{p.description}[/]",
        )
    console.print(t)
    console.print("show one: slr presets show NAME")


@app.command("show")
def presets_show(
    name: Annotated[str, typer.Argument(help="Preset name (see `slr presets`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
    sets: SetOpt = None,
) -> None:
    """Print a preset's effective config (every key, defaults filled in)."""
    if not name.strip():
        raise fail("give a preset name (see `slr presets`)")
    from engine import config as cfgmod  # lazily: `slr --help` builds no config models

    try:
        cfg = cfgmod.resolve(preset=name, sets=sets)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    d = cfg.to_dict()
    if as_json:
        typer.echo(json.dumps(d, indent=2))
    else:
        import yaml  # lazily: only `presets show` prints YAML

        typer.echo(yaml.safe_dump(d, sort_keys=False).rstrip())
