"""What the on-disk caches (``landmark_cache``, ``roi_cache``) share: npz shapes read from
the headers, an atomically rewritten CSV, a ``dataset.json`` that names its format, and the
cleanup of the temp files a killed writer left. No torch. Each cache module binds these to
its own file names, columns and format."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.runs import TMP_SUFFIX, atomic_write_bytes


def npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Array shapes in an npz from the headers only (cheap); raises on an unreadable file."""
    shapes = {}
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if not name.endswith(".npy"):
                continue
            with zf.open(name) as fh:
                version = np.lib.format.read_magic(fh)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shapes[name[:-4]] = tuple(read(fh)[0])
    return shapes


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
    """Rewrite the CSV ``path`` (atomically) with a header and ``rows``; returns the rows."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    n = 0
    for row in rows:
        w.writerow(row)
        n += 1
    atomic_write_bytes(path, buf.getvalue().encode())
    return n


def write_format_json(path: Path, fmt: str, version: int, meta: dict[str, Any]) -> None:
    """A dataset.json: ``format`` and ``version`` first, then what the writer records."""
    full = {"format": fmt, "version": version, **meta}
    atomic_write_bytes(path, (json.dumps(full, indent=2) + "\n").encode())


def read_format_json(path: Path, fmt: str) -> dict[str, Any] | None:
    """A dataset.json of format ``fmt``; None when absent, unreadable or of another format."""
    try:
        meta = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == fmt else None


def remove_temp_files(root: Path, samples: str) -> int:
    """Delete the temp files a killed writer left in ``root`` and anywhere under
    ``root/samples`` (ids may hold folders); returns how many."""
    root = Path(root)
    found = list(root.glob(f".*{TMP_SUFFIX}")) if root.is_dir() else []
    if (root / samples).is_dir():
        found += (root / samples).rglob(f".*{TMP_SUFFIX}")
    n = 0
    for f in found:
        with contextlib.suppress(OSError):
            f.unlink()
            n += 1
    return n
