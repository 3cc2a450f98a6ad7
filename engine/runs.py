"""The run directory: create, write atomically, read incrementally, list.

This is the only interface between the engine and its viewers (see DESIGN.md). It imports
no torch, so the CLI and the TUI stay light.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

RUN_JSON = "run.json"
CONFIG_JSON = "config.json"
METRICS = "metrics.jsonl"
SYSTEM = "system.jsonl"
LOG = "log.txt"
EVAL_DIR = "eval"
THRESHOLD_JSON = "threshold.json"
DATA_JSON = "data.json"
ACTIVE = ("running", "starting")
STATUSES = ("starting", "running", "finished", "failed", "stopped", "lost")


class RunError(Exception):
    """A run reference that cannot be resolved, or a run folder that cannot be read."""


# --------------------------------------------------------------------------- locations


def runs_dir(explicit: str | Path | None = None) -> Path:
    """``--runs-dir`` if given, else ``$SLR_RUNS_DIR``, else ``./runs``."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("SLR_RUNS_DIR")
    return Path(env).expanduser() if env else Path("runs")


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def new_run_id(preset: str, now: float | None = None) -> str:
    """``YYYYMMDD-HHMMSS-<preset>``: sorts by start time, names the preset."""
    stamp = _dt.datetime.fromtimestamp(now or time.time()).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{_SAFE.sub('-', preset).strip('-') or 'run'}"


def create_run_dir(root: str | Path, preset: str) -> Path:
    """Make a fresh, uniquely named run folder under ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = new_run_id(preset)
    for i in range(1000):
        rid = base if i == 0 else f"{base}-{i + 1}"
        path = root / rid
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunError(f"cannot create a run folder under {root}")


# --------------------------------------------------------------------------- atomic writes


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def to_jsonable(obj: Any) -> Any:
    """Strict-JSON view: numpy arrays and scalars become lists and numbers, NaN and
    infinities become null (readers never meet a bare NaN)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_json(path: str | Path, obj: Any) -> None:
    data = json.dumps(to_jsonable(obj), indent=2, default=str, allow_nan=False)
    atomic_write_bytes(path, data.encode())


def append_jsonl(path: str | Path, obj: dict[str, Any]) -> None:
    """Append one line with a single write, so a reader sees whole lines or a torn tail."""
    line = orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    with open(path, "ab") as f:
        f.write(line)
        f.flush()


def read_json(path: str | Path) -> dict[str, Any] | None:
    try:
        return orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


# --------------------------------------------------------------------------- incremental JSONL


class JsonlTail:
    """Reads a growing JSONL file incrementally.

    Remembers the byte offset of the last whole line it parsed; a partial last line (one
    being written, or torn by a crash) is left for the next call, and a line that is not
    valid JSON is skipped. If the file shrinks (replaced), reading starts over.
    """

    def __init__(self, path: str | Path, chunk: int = 1 << 16):
        self.path = Path(path)
        self.offset = 0
        self.chunk = chunk
        self.skipped = 0
        self._ino: int | None = None

    def read_new(self) -> list[dict[str, Any]]:
        try:
            st = self.path.stat()
        except OSError:
            return []
        if st.st_size < self.offset or (self._ino is not None and st.st_ino != self._ino):
            self.offset = 0
        self._ino = st.st_ino
        if st.st_size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(st.st_size - self.offset)
        end = data.rfind(b"\n")
        if end < 0:
            return []
        rows: list[dict[str, Any]] = []
        for line in data[: end + 1].splitlines():
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                self.skipped += 1
                continue
            if isinstance(obj, dict):
                rows.append(obj)
        self.offset += end + 1
        return rows


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All whole, valid lines of a JSONL file (a torn last line is skipped)."""
    return JsonlTail(path).read_new()


# --------------------------------------------------------------------------- process checks


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, ValueError):
        return False
    # a zombie (exited, not yet reaped) is not alive
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def hostname() -> str:
    return socket.gethostname()


# --------------------------------------------------------------------------- reading runs


@dataclass
class RunInfo:
    """One run folder as viewers see it."""

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.meta.get("id") or self.path.name

    @property
    def raw_status(self) -> str:
        return self.meta.get("status", "unknown")

    @property
    def status(self) -> str:
        """``lost`` when run.json says running but the process is gone (on this host)."""
        st = self.raw_status
        if st in ACTIVE and self.meta.get("host") in (None, hostname()):
            if not pid_alive(self.meta.get("pid")):
                return "lost"
        return st

    @property
    def preset(self) -> str:
        return self.meta.get("preset", "")

    @property
    def dataset(self) -> str:
        return self.meta.get("dataset", "")

    @property
    def epoch(self) -> int:
        return int(self.meta.get("epoch") or 0)

    @property
    def max_epochs(self) -> int | None:
        return self.meta.get("max_epochs")

    @property
    def best_metric(self) -> float | None:
        return self.meta.get("best_metric")

    @property
    def started(self) -> float | None:
        return self.meta.get("started_at")

    @property
    def duration_s(self) -> float | None:
        start = self.meta.get("started_at")
        if start is None:
            return None
        end = self.meta.get("ended_at")
        if end is None:
            end = self.meta.get("updated_at") if self.status not in ACTIVE else time.time()
        return max(0.0, float(end or start) - float(start))

    def config(self) -> dict[str, Any]:
        return read_json(self.path / CONFIG_JSON) or {}

    def report(self) -> dict[str, Any] | None:
        return read_json(self.path / EVAL_DIR / "report.json")

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / METRICS)

    def refresh(self) -> RunInfo:
        self.meta = read_json(self.path / RUN_JSON) or self.meta
        return self


def load_run(path: str | Path) -> RunInfo:
    path = Path(path)
    meta = read_json(path / RUN_JSON)
    if meta is None:
        if (path / CONFIG_JSON).is_file():
            meta = {"id": path.name, "status": "starting"}
        else:
            raise RunError(f"{path} is not a run folder (no {RUN_JSON})")
    return RunInfo(path=path, meta=meta)


def list_runs(root: str | Path) -> list[RunInfo]:
    """Every run folder under ``root``, newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        if p.is_dir() and not p.name.startswith(".") and (p / RUN_JSON).is_file():
            with contextlib.suppress(RunError):
                out.append(load_run(p))
    out.sort(key=lambda r: (r.meta.get("started_at") or 0, r.id), reverse=True)
    return out


def resolve_run(ref: str, root: str | Path) -> RunInfo:
    """A run id, a unique prefix of one, or a path."""
    p = Path(ref).expanduser()
    if (p / RUN_JSON).is_file() or (p / CONFIG_JSON).is_file():
        return load_run(p)
    root = Path(root)
    if (root / ref / RUN_JSON).is_file():
        return load_run(root / ref)
    matches = [r for r in list_runs(root) if r.id.startswith(ref) or r.path.name.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunError(f"no run '{ref}' under {root} (give an id, a unique prefix, or a path)")
    names = ", ".join(r.id for r in matches[:5])
    raise RunError(f"'{ref}' matches {len(matches)} runs ({names}...): give more of the id")


def iter_epochs(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Epoch rows, the last one per epoch number (a resumed run may repeat one)."""
    last: dict[int, dict[str, Any]] = {}
    for r in rows:
        if r.get("kind") == "epoch":
            last[int(r.get("epoch", 0))] = r
    for k in sorted(last):
        yield last[k]


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
