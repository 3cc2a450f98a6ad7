"""Probe videos once (can decord open it, how many frames) and remember the answers.

Probing a few thousand videos takes a while, so the results are kept in a small JSON file,
``<root>/.slr-probe.json``, keyed by the path relative to the root and checked against the
file's size and mtime (a changed file is probed again). When the root is read-only the
file goes to ``$SLR_CACHE_DIR/probe/`` (else ``~/.cache/slr/probe/``) instead. Writes are
atomic (a temp file, then a rename).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.data.decode import open_video
from engine.runs import atomic_write_bytes

log = logging.getLogger(__name__)

PROBE_FILE = ".slr-probe.json"
VERSION = 1
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Probe:
    size: int
    mtime_ns: int
    frames: int = 0
    fps: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.frames > 0


def cache_dir() -> Path:
    """``$SLR_CACHE_DIR``, else ``~/.cache/slr``."""
    return Path(os.environ.get("SLR_CACHE_DIR") or Path.home() / ".cache" / "slr")


def probe_video(path: str | Path) -> tuple[int, float]:
    """(frame count, average fps); raises when decord cannot open the file."""
    vr = open_video(path)
    frames = len(vr)
    if frames <= 0:
        raise ValueError("no frames")
    return frames, float(vr.get_avg_fps())


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    if line.startswith("Error reading"):  # decord's whole message
        return "decord cannot open it (not a video, truncated or an unsupported codec)"
    return line[:200]


class ProbeStore:
    """The probe results of one dataset root (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:16]
        self.fallback = cache_dir() / "probe" / f"{digest}.json"
        self.entries: dict[str, dict[str, Any]] = {}
        self.location: Path | None = None
        self.changed = False
        for f in (self.root / PROBE_FILE, self.fallback):
            self.entries.update(self._read(f))

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, Any]]:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict) or raw.get("version") != VERSION:
            return {}
        entries = raw.get("entries")
        return entries if isinstance(entries, dict) else {}

    def key(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path.resolve())

    def get(self, path: Path, size: int, mtime_ns: int) -> Probe | None:
        e = self.entries.get(self.key(path))
        if not e or e.get("size") != size or e.get("mtime_ns") != mtime_ns:
            return None
        try:
            return Probe(**e)
        except TypeError:
            return None

    def put(self, path: Path, probe: Probe) -> None:
        self.entries[self.key(path)] = asdict(probe)
        self.changed = True

    def save(self) -> Path | None:
        """Write the store (root first, then the fallback); None when neither is writable."""
        if not self.changed:
            return self.location
        text = json.dumps({"version": VERSION, "entries": self.entries}, separators=(",", ":"))
        for f in (self.root / PROBE_FILE, self.fallback):
            try:
                atomic_write_bytes(f, text.encode())
            except OSError:
                continue
            self.location, self.changed = f, False
            return f
        log.warning("cannot save video probe results in %s or %s", self.root, self.fallback)
        return None


def probe_videos(
    root: str | Path,
    paths: Iterable[Path],
    progress: Progress | None = None,
    workers: int | None = None,
) -> dict[Path, Probe]:
    """Probe each existing file in ``paths`` (cached results reused; others in threads)."""
    store = ProbeStore(root)
    out: dict[Path, Probe] = {}
    todo: list[tuple[Path, int, int]] = []
    for p in dict.fromkeys(paths):
        st = p.stat()
        cached = store.get(p, st.st_size, st.st_mtime_ns)
        if cached is not None:
            out[p] = cached
        else:
            todo.append((p, st.st_size, st.st_mtime_ns))
    total, done = len(out) + len(todo), len(out)
    if progress:
        progress(done, total)
    if todo:
        log.info("probing %d videos (once; results kept in %s)", len(todo), PROBE_FILE)

    def one(item: tuple[Path, int, int]) -> tuple[Path, Probe]:
        p, size, mtime = item
        try:
            frames, fps = probe_video(p)
            return p, Probe(size, mtime, frames, fps)
        except Exception as exc:  # noqa: BLE001 - any failure makes the video unreadable
            return p, Probe(size, mtime, error=_reason(exc))

    n = workers or min(8, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=n) as pool:
        for fut in as_completed([pool.submit(one, item) for item in todo]):
            p, probe = fut.result()
            out[p] = probe
            store.put(p, probe)
            done += 1
            if progress:
                progress(done, total)
    store.save()
    return out
