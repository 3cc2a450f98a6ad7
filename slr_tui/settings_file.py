"""Where the user settings file lives, with nothing else imported: every ``slr`` command
that finds its runs folder asks this first, and only reads the file (YAML, a pydantic
model: :mod:`slr_tui.settings`) when there is one."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SLR_CONFIG"
DEFAULT_PATH = Path("~/.config/slr/config.yaml")


def settings_path() -> Path:
    """``$SLR_CONFIG``, else ``~/.config/slr/config.yaml``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_PATH.expanduser()
