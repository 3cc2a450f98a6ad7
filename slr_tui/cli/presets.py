"""``slr presets``: list the presets, or show one's effective config."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.errors import ConfigError
from slr_tui.cli.options import SetOpt
from slr_tui.cli.render import console, fail

app = typer.Typer(help="List presets, or show one's effective config.")


CACHE_NAME = "presets-list.json"


def _fingerprint() -> list[list[Any]]:
    """What the listing is made from: the preset files and the modules that fill their
    defaults (name, mtime, size). Read without importing them."""
    import importlib.util

    # found, not imported (the presets are package data: ./presets in a checkout)
    folders = []
    for name in ("engine.presets", "engine"):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.submodule_search_locations
        folders.append(Path(next(iter(spec.submodule_search_locations))))
    presets_dir, engine_dir = folders
    files = sorted(presets_dir.glob("*.yaml"))
    files += [engine_dir / "config.py", engine_dir / "catalog.py", Path(__file__)]
    out = []
    for f in files:
        st = f.stat()
        out.append([str(f), st.st_mtime_ns, st.st_size])
    return out


def _cache_path() -> Path:
    base = os.environ.get("SLR_CACHE_DIR") or Path.home() / ".cache" / "slr"
    return Path(base) / CACHE_NAME


def listing_rows() -> list[list[str]]:
    """``[name, summary]`` of every preset. Validating the presets builds the config models
    (pydantic, numpy, the data modules: ~0.2 s), so the rows are kept in
    ``$SLR_CACHE_DIR/presets-list.json`` (else ``~/.cache/slr/``) with the fingerprint of the
    files they came from, and rebuilt when one of those changed. The cache is plain JSON;
    one that cannot be read or written is ignored."""
    key = _fingerprint()
    path = _cache_path()
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key") == key and isinstance(cached.get("rows"), list):
            return [[str(a), str(b)] for a, b in cached["rows"]]
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    from engine import config as cfgmod  # lazily: `slr --help` builds no config models
    from engine import runs

    rows = [
        [
            p.name,
            f"{p.dataset_label()} · {p.model.name} · batch {p.data.batch_size} · "
            f"{p.training.max_epochs} epochs · lr {p.optim.lr:g}\n[dim]{p.description}[/]",
        ]
        for p in cfgmod.presets()
    ]
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        runs.atomic_write_json(path, {"key": key, "rows": rows})
    return rows


@app.callback(invoke_without_command=True)
def presets_list(ctx: typer.Context) -> None:
    """List the presets with their one-line descriptions."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    t = Table(header_style="bold", show_lines=True)
    t.add_column("preset", no_wrap=True, style="bold")
    t.add_column("data, model, key hyperparameters / description")
    for name, summary in listing_rows():
        t.add_row(name, summary)
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
