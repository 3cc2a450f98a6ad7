"""User settings: named dataset roots, the runs dir and the GPU temperature warning limit.

One small YAML file, ``$SLR_CONFIG``, else ``~/.config/slr/config.yaml``::

    runs_dir: /scratch/me/slr-runs
    dataset_roots:
      wlasl: /data/WLASL2000
    gpu_temp_warn_c: 80

The TUI edits it (settings screen) and the CLI reads it: ``slr run --preset
wlasl100-conservative`` uses the root named ``wlasl`` (the preset's data source) or
``wlasl100`` (its dataset label) when no ``--data-root`` is given. No torch here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine import catalog, runs
from slr_tui.settings_file import DEFAULT_PATH, ENV_VAR, settings_path  # noqa: F401 (re-exported)

# folders looked at (one level deep) for datasets that were not named by hand
DETECT_PARENTS = ("~/data", "~/datasets", "/data", "/datasets", "./data")
# folder name prefix -> data source
DETECT_PREFIXES = {"wlasl": "wlasl"}


class SettingsError(Exception):
    """The settings file cannot be read or holds bad values (one line, for people)."""


class Settings(BaseModel):
    """What a user sets once and every ``slr`` / ``slr-tui`` invocation reuses."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    runs_dir: str | None = None
    """Run store used when neither ``--runs-dir`` nor ``$SLR_RUNS_DIR`` is given
    (unset: ``./runs``)."""

    dataset_roots: dict[str, str] = Field(default_factory=dict)
    """Named dataset roots, name -> folder. A name equal to a preset's data source
    (``wlasl``) or dataset label (``wlasl100``) is that preset's ``data.root`` when none is
    given on the command line."""

    gpu_temp_warn_c: int = Field(80, ge=30, le=130)
    """GPU temperature in degrees Celsius from which the TUI's GPU panel shows a warning."""

    @field_validator("dataset_roots")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not str(name).strip():
                raise ValueError("a dataset root needs a non-empty name")
        return {str(k).strip(): str(p) for k, p in v.items()}


def load_settings(path: str | Path | None = None) -> Settings:
    """The settings in ``path`` (default :func:`settings_path`); defaults when the file does
    not exist. A file that cannot be parsed or holds bad values raises SettingsError."""
    p = Path(path).expanduser() if path else settings_path()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        raise SettingsError(f"cannot read settings {p}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "YAML error"
        raise SettingsError(f"cannot parse settings {p}: {first}") from None
    if raw is None:
        return Settings()
    if not isinstance(raw, dict):
        raise SettingsError(
            f"settings {p}: expected a mapping of {', '.join(Settings.model_fields)}"
        )
    try:
        return Settings.model_validate(raw)
    except ValidationError as err:
        e = err.errors()[0]
        key = ".".join(str(x) for x in e["loc"]) or "?"
        if e["type"] == "extra_forbidden":
            msg = f"unknown key '{key}'; valid keys: {', '.join(Settings.model_fields)}"
        else:
            msg = f"bad value for '{key}': {e['msg']}"
        raise SettingsError(f"settings {p}: {msg}") from None


def dump_settings(settings: Settings) -> str:
    """The YAML text of ``settings`` with a short header."""
    data: dict[str, Any] = settings.model_dump()
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    return (
        "# slr settings (read by `slr` and `slr-tui`; edited by the TUI's settings screen)\n" + body
    )


def save_settings(settings: Settings, path: str | Path | None = None) -> Path:
    """Write ``settings`` atomically (temp file + rename); returns the path written."""
    p = Path(path).expanduser() if path else settings_path()
    runs.atomic_write_bytes(p, dump_settings(settings).encode("utf-8"))
    return p


def resolve_runs_dir(explicit: str | Path | None, settings: Settings | None = None) -> Path:
    """``--runs-dir``, else ``$SLR_RUNS_DIR``, else the settings' ``runs_dir``, else ``./runs``."""
    if explicit or os.environ.get("SLR_RUNS_DIR"):
        return runs.runs_dir(explicit)
    if settings is not None and settings.runs_dir:
        return Path(settings.runs_dir).expanduser()
    return runs.runs_dir(None)


def source_of(name: str, path: str | Path | None = None) -> str | None:
    """The data source a named dataset root feeds: a name that is a source (``wlasl``) or
    starts with one (``wlasl2000``), else None (unknown: every non-synthetic preset fits)."""
    low = name.lower()
    for prefix, source in DETECT_PREFIXES.items():
        if low.startswith(prefix):
            return source
    for source in sorted(catalog.source_names(), key=len, reverse=True):
        if low == source or low.startswith(source):
            return source
    return None


def roi_root(path: str | Path) -> bool:
    """``path`` holds signed sentences for the ``translation`` source: an ROI cache
    (``dataset.json`` of format ``slr-rois``, or a ``rois/`` folder, as ``slr extract
    --rois`` writes) or the guide's ``meta.csv`` (``id;texto``). A few stats, for a
    worker thread; never raises."""
    root = Path(path).expanduser()
    try:
        if (root / "rois").is_dir() or (root / "meta.csv").is_file():
            return True
        meta = runs.read_json(root / "dataset.json")
    except OSError:
        return False
    return bool(meta) and meta.get("format") == "slr-rois"


def root_for(source: str, label: str, settings: Settings) -> tuple[str, str] | None:
    """``(name, path)`` of the dataset root named like ``label`` (``wlasl100``) or
    ``source`` (``wlasl``), in that order; None when the settings name neither."""
    for key in (label, source):
        if key and key in settings.dataset_roots:
            return key, settings.dataset_roots[key]
    return None


def detect_dataset_roots(parents: tuple[str, ...] = DETECT_PARENTS) -> dict[str, str]:
    """Dataset folders found without being named: a folder called ``WLASL*`` (any case)
    directly under ``~/data``, ``~/datasets``, ``/data``, ``/datasets`` or ``./data``.
    Cheap (one directory listing per parent) and never raises."""
    found: dict[str, str] = {}
    for parent in parents:
        base = Path(parent).expanduser()
        try:
            children = sorted(base.iterdir()) if base.is_dir() else []
        except OSError:
            continue
        for child in children:
            low = child.name.lower()
            if not any(low.startswith(p) for p in DETECT_PREFIXES):
                continue
            try:
                if not child.is_dir():
                    continue
            except OSError:
                continue
            name = low if low not in found else f"{low}-{len(found)}"
            found[name] = str(child.resolve())
    return found
