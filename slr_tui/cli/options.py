"""The options several ``slr`` commands share, declared once, and what they resolve to: the
run store, a run reference, a config (preset < --config < --set, with --data-root and
--device below --set), a dataset root named in the settings file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from engine import runs
from engine.errors import ConfigError
from slr_tui.cli.render import err_console, fail

if TYPE_CHECKING:
    from engine import config as cfgmod

PresetOpt = Annotated[
    str | None, typer.Option("--preset", "-p", help="Preset name (see `slr presets`).")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (YAML/JSON); a run's config.json re-runs it."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", help="Override section.key=value, value parsed as YAML (repeatable)."
    ),
]
DataRootOpt = Annotated[
    Path | None, typer.Option("--data-root", help="Dataset root (sets data.root).")
]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="auto | cpu | cuda (sets training.device).")
]
RunsDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--runs-dir",
        help="Run store (default: $SLR_RUNS_DIR, else the settings file's runs_dir, else ./runs).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
RunArg = Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique prefix, or path.")]

DEVICES = ("auto", "cpu", "cuda")


def runs_root(runs_dir: Path | None) -> Path:
    """--runs-dir, else $SLR_RUNS_DIR, else the settings file's runs_dir, else ./runs."""
    from slr_tui.settings_file import settings_path

    if runs_dir or os.environ.get("SLR_RUNS_DIR") or not settings_path().is_file():
        root = runs.runs_dir(runs_dir)  # no settings file: no YAML or pydantic to load
    else:
        from slr_tui import settings as settings_mod  # lazily: a pydantic model to build

        try:
            root = settings_mod.resolve_runs_dir(None, settings_mod.load_settings())
        except settings_mod.SettingsError as exc:
            raise fail(str(exc)) from None
    if "\0" in str(root):
        raise fail("the runs folder path cannot contain a NUL character")
    try:
        if root.exists() and not root.is_dir():
            raise fail(f"runs folder {root} is a file, not a folder (--runs-dir / $SLR_RUNS_DIR)")
    except OSError as exc:
        raise fail(f"cannot use runs folder {root}: {exc.strerror or exc}") from None
    return root


def run_ref(ref: str, runs_dir: Path | None) -> runs.RunInfo:
    """RUN: an id, a unique prefix of one, or an explicit path (engine.runs.resolve_run)."""
    try:
        return runs.resolve_run(ref, runs_root(runs_dir))
    except runs.RunError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot read run '{ref}': {exc.strerror or exc}") from None


def flag_overrides(data_root: str | Path | None, device: str | None = None) -> dict[str, Any]:
    """--data-root and --device as config overrides (they rank below --set)."""
    extra: dict[str, Any] = {}
    if data_root is not None:
        extra["data"] = {"root": str(data_root)}
    if device is not None:
        if device not in DEVICES:
            raise fail(f"--device must be auto, cpu or cuda, not '{device}'")
        extra["training"] = {"device": device}
    return extra


def resolve_config(
    preset: str | None,
    config: Path | None,
    sets: list[str] | None,
    data_root: str | Path | None = None,
    device: str | None = None,
    *,
    required: bool = True,
) -> cfgmod.RunConfig:
    """The effective config of the shared options, or the one-line exit of why not.
    ``required``: a preset or a config file must be given (not for `slr extract`, whose
    --set data.source=video_folder --data-root is enough)."""
    from engine import config as cfgmod  # lazily: `slr --help` builds no config models

    if required and not preset and not config:
        raise fail("give --preset NAME or --config FILE (see `slr presets`)")
    try:
        return cfgmod.resolve(
            preset=preset, config_file=config, sets=sets, extra=flag_overrides(data_root, device)
        )
    except ConfigError as exc:
        raise fail(str(exc)) from None


def settings_root(cfg: cfgmod.RunConfig, name: str | None) -> str | None:
    """data.root from the settings file: the root named ``name`` (--dataset), else, when the
    config sets no root, one named like its dataset label or data source."""
    if name is None and (cfg.data.root is not None or cfg.data.source == "synthetic"):
        return None
    from slr_tui import settings as settings_mod  # lazily: a pydantic model to build

    try:
        st = settings_mod.load_settings()
    except settings_mod.SettingsError as exc:
        raise ConfigError(str(exc)) from None
    if name is not None:
        if name not in st.dataset_roots:
            named = ", ".join(st.dataset_roots) or "none"
            raise ConfigError(
                f"no dataset root named '{name}' in {settings_mod.settings_path()} (named: {named})"
            )
        return str(Path(st.dataset_roots[name]).expanduser())
    hit = settings_mod.root_for(cfg.data.source, cfg.dataset_label(), st)
    if hit is None:
        return None
    err_console.print(f"data root '{hit[0]}' from {settings_mod.settings_path()}: {hit[1]}")
    return str(Path(hit[1]).expanduser())
