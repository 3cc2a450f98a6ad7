"""The run directory: create, write atomically, read incrementally, list.

This is the only interface between the engine and its viewers (see docs/ARCHITECTURE.md).
What each file holds is :mod:`engine.schema` (re-exported here): the writers below check
every run.json field and metrics/system row against it, the readers take their key lists
from it. It imports no torch, so the CLI and the TUI stay light.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import math
import os
import re
import shutil
import socket
import stat as _stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

# the schema is re-exported: this module is the run folder's front door
from engine.schema import (  # noqa: F401
    ACTIVE,
    ARCHIVE_DIR,
    METRIC_ROWS,
    NOTES_JSON,
    REPORT_FIGURES,
    RESUMABLE,
    ROW_FIGURES,
    ROW_POSITION,
    STATUSES,
    TRANSLATION_FIGURES,
    TRASH_DIR,
    EpochRow,
    EvalRow,
    GpuReading,
    RunMeta,
    RunNotes,
    SchemaError,
    SplitFigures,
    StepRow,
    SystemRow,
    check_metric_row,
    check_notes,
    check_run_fields,
    check_system_row,
    keys,
    lower_is_better,
    specs,
)

RUN_JSON = "run.json"
CONFIG_JSON = "config.json"
METRICS = "metrics.jsonl"
SYSTEM = "system.jsonl"
LOG = "log.txt"
EVAL_DIR = "eval"
THRESHOLD_JSON = "threshold.json"
TRANSLATIONS_CSV = "translations.csv"  # in eval/ of a translation run (engine.recording)
DATA_JSON = "data.json"
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
LOW_SPACE_BYTES = 1 << 20  # below this much free space a run does not start


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


class WriteError(OSError):
    """A run-folder write that failed (a full disk, a folder that cannot be made); ``str()``
    is one line for people. An OSError, so callers that catch OSError show it as is."""

    def __init__(self, message: str, err: int | None = None, filename: str | None = None):
        super().__init__(err, message, filename)
        self.message = message

    def __str__(self) -> str:
        return self.message


TMP_SUFFIX = ".tmp"  # temp files of the atomic writers: .<name>.<random>.tmp


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_file(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(f)`` on a temp file in the same folder, fsync, then rename it over
    ``path``: a reader sees the old file or the new one, never half of one. On any failure
    (a full disk, an exception in ``write``) the temp file is removed and the old file
    stays; an OSError without a file name gets ``path``. Checkpoints use it too
    (``atomic_write_file(p, lambda f: torch.save(obj, f))``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            # mkstemp makes the file 0600; the result gets the usual permissions instead,
            # so a colleague on the same box can read a run folder or a landmark cache
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError) and not exc.filename:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over ``path``."""
    atomic_write_file(path, lambda f: f.write(data))


def mount_point(path: str | Path) -> Path:
    """The mount point of the file system that holds ``path`` (or would hold it)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def no_space_message(path: str | Path) -> str:
    """The one line for a full disk: ``no space left on MOUNT (PATH)``."""
    return f"no space left on {mount_point(path)} ({path})"


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def no_space_line(exc: BaseException, path: str | Path) -> str | None:
    """:func:`no_space_message` when ``exc`` (or what caused it) is a full disk or quota,
    else None. torch's C++ writer reports a full disk as a RuntimeError ("file write
    failed"): that counts when ``path``'s file system is (nearly) full."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in NO_SPACE_ERRNOS:
            return no_space_message(e.filename or path)
    text = str(exc).lower()
    if "write failed" in text or "no space" in text:
        try:
            free = shutil.disk_usage(mount_point(path)).free
        except OSError:
            return None
        if free < LOW_SPACE_BYTES:
            return no_space_message(path)
    return None


def os_error_line(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """One line for people for an OSError: ``no space left on MOUNT (PATH)`` for a full
    disk, else the reason and the file."""
    if isinstance(exc, WriteError):  # already one line for people
        return str(exc)
    where = exc.filename or path
    full = no_space_line(exc, where or ".")
    if full is not None:
        return full
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason} ({where})" if where else reason


def check_free_space(path: str | Path, need: int = LOW_SPACE_BYTES) -> None:
    """Raise :class:`WriteError` (``no space left on ...``) when the file system that holds
    ``path`` has less than ``need`` bytes free: the small reserve a run's records need."""
    try:
        free = shutil.disk_usage(mount_point(path)).free
    except OSError:
        return
    if free < need:
        raise WriteError(no_space_message(path), errno.ENOSPC, str(path))


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
    """Strict JSON (:func:`to_jsonable`), indented, written atomically."""
    data = json.dumps(to_jsonable(obj), indent=2, default=str, allow_nan=False)
    atomic_write_bytes(path, data.encode())


def write_run_json(path: str | Path, meta: dict[str, Any]) -> None:
    """Write a run.json a program composed: every field must be one of
    :class:`~engine.schema.RunMeta`'s, of its type (:class:`SchemaError` otherwise). To
    change a run.json that is on disk, use :func:`update_run_json`."""
    check_run_fields(meta)
    _store_run_json(Path(path), meta)


def _store_run_json(path: Path, meta: dict[str, Any]) -> None:
    """Write run.json atomically. When that fails for want of space (the temp file cannot
    be written), overwrite the existing file in place, compactly and without a temp file: it
    is smaller than what it replaces, so it fits in the blocks the file already has. A
    status must be recorded even on a full disk."""
    try:
        atomic_write_json(path, meta)
        return
    except OSError as exc:
        if exc.errno not in NO_SPACE_ERRNOS or not path.is_file():
            raise
        first = exc
    data = json.dumps(to_jsonable(meta), separators=(",", ":"), default=str, allow_nan=False)
    try:
        with open(path, "r+b") as f:
            f.write(data.encode())
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        raise first from None


def update_run_json(
    run_dir: str | Path, fields: dict[str, Any], base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """run.json as it is on disk (over ``base``), updated with ``fields`` and ``updated_at``,
    written back (atomically; in place on a full disk). ``fields`` must fit
    :class:`~engine.schema.RunMeta` (:class:`SchemaError` otherwise); what was on disk is
    kept as it is, keys of other versions or hand edits included. Returns what was
    written."""
    check_run_fields(fields)
    path = Path(run_dir) / RUN_JSON
    meta = {**(base or {}), **(read_json(path) or {})}
    meta.update(fields)
    meta["updated_at"] = time.time()
    _store_run_json(path, meta)
    return meta


# the schema of each run-folder JSONL file the writers check; other files are free-form
_ROW_CHECKS: dict[str, Callable[[Any], None]] = {
    METRICS: check_metric_row,
    SYSTEM: check_system_row,
}


def append_jsonl(path: str | Path, obj: dict[str, Any]) -> None:
    """Append one row (:func:`append_rows`)."""
    append_rows(path, [obj])


def append_rows(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Append rows with a single write, so a reader sees whole lines or a torn tail. After
    a torn tail (a writer that died mid-line) the rows start on a fresh line, so the first
    is not glued onto the fragment. Rows of metrics.jsonl and system.jsonl must fit their
    schema (:func:`~engine.schema.check_metric_row`, :func:`~engine.schema.check_system_row`):
    an unknown kind or key, or a value of the wrong type, raises :class:`SchemaError`
    before anything is written."""
    check_row = _ROW_CHECKS.get(Path(path).name)
    if check_row is not None:
        for row in rows:
            check_row(row)
    dumps, opt = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY
    data = b"".join(dumps(row, option=opt) + b"\n" for row in rows)
    with open(path, "a+b") as f:
        end = f.seek(0, os.SEEK_END)
        if end > 0:
            f.seek(end - 1)
            if f.read(1) != b"\n":
                data = b"\n" + data
        f.write(data)
        f.flush()


def _read_json_any(path: str | Path) -> tuple[Any, str | None]:
    """(parsed value, None), or (None, why not): missing, unreadable or not JSON."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    try:
        return orjson.loads(data), None
    except orjson.JSONDecodeError:
        return None, "not valid JSON (torn or damaged)"


def read_json(path: str | Path) -> dict[str, Any] | None:
    """A JSON object file as a dict; None when missing, unreadable, not JSON, or valid JSON
    of another shape (a list, a number...)."""
    obj, _ = _read_json_any(path)
    return obj if isinstance(obj, dict) else None


# --------------------------------------------------------------------------- typed reading
#
# Files are read by people's tools while they grow, and can be damaged, hand-edited or
# written by another version. Every reader goes through these checks, so a value of the
# wrong type becomes "unreadable" (run.json), a dropped row (metrics.jsonl) or a missing
# figure (report.json), never an exception in a list of runs.

# run.json's fields as check_meta reads them (RunMeta's types; a float may be any number)
_META_FIELDS: dict[str, str] = {
    name: {"float": "number"}.get(spec.type, spec.type) for name, spec in specs(RunMeta).items()
}
_KIND_WORDS = {"str": "a string", "int": "an integer", "number": "a number", "object": "an object"}


def _is_number(v: Any) -> bool:
    return (type(v) is int or type(v) is float) and math.isfinite(v)


def _shape(v: Any) -> str:
    names = {list: "a list", dict: "an object", str: "a string", bool: "a boolean"}
    if v is None:
        return "null"
    if type(v) in (int, float):
        return "a number"
    return names.get(type(v), type(v).__name__)


def _short(v: Any) -> str:
    text = json.dumps(v, default=str) if not isinstance(v, str) else repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def check_meta(raw: Any) -> tuple[dict[str, Any], str | None]:
    """(run.json's fields that have the right types, the reason it is unreadable or None).
    A non-object, a known field of the wrong type or an unknown status makes it unreadable;
    the fields that are fine are kept for display."""
    if not isinstance(raw, dict):
        return {}, f"run.json holds {_shape(raw)}, not an object"
    meta = dict(raw)
    problems = []
    for key, kind in _META_FIELDS.items():
        v = meta.get(key)
        if v is None:
            continue
        if kind == "int" and type(v) is float and v.is_integer():
            meta[key] = int(v)
            continue
        ok = {
            "str": type(v) is str,
            "int": type(v) is int,
            "number": _is_number(v),
            "object": isinstance(v, dict),
        }[kind]
        if not ok:
            problems.append(f"{key} is {_short(v)}, not {_KIND_WORDS[kind]}")
            del meta[key]
    st = meta.get("status")
    if st is not None and st not in STATUSES:
        problems.append(f"unknown status {_short(st)}")
        del meta["status"]
    return meta, ("run.json: " + "; ".join(problems)) if problems else None


_ROW_INT_SET = frozenset(ROW_POSITION)


def clean_row(row: Any) -> dict[str, Any] | None:
    """A metrics/system row readers can use, or None to drop it: an object whose ``kind`` is
    a string and whose ``epoch``/``step``/``step_in_epoch`` are integers (or absent). A
    known figure (loss, accuracy, lr, time...) that is not a number becomes null; other
    fields are left as they are. Cheap: it runs on every line a viewer reads (a row of
    numbers and a kind takes the fast path)."""
    if type(row) is not dict:
        return None
    for key, v in row.items():
        t = type(v)
        if t is int or v is None:
            continue
        if t is float:
            if key in _ROW_INT_SET:
                return _clean_row_fully(row)
            continue
        if t is str and key == "kind":
            continue
        return _clean_row_fully(row)
    return row


def _clean_row_fully(row: dict[str, Any]) -> dict[str, Any] | None:
    kind = row.get("kind")
    if kind is not None and type(kind) is not str:
        return None
    for key in ROW_POSITION:
        v = row.get(key)
        if v is None or type(v) is int:
            continue
        if type(v) is float and v.is_integer():
            row[key] = int(v)
            continue
        return None
    bad = None
    for key, v in row.items():
        t = type(v)
        if t is float or t is int or v is None:
            continue
        if key in ROW_FIGURES:
            (bad := bad or []).append(key)
    for key in bad or ():
        row[key] = None
    if kind == "examples" and "examples" in row:
        row["examples"] = _clean_examples(row["examples"])
    return row


_EXAMPLE_TEXTS = ("id", "reference", "hypothesis")


def _clean_examples(v: Any) -> list[dict[str, Any]] | None:
    """An examples row's ``examples``: the entries that are objects, with ``id``,
    ``reference`` and ``hypothesis`` strings (else null); null when it is not a list."""
    if not isinstance(v, list):
        return None
    out = []
    for e in v:
        if isinstance(e, dict):
            out.append({k: e.get(k) if type(e.get(k)) is str else None for k in _EXAMPLE_TEXTS})
    return out


# a split's figures, classification's and translation's (report.json's val/test/beam)
_SPLIT_FIGURES = tuple(dict.fromkeys((*REPORT_FIGURES, *TRANSLATION_FIGURES)))


def _figures(d: dict[str, Any]) -> dict[str, Any]:
    """A split's figures with the known ones numeric (else null)."""
    out = dict(d)
    for k in _SPLIT_FIGURES:
        if k in out and not (out[k] is None or _is_number(out[k])):
            out[k] = None
    return out


def clean_report(raw: Any) -> dict[str, Any] | None:
    """eval/report.json as readers use it: None when it is not an object; a split that is
    not an object, a best threshold or calibration of the wrong shape, or a count that is
    not an integer is left out; figures that are not numbers become null. A translation
    run's report (``task: "translation"``) keeps its beam-search figures (``beam`` ->
    split), cleaned the same way; grouped metrics (``grouped`` -> split -> aggregate,
    num_groups, summary) are kept where they have that shape."""
    if not isinstance(raw, dict):
        return None
    rep = dict(raw)
    for split in ("train", "val", "test"):  # train: `slr eval --split train|all`
        if split in rep:
            if isinstance(rep[split], dict):
                rep[split] = _figures(rep[split])
            else:
                del rep[split]
    for key in ("num_classes", "best_epoch", "num_beams"):
        if key in rep and type(rep[key]) is not int:
            del rep[key]
    for key in ("task", "monitor"):
        if key in rep and type(rep[key]) is not str:
            del rep[key]
    beam = rep.get("beam")
    if beam is not None:
        if isinstance(beam, dict):
            rep["beam"] = {
                s: _figures(beam[s]) for s in ("val", "test") if isinstance(beam.get(s), dict)
            }
        else:
            del rep["beam"]
    best = rep.get("best_threshold")
    if best is not None:
        if isinstance(best, dict):
            rep["best_threshold"] = {
                s: _figures(r)
                for s, r in best.items()
                if isinstance(r, dict) and _is_number(r.get("threshold"))
            }
        else:
            del rep["best_threshold"]
    cal = rep.get("calibration")
    if cal is not None:
        ok = (
            isinstance(cal, dict)
            and _is_number(cal.get("threshold"))
            and _is_number(cal.get("default_threshold"))
        )
        if ok:
            cal = dict(cal)
            for s in ("val", "test"):
                row = cal.get(s)
                if row is None:
                    continue
                if isinstance(row, dict) and all(
                    isinstance(row.get(k), dict) for k in ("default", "calibrated")
                ):
                    cal[s] = {k: _figures(row[k]) for k in ("default", "calibrated")}
                else:
                    del cal[s]
            rep["calibration"] = cal
        else:
            del rep["calibration"]
    grouped = rep.get("grouped")
    if grouped is not None:
        rep["grouped"] = _clean_grouped(grouped)
        if not rep["grouped"]:
            del rep["grouped"]
    return rep


def _clean_grouped(raw: Any) -> dict[str, Any]:
    """report.json's ``grouped`` (split -> ``{"aggregate", "num_groups", "summary"}``, see
    ``engine.evaluate.write_eval``): the splits whose entry has that shape, figures cleaned."""
    out: dict[str, Any] = {}
    if not isinstance(raw, dict):
        return out
    for split, entry in raw.items():
        if not (
            isinstance(entry, dict)
            and type(entry.get("num_groups")) is int
            and isinstance(entry.get("summary"), dict)
        ):
            continue
        clean = dict(entry)
        if type(clean.get("aggregate")) is not str:
            clean["aggregate"] = None
        if "mixed_label_groups" in clean and type(clean["mixed_label_groups"]) is not int:
            del clean["mixed_label_groups"]
        clean["summary"] = _figures(entry["summary"])
        out[str(split)] = clean
    return out


_TRANSLATION_COLUMNS = ("split", "id", "reference", "hypothesis", "hypothesis_beam")


def read_translations(
    eval_dir: str | Path, split: str | None = None
) -> tuple[list[dict[str, str]], str | None]:
    """(eval/translations.csv's rows, of ``split`` when given; None, or why there are
    none). Each row has split, id, reference, hypothesis (greedy) and hypothesis_beam as
    strings (empty when the run did no beam search); a file that is not UTF-8 or lacks the
    columns is one reason, never an exception."""
    import csv

    path = Path(eval_dir) / TRANSLATIONS_CSV
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [
                c
                for c in ("split", "reference", "hypothesis")
                if c not in (reader.fieldnames or ())
            ]
            if missing:
                return [], f"{path.name} has no {', '.join(missing)} column"
            rows = [
                {c: r.get(c) if isinstance(r.get(c), str) else "" for c in _TRANSLATION_COLUMNS}
                for r in reader
                if split is None or r.get("split") == split
            ]
    except FileNotFoundError:
        return [], "missing"
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [], f"cannot read {path.name}: {exc}"
    return rows, None


def clean_config(raw: Any) -> dict[str, Any]:
    """config.json as readers use it: {} when it is not an object; a section that is not an
    object is left out; one of the old flat layout comes without the keys its source and
    model family do not have (:func:`engine.config.upgrade`)."""
    if not isinstance(raw, dict):
        return {}
    from engine.config import upgrade

    return upgrade(
        {
            k: v
            for k, v in raw.items()
            if not (k in ("data", "model", "optim", "training") and not isinstance(v, dict))
        },
        saved=True,
    )


# --------------------------------------------------------------------------- tailing growing files


class Tail:
    """Reads the whole new lines of a growing file (a log, a JSONL file), remembering the
    byte offset after the last one it returned.

    A partial last line (being written, or torn by a crash) waits for the next call. A file
    that shrank or was replaced (another inode) is read again from the start. With
    ``from_end``, the first read starts at the first whole line within the file's last
    ``from_end`` bytes, so a long file is not read whole. A file that is missing or cannot
    be read has no new lines.
    """

    def __init__(self, path: str | Path, from_end: int | None = None) -> None:
        self.path = Path(path)
        self.offset = 0
        self._from_end = from_end  # until the first read positions the tail
        self._skip_partial = False  # the bytes up to the next newline end a line cut by from_end
        self._ino: int | None = None

    def _position(self, size: int) -> None:
        """The first read with ``from_end``: start one byte before the window, in a line
        to skip, so a line that starts right at the window's edge is kept."""
        if self._from_end is not None and size > self._from_end:
            self.offset = size - self._from_end - 1
            self._skip_partial = True
        self._from_end = None

    def read_chunk(self) -> bytes | None:
        """The new whole lines as one block, without the newline that ends the last one;
        None when no new line is whole yet."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        self._position(st.st_size)
        if st.st_size < self.offset or (self._ino is not None and st.st_ino != self._ino):
            self.offset, self._skip_partial = 0, False
        self._ino = st.st_ino
        if st.st_size == self.offset:
            return None
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(st.st_size - self.offset)
        except OSError:
            return None
        start = 0
        if self._skip_partial:
            start = data.find(b"\n") + 1
            if start == 0:  # the cut line goes on: skip what there is of it
                self.offset += len(data)
                return None
            self._skip_partial = False
        end = data.rfind(b"\n")
        if end < start:
            self.offset += start
            return None
        self.offset += end + 1
        return data[start:end]

    def read_lines(self) -> list[bytes]:
        """The new whole lines, without their newlines."""
        chunk = self.read_chunk()
        return [] if chunk is None else chunk.split(b"\n")


class TextTail(Tail):
    """A growing text file (log.txt) as new lines of text (UTF-8, bad bytes replaced); the
    first read starts within the last ``initial_bytes``."""

    def __init__(self, path: str | Path, initial_bytes: int = 64 * 1024) -> None:
        super().__init__(path, from_end=initial_bytes)

    def read_new(self) -> list[str]:
        return [line.decode("utf-8", errors="replace") for line in self.read_lines()]


def parse_rows(lines: Iterable[bytes]) -> tuple[list[dict[str, Any]], int]:
    """(the rows readers can use, how many lines were skipped): a blank line is ignored, a
    line that is not valid JSON or a row of the wrong shape (:func:`clean_row`) is skipped."""
    rows: list[dict[str, Any]] = []
    skipped = 0
    loads = orjson.loads
    for line in lines:
        if not line.strip():
            continue
        try:
            obj = clean_row(loads(line))
        except orjson.JSONDecodeError:
            obj = None
        if obj is None:
            skipped += 1
        else:
            rows.append(obj)
    return rows, skipped


class JsonlTail(Tail):
    """Reads a growing JSONL file (metrics.jsonl, system.jsonl) incrementally: a
    :class:`Tail` whose lines are parsed (:func:`parse_rows`); skipped lines are counted in
    ``skipped``."""

    def __init__(self, path: str | Path, from_end: int | None = None) -> None:
        super().__init__(path, from_end=from_end)
        self.skipped = 0

    def read_new(self) -> list[dict[str, Any]]:
        rows, skipped = parse_rows(self.read_lines())
        self.skipped += skipped
        return rows


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All whole, valid lines of a JSONL file (a torn last line is skipped)."""
    return JsonlTail(path).read_new()


_LINE_BREAK = re.compile(rb"[\r\n]")
_LINE_BREAKS = re.compile(r"[\r\n]+")


def last_lines(path: str | Path, nbytes: int) -> list[str]:
    """The lines in the last ``nbytes`` of a text file, for a one-off look at a log: broken
    at newlines and carriage returns (progress bars redraw with one), the line being written
    kept, the line the window cuts into left out (unless it is all the window holds), empty
    lines dropped. [] when the file cannot be read."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - nbytes - 1))  # a byte more: a line starting at the edge is whole
            data = f.read()
    except OSError:
        return []
    if size > nbytes:
        cut = _LINE_BREAK.search(data)
        data = data[cut.end() :] if cut is not None else data[1:]
    return [line for line in _LINE_BREAKS.split(data.decode("utf-8", "replace")) if line]


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


def active_seconds(
    meta: dict[str, Any], now: float | None = None, status: str | None = None
) -> float | None:
    """Seconds a run has been active, over all its sessions (a resumed run does not count
    the time it sat stopped): ``active_s`` (closed sessions) plus the open session, which
    runs to ``now`` while ``status`` is active, else to ``ended_at`` / ``updated_at``.
    Runs recorded before sessions were: start to end. None without a start."""
    live = status in ACTIVE
    now = time.time() if now is None else now

    def end_of(since: float) -> float:
        if live:
            return now
        for key in ("ended_at", "updated_at"):
            if _is_number(meta.get(key)):
                return float(meta[key])
        return since

    acc, sess = meta.get("active_s"), meta.get("session_started_at")
    acc = float(acc) if _is_number(acc) else None
    sess = float(sess) if _is_number(sess) else None
    if acc is None and sess is None:
        start = meta.get("started_at")
        if not _is_number(start):
            return None
        return max(0.0, end_of(float(start)) - float(start))
    total = acc or 0.0
    if sess is not None:
        total += max(0.0, end_of(sess) - sess)
    return total


def open_session(meta: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The run.json fields that start a session (an engine process working on the run):
    earlier sessions folded into ``active_s``, this one from ``now``."""
    now = time.time() if now is None else now
    return {"active_s": active_seconds(meta, now, "closed") or 0.0, "session_started_at": now}


def close_session(meta: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The run.json fields that end the open session at ``now``."""
    now = time.time() if now is None else now
    return {"active_s": active_seconds(meta, now, "running") or 0.0, "session_started_at": None}


# --------------------------------------------------------------------------- translation runs

#: the model families that translate (the engine refuses them on classification data and
#: a classifier on translation data) and the data sources of signed sentences
TRANSLATION_MODELS = ("multistream_seq2seq",)
TRANSLATION_SOURCES = ("translation", "synthetic_translation")
#: the epoch-row figures only a translation run records (any of them may be its monitor)
TRANSLATION_ROW_KEYS = keys(
    EpochRow,
    "train_token_acc",
    "val_token_acc",
    "val_bleu1",
    "val_bleu2",
    "val_bleu3",
    "val_bleu4",
    "val_chrf",
    "val_wer",
)


def translation_meta(meta: dict[str, Any]) -> bool:
    """run.json says the run translates: it monitors a translation figure, its latest
    epoch row has one, or its results are BLEU/chrF/WER. (Before its first epoch a
    translation run that monitors val_loss looks like any other: see
    :meth:`RunInfo.task`.)"""
    if meta.get("monitor") in TRANSLATION_ROW_KEYS:
        return True
    last = meta.get("last_metrics")
    if isinstance(last, dict) and any(last.get(k) is not None for k in TRANSLATION_ROW_KEYS):
        return True
    results = meta.get("results")
    if isinstance(results, dict):
        return any(isinstance(r, dict) and "bleu4" in r for r in results.values())
    return False


def translation_config(cfg: dict[str, Any]) -> bool:
    """A (clean) config.json that trains a translation model or reads signed sentences."""
    model = (cfg.get("model") or {}).get("name")
    source = (cfg.get("data") or {}).get("source")
    return (isinstance(model, str) and model.lower() in TRANSLATION_MODELS) or (
        source in TRANSLATION_SOURCES
    )


def translation_monitor(monitor: Any) -> str:
    """The figure a translation run monitors: the config's, except classification's
    default ``val_acc`` (which means "the default" there: ``val_loss``, as the trainer
    does)."""
    return monitor if isinstance(monitor, str) and monitor != "val_acc" else "val_loss"


@dataclass
class RunInfo:
    """One run folder as viewers see it. ``problem`` says why its run.json is unreadable
    (status ``unreadable``); the fields that could be read are still in ``meta``."""

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None
    notes: dict[str, Any] | None = None  # notes.json (read_notes), where a listing read it
    archived: bool = False  # listed from <runs>/archive/ (RunIndex with archived=True)

    @property
    def tags(self) -> list[str]:
        """The run's tags (notes.json), read now unless a listing read them already."""
        if self.notes is None:
            self.notes = read_notes(self.path)
        return list(self.notes.get("tags") or [])

    @property
    def id(self) -> str:
        return self.meta.get("id") or self.path.name

    @property
    def raw_status(self) -> str:
        if self.problem:
            return "unreadable"
        return self.meta.get("status", "unknown")

    @property
    def status(self) -> str:
        """``lost`` when run.json says running but the process is gone (on this host)."""
        st = self.raw_status
        if st in ACTIVE and self.meta.get("host") in (None, hostname()):
            if self.meta.get("slurm_job_id") and self.meta.get("pid") is None:
                return st  # a scheduler job not started yet (queued): its engine has no pid
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
        return active_seconds(self.meta, time.time(), self.status)

    @property
    def translation(self) -> bool:
        """The run translates, as far as run.json tells (cheap: the runs list)."""
        return translation_meta(self.meta)

    def task(self) -> str:
        """``translation`` or ``classification``: run.json, else eval/report.json, else
        config.json (a translation run before its first epoch)."""
        if self.translation:
            return "translation"
        rep = self.report()
        if rep and rep.get("task") == "translation":
            return "translation"
        return "translation" if translation_config(self.config()) else "classification"

    def config(self) -> dict[str, Any]:
        return clean_config(_read_json_any(self.path / CONFIG_JSON)[0])

    def report(self) -> dict[str, Any] | None:
        return clean_report(_read_json_any(self.path / EVAL_DIR / "report.json")[0])

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / METRICS)

    def refresh(self) -> RunInfo:
        raw, why = _read_json_any(self.path / RUN_JSON)
        if why is None:  # a torn file (being rewritten in place) keeps what was read before
            self.meta, self.problem = check_meta(raw)
            if self.problem and not self.meta.get("error"):
                self.meta["error"] = self.problem
        return self


def rebuild_meta(path: str | Path) -> dict[str, Any] | None:
    """What run.json should hold, rebuilt from config.json and metrics.jsonl (for a run.json
    that is missing or torn): id, preset, dataset, max epochs, monitor, epoch, step, best
    metric and epoch, start and last update, status ``starting`` (viewers show ``lost``
    without a live process). None without a readable config.json."""
    path = Path(path)
    cfg = clean_config(_read_json_any(path / CONFIG_JSON)[0])
    if not cfg:
        return None
    meta: dict[str, Any] = {"id": path.name, "status": "starting"}
    training = cfg.get("training") or {}
    monitor = training.get("monitor") if isinstance(training.get("monitor"), str) else "val_acc"
    if translation_config(cfg):
        monitor = translation_monitor(monitor)
    mode = training.get("monitor_mode")
    if isinstance(cfg.get("name"), str):
        meta["preset"] = cfg["name"]
    if type(training.get("max_epochs")) is int:
        meta["max_epochs"] = training["max_epochs"]
    try:  # the dataset label, as the engine names it
        from engine.config import validate

        meta["dataset"] = validate(cfg, str(path / CONFIG_JSON)).dataset_label()
    except Exception:  # noqa: BLE001 - a config this version cannot validate: no label
        pass
    if mode not in ("min", "max"):
        mode = "min" if lower_is_better(monitor) else "max"
    meta["monitor"], meta["monitor_mode"] = monitor, mode
    rows = read_jsonl(path / METRICS)
    times = [r["t"] for r in rows if _is_number(r.get("t"))]
    if times:
        meta["started_at"], meta["updated_at"] = min(times), max(times)
    epochs = list(iter_epochs(rows))
    if epochs:
        meta["epoch"] = max(r["epoch"] for r in epochs)
        steps = [r["step"] for r in rows if type(r.get("step")) is int]
        if steps:
            meta["step"] = max(steps)
        scored = [r for r in epochs if _is_number(r.get(monitor))]
        if scored:
            pick = min if mode == "min" else max
            best = pick(scored, key=lambda r: r[monitor])
            meta["best_metric"], meta["best_epoch"] = best[monitor], best["epoch"]
        accs = [r["val_acc"] for r in epochs if _is_number(r.get("val_acc"))]
        if accs:
            meta["best_val_acc"] = max(accs)
    return meta


def read_meta(path: str | Path) -> dict[str, Any]:
    """run.json of a run folder as a dict, for writers that update it: rebuilt
    (:func:`rebuild_meta`) when it is missing, torn or not an object; {} when nothing can
    be read."""
    raw = read_json(Path(path) / RUN_JSON)
    if raw is not None:
        return raw
    return rebuild_meta(path) or {}


def load_run(path: str | Path) -> RunInfo:
    """A run folder as viewers see it. Never raises for a folder that holds a run.json or
    a config.json: a run.json that is missing or torn is rebuilt from config.json and
    metrics.jsonl, one of the wrong shape makes the run ``unreadable`` (with the reason)."""
    path = Path(path)
    raw, why = _read_json_any(path / RUN_JSON)
    if why is not None:
        rebuilt = rebuild_meta(path)
        if rebuilt is not None:
            return RunInfo(path=path, meta=rebuilt)
        if why == "missing":
            raise RunError(f"{path} is not a run folder (no {RUN_JSON})")
        why = f"run.json: {why}"
        return RunInfo(path=path, meta={"id": path.name, "error": why}, problem=why)
    meta, problem = check_meta(raw)
    if problem and not meta.get("error"):
        meta["error"] = problem  # what `slr show` and the screens print for the run
    return RunInfo(path=path, meta=meta, problem=problem)


def _newest(r: RunInfo) -> tuple[float, str]:
    t = r.meta.get("started_at")
    return (float(t) if _is_number(t) else 0.0, r.id)


class RunIndex:
    """The run folders under ``root``, kept between scans: :meth:`scan` stats each
    folder's run.json and re-reads only those whose (mtime_ns, size) changed since the
    last scan; new folders are read, removed ones dropped. ``reads`` counts run.json
    reads (for tests). Not thread-safe: one scanner at a time."""

    def __init__(self, root: str | Path, archived: bool = False) -> None:
        self.root = Path(root)
        self.archived = archived  # also list <root>/archive/*, keyed "archive/NAME"
        self._runs: dict[str, tuple[tuple[int, ...], RunInfo]] = {}
        self.reads = 0
        self.changed: set[str] = set()  # folder names read by the last scan (new or changed)
        self.removed: set[str] = set()  # folder names gone since the scan before

    def scan(self) -> list[RunInfo]:
        """Every run folder, newest first (as :func:`list_runs`). An unchanged run is the
        same :class:`RunInfo` object as the scan before."""
        old = self._runs
        new: dict[str, tuple[tuple[int, ...], RunInfo]] = {}
        self.changed = set()
        entries = [("", e) for e in _scandir(self.root)]
        if self.archived:
            entries += [(ARCHIVE_DIR + "/", e) for e in _scandir(self.root / ARCHIVE_DIR)]
        for prefix, e in entries:
            name = prefix + e.name
            if e.name.startswith(".") or name == ARCHIVE_DIR:  # .trash, archive: not runs
                continue
            try:
                if not e.is_dir():
                    continue
                st = os.stat(os.path.join(e.path, RUN_JSON))
            except OSError:
                continue  # no run.json (or unreadable folder): not listed, as list_runs
            if not _stat.S_ISREG(st.st_mode):
                continue
            try:  # notes.json (tags): its change is a change of the run's entry too
                nst = os.stat(os.path.join(e.path, NOTES_JSON))
                nsig: tuple[int, ...] = (nst.st_mtime_ns, nst.st_size)
            except OSError:
                nsig = ()
            sig = (st.st_mtime_ns, st.st_size, *nsig)
            prev = old.get(name)
            if prev is not None and prev[0] == sig:
                new[name] = prev
                continue
            p = Path(e.path)
            self.reads += 1
            try:
                info = load_run(p)
            except RunError:
                continue
            except Exception as exc:  # noqa: BLE001 - one bad folder is one bad row
                info = RunInfo(path=p, meta={"id": name}, problem=f"cannot read: {exc}")
            info.notes = read_notes(p) if nsig else {"tags": [], "note": ""}
            info.archived = bool(prefix)
            new[name] = (sig, info)
            self.changed.add(name)
        self.removed = set(old) - set(new)
        self._runs = new
        out = [info for _, info in new.values()]
        out.sort(key=_newest, reverse=True)
        return out


def _scandir(path: Path) -> list[os.DirEntry]:
    try:
        return list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def list_runs(root: str | Path, archived: bool = False) -> list[RunInfo]:
    """Every run folder under ``root``, newest first; with ``archived`` those in
    ``root/archive/`` too (never those in ``root/.trash/``). A folder that cannot be read
    is one ``unreadable`` entry (with the reason), never a broken list. (Viewers that list
    the same folder again and again keep a :class:`RunIndex`.)"""
    root = Path(root)
    if not root.is_dir():
        return []
    return RunIndex(root, archived=archived).scan()


def _is_path_ref(ref: str) -> bool:
    """An explicit path (absolute, ``~``, ``./``, ``../``, or holding a separator), as
    opposed to a run id or a prefix of one."""
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return ref.startswith("~") or any(s in ref for s in seps) or ref in (".", "..")


def resolve_run(ref: str, root: str | Path) -> RunInfo:
    """RUN: a run id, a unique prefix of one (both looked up in ``root`` only, never a
    path), or an explicit path that exists as given and is a run folder. Whatever is
    written for the run goes into the folder this returns, nothing outside it."""
    if not ref or not ref.strip():
        raise RunError("give a run id, a unique prefix of one, or a path to a run folder")
    if "\0" in ref:
        raise RunError("a run reference cannot contain a NUL character")
    if _is_path_ref(ref):
        p = Path(ref).expanduser()
        if not p.is_dir():
            raise RunError(f"no run folder at {ref}")
        if not ((p / RUN_JSON).is_file() or (p / CONFIG_JSON).is_file()):
            raise RunError(f"{ref} is not a run folder (no {RUN_JSON} or {CONFIG_JSON})")
        return load_run(p)
    root = Path(root)
    exact = root / ref
    if exact.is_dir() and ((exact / RUN_JSON).is_file() or (exact / CONFIG_JSON).is_file()):
        return load_run(exact)
    matches = [r for r in list_runs(root) if r.path.name.startswith(ref) or r.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunError(f"no run '{ref}' under {root} (give an id, a unique prefix, or a path)")
    names = ", ".join(r.path.name for r in matches[:5])
    raise RunError(f"'{ref}' matches {len(matches)} runs ({names}...): give more of the id")


def iter_epochs(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Epoch rows, the last one per epoch number (a resumed run may repeat one); a row
    without an integer epoch is skipped."""
    last: dict[int, dict[str, Any]] = {}
    for r in rows:
        if isinstance(r, dict) and r.get("kind") == "epoch":
            e = r.get("epoch", 0)
            if type(e) is int:
                last[e] = r
    for k in sorted(last):
        yield last[k]


def format_duration(seconds: float | None) -> str:
    """``H:MM:SS`` (``M:SS`` under an hour), ``-`` for none: how the CLI and every screen
    show a duration (of a run, see :func:`active_seconds`, or an ETA)."""
    if seconds is None:
        return "-"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# --------------------------------------------------------------------------- tags and notes

_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
MAX_NOTE_CHARS = 4000


def check_tag(tag: str) -> str:
    """A tag as given, or :class:`RunError` (one line) unless it is 1-40 letters, digits,
    dots, dashes or underscores, starting with a letter or digit."""
    if not _TAG.fullmatch(tag or ""):
        raise RunError(
            f"bad tag '{tag}': use 1-40 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit"
        )
    return tag


def read_notes(run_dir: str | Path) -> dict[str, Any]:
    """notes.json of a run folder as ``{"tags": [...], "note": "..."}`` (empty ones when it
    is missing or damaged: tags that are not strings are dropped, never an exception)."""
    raw = read_json(Path(run_dir) / NOTES_JSON) or {}
    tags = raw.get("tags")
    tags = [t for t in tags if isinstance(t, str) and t] if isinstance(tags, list) else []
    note = raw.get("note")
    out: dict[str, Any] = {
        "tags": list(dict.fromkeys(tags)),
        "note": note if isinstance(note, str) else "",
    }
    if _is_number(raw.get("updated_at")):
        out["updated_at"] = raw["updated_at"]
    return out


@contextlib.contextmanager
def _folder_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on a folder (flock on its descriptor), so two writers of notes.json
    (the CLI and the TUI at once) never lose each other's read-modify-write."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def update_notes(
    run_dir: str | Path,
    *,
    tags: Iterable[str] | None = None,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    note: str | None = None,
) -> dict[str, Any]:
    """Change a run's notes.json: ``tags`` replaces the tags, then ``add`` and ``remove``
    change them (in order, no repeats); ``note`` (when given, "" clears it) replaces the
    note. Read, changed and written atomically under a lock on the run folder; the engine
    never writes this file, so nothing it records while the run trains can undo it.
    Returns what was written; :class:`RunError` for a bad tag or a note too long."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(f"no run folder at {path}")
    new_tags = None if tags is None else [check_tag(t) for t in tags]
    add = [check_tag(t) for t in add]
    remove = list(remove)
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise RunError(f"the note is {len(note)} characters: {MAX_NOTE_CHARS} at most")
    with _folder_lock(path):
        cur = read_notes(path)
        out = list(cur["tags"] if new_tags is None else new_tags)
        out += [t for t in add if t not in out]
        out = [t for t in dict.fromkeys(out) if t not in remove]
        fields = {
            "tags": out,
            "note": cur["note"] if note is None else note,
            "updated_at": time.time(),
        }
        check_notes(fields)
        atomic_write_json(path / NOTES_JSON, fields)
    return fields


# --------------------------------------------------------------------------- trash and archive


def _in_store(info: RunInfo, root: Path) -> str | None:
    """Where ``info`` sits in the store ``root``: "" (a run), TRASH_DIR or ARCHIVE_DIR;
    None when it is elsewhere."""
    try:
        parent = info.path.resolve().parent
        root = root.resolve()
    except OSError:
        return None
    if parent == root:
        return ""
    for sub in (TRASH_DIR, ARCHIVE_DIR):
        if parent == root / sub:
            return sub
    return None


def move_run(info: RunInfo, root: str | Path, to: str) -> Path:
    """Move a run folder of the store ``root`` to ``root/.trash/`` (``to`` TRASH_DIR) or
    ``root/archive/`` (ARCHIVE_DIR), keeping its name; an archived run may go to the trash.
    Refused (RunError, one line) for an active run, a folder outside the store, or a name
    already taken there. One rename: nothing is copied and nothing is deleted."""
    root = Path(root)
    if to not in (TRASH_DIR, ARCHIVE_DIR):
        raise RunError(f"a run moves to {TRASH_DIR} or {ARCHIVE_DIR}, not {to!r}")
    where = _in_store(info, root)
    if where is None:
        raise RunError(f"run {info.id} ({info.path}) is not in the runs folder {root}")
    if where == to:
        raise RunError(f"run {info.id} is already in {root / to}")
    if where == TRASH_DIR:
        raise RunError(f"run {info.id} is in the trash: `slr restore {info.path.name}` first")
    if info.status in ACTIVE:
        raise RunError(f"run {info.id} is {info.status}: stop it first (slr stop {info.id})")
    dest = root / to / info.path.name
    if dest.exists():
        raise RunError(f"{dest} already exists: remove or rename it first")
    (root / to).mkdir(exist_ok=True)
    os.rename(info.path, dest)
    return dest


def stored_runs(root: str | Path, sub: str) -> list[RunInfo]:
    """The runs in ``root/.trash/`` or ``root/archive/``, newest first."""
    out = []
    for e in _scandir(Path(root) / sub):
        if e.is_dir() and not e.name.startswith("."):
            try:
                info = load_run(Path(e.path))
            except (RunError, OSError):
                continue
            info.archived = sub == ARCHIVE_DIR
            out.append(info)
    out.sort(key=_newest, reverse=True)
    return out


def find_stored(ref: str, root: str | Path) -> RunInfo:
    """A run in the trash or the archive by its folder name or a unique prefix of it
    (RunError, one line, when none or several match)."""
    if not ref or _is_path_ref(ref) or "\0" in ref:
        raise RunError("give the id (or a unique prefix) of a run in the trash or the archive")
    found = [r for sub in (TRASH_DIR, ARCHIVE_DIR) for r in stored_runs(root, sub)]
    exact = [r for r in found if r.path.name == ref]
    matches = exact or [r for r in found if r.path.name.startswith(ref)]
    if not matches:
        raise RunError(f"no run '{ref}' in {Path(root) / TRASH_DIR} or {Path(root) / ARCHIVE_DIR}")
    if len(matches) > 1:
        names = ", ".join(f"{r.path.parent.name}/{r.path.name}" for r in matches[:5])
        raise RunError(f"'{ref}' matches {len(matches)} runs ({names}): give more of the id")
    return matches[0]


def restore_run(info: RunInfo, root: str | Path) -> Path:
    """Move a run from ``root/.trash/`` or ``root/archive/`` back into ``root`` (RunError
    when it is not in either, or a run of that name is there already)."""
    root = Path(root)
    where = _in_store(info, root)
    if where not in (TRASH_DIR, ARCHIVE_DIR):
        raise RunError(f"run {info.id} is not in {root / TRASH_DIR} or {root / ARCHIVE_DIR}")
    dest = root / info.path.name
    if dest.exists():
        raise RunError(f"{dest} already exists: a run of that name is in the runs folder")
    os.rename(info.path, dest)
    return dest
