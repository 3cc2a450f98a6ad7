"""Deterministic run folders for the TUI's tests, snapshots and benchmark.

Everything is fixed: timestamps, curves (closed-form), predictions (seeded numpy), so a
screen drawn from these folders looks the same on every machine. A ``running`` run gets
this process's pid (alive while the test runs); a ``lost`` one a pid that cannot exist.
Every file is written by the engine's own writers (:mod:`engine.runs`), which check
run.json and each row against :mod:`engine.schema`: a fixture cannot hold a key the
trainer does not write.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine import config as cfgmod
from engine import runs

T0 = 1735722000.0  # 2025-01-01 09:00:00 UTC
DAY = 86400.0
NOW = T0 + 3 * DAY + 900.0  # the frozen clock: 15 minutes into the running fixture
DEAD_PID = 2**22 + 4321  # above any pid_max: never a live process
CLASS_NAMES = ["hello", "thanks", "book", "drink", "eat", "help", "more", "please", "sorry", "want"]


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """A fresh JSONL file of ``rows``, through the engine's checked writer."""
    path.unlink(missing_ok=True)
    runs.append_rows(path, rows)


def metric_rows(
    epochs: int,
    steps_per_epoch: int = 20,
    log_every: int = 5,
    t0: float = T0,
    epoch_s: float = 30.0,
    speed: float = 0.45,
    best_acc: float = 0.95,
    lr: float = 3e-3,
) -> list[dict[str, Any]]:
    """Step and epoch rows with smooth, fixed curves (no randomness)."""
    rows: list[dict[str, Any]] = []
    best = -1.0
    for e in range(1, epochs + 1):
        for s in range(log_every, steps_per_epoch + 1, log_every):
            x = (e - 1) + s / steps_per_epoch
            step = (e - 1) * steps_per_epoch + s
            rows.append(
                {
                    "t": t0 + (x * epoch_s),
                    "kind": "step",
                    "epoch": e,
                    "step": step,
                    "step_in_epoch": s,
                    "train_loss": round(
                        2.3 * math.exp(-speed * x) + 0.3 + 0.05 * math.sin(step), 6
                    ),
                    "lr": lr * 0.5 * (1 + math.cos(math.pi * x / max(epochs, 1))),
                    "samples_per_s": 30.0,
                }
            )
        acc = round(best_acc * (1 - math.exp(-speed * e)) + 0.02 * math.sin(3 * e), 6)
        is_best = acc > best
        best = max(best, acc)
        rows.append(
            {
                "t": t0 + e * epoch_s,
                "kind": "epoch",
                "epoch": e,
                "step": e * steps_per_epoch,
                "train_loss": round(2.3 * math.exp(-speed * e) + 0.3, 6),
                "train_acc": round(min(1.0, acc + 0.03), 6),
                "val_loss": round(2.0 * math.exp(-speed * e) + 0.2 + 0.01 * math.cos(e), 6),
                "val_acc": acc,
                "val_top5": round(min(1.0, acc + 0.25 * math.exp(-e)), 6),
                "val_per_class_acc": round(acc - 0.01, 6),
                "val_macro_f1": round(acc - 0.02, 6),
                "lr": lr * 0.5 * (1 + math.cos(math.pi * e / max(epochs, 1))),
                "epoch_time_s": epoch_s,
                "samples_per_s": 30.0,
                "best": is_best,
            }
        )
    return rows


def predictions(num_classes: int, n: int, seed: int, skill: float = 2.5) -> dict[str, Any]:
    """Seeded softmax probabilities where the true class is usually (not always) on top."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    logits = rng.normal(0, 1.0, (n, num_classes))
    logits[np.arange(n), y] += skill
    if num_classes > 3:  # a systematic confusion: class 2 often looks like class 3
        two = np.where(y == 2)[0][::2]
        logits[two, 3] += skill + 0.8
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return {"ids": [f"s{i:04d}" for i in range(n)], "y_true": y, "probs": p}


def write_run(
    root: Path,
    rid: str,
    *,
    preset: str = "demo",
    status: str = "finished",
    epochs: int = 12,
    max_epochs: int = 12,
    steps_per_epoch: int = 20,
    t0: float = T0,
    sets: list[str] | None = None,
    speed: float = 0.45,
    best_acc: float = 0.95,
    with_eval: bool = True,
    num_classes: int = 10,
    seed: int = 0,
    system: str = "none",  # none | gpu | hot
    error: str | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> Path:
    """One run folder with fixed contents; returns its path."""
    run_dir = root / rid
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = cfgmod.resolve(preset=preset, sets=sets or [])
    runs.atomic_write_json(run_dir / runs.CONFIG_JSON, cfg.to_dict())
    lr = cfg.optim.lr
    rows = metric_rows(epochs, steps_per_epoch, t0=t0, speed=speed, best_acc=best_acc, lr=lr)
    epoch_rows = [r for r in rows if r["kind"] == "epoch"]
    best_row = max(epoch_rows, key=lambda r: r["val_acc"]) if epoch_rows else None
    ended = t0 + epochs * 30.0 + 5.0
    active = status in ("running", "lost")
    meta: dict[str, Any] = {
        "id": rid,
        "preset": cfg.name,
        "dataset": cfg.dataset_label(),
        "status": "running" if active else status,
        "host": runs.hostname(),
        "started_at": t0,
        "max_epochs": max_epochs,
        "epoch": epochs,
        "pid": os.getpid() if status == "running" else DEAD_PID if status == "lost" else None,
        "ended_at": None if active else ended,
        "updated_at": ended,
        "error": error,
        "steps_per_epoch": steps_per_epoch,
        "world_size": 1,
        "device": "cpu" if system == "none" else "cuda",
        "monitor": "val_acc",
        "monitor_mode": "max",
        "num_classes": num_classes,
        "step": epochs * steps_per_epoch,
        "best_metric": best_row["val_acc"] if best_row else None,
        "best_epoch": best_row["epoch"] if best_row else None,
    }
    if status == "finished":
        meta["stop_reason"] = "max_epochs" if epochs == max_epochs else "early_stop"
    meta.update(extra_meta or {})
    runs.write_run_json(run_dir / runs.RUN_JSON, meta)
    _write_rows(run_dir / runs.METRICS, rows)
    _write_system(run_dir / runs.SYSTEM, system, t0)
    log = [f"09:00:0{i} line {i}" for i in range(3)]
    log += [
        f"epoch {r['epoch']}/{max_epochs}  train_loss {r['train_loss']:.4f}  "
        f"val_loss {r['val_loss']:.4f}  val_acc {r['val_acc']:.4f}"
        for r in epoch_rows
    ]
    if error:
        log.append(f"error: {error}")
    (run_dir / runs.LOG).write_text("\n".join(log) + "\n")
    if with_eval and status == "finished":
        write_eval(run_dir, num_classes, seed, best_row["epoch"] if best_row else 0)
    return run_dir


def write_eval(run_dir: Path, num_classes: int, seed: int, best_epoch: int) -> dict[str, Any]:
    from engine import evaluate

    names = (
        CLASS_NAMES[:num_classes]
        if num_classes <= len(CLASS_NAMES)
        else [f"class{i}" for i in range(num_classes)]
    )
    splits = {
        "val": predictions(num_classes, 60, seed),
        "test": predictions(num_classes, 60, seed + 1000),
    }
    return evaluate.write_eval(
        run_dir / runs.EVAL_DIR,
        splits,
        names,
        evaluate.default_thresholds(),
        meta={"best_epoch": best_epoch},
    )


def _write_system(path: Path, kind: str, t0: float) -> None:
    if kind == "none":
        rows = [
            {
                "t": t0 + 1,
                "gpus": [],
                "error": "no NVIDIA GPU/driver: NVML Shared Library Not Found",
            }
        ]
    else:
        temp = 86 if kind == "hot" else 64
        rows = [
            {
                "t": t0 + 5 * i,
                "gpus": [
                    {
                        "index": 0,
                        "name": "NVIDIA H100 80GB HBM3",
                        "temp_c": temp,
                        "mem_used_mb": 40960.0,
                        "mem_total_mb": 81559.0,
                        "util_pct": 97,
                        "power_w": 512.3,
                    }
                ],
                "proc_peak_mem_mb": 38000.0,
            }
            for i in range(3)
        ]
    _write_rows(path, rows)


STANDARD = (
    "20250101-090000-demo",
    "20250102-090000-demo",
    "20250103-090000-wlasl100-conservative",
    "20250104-090000-demo",
    "20250105-090000-demo",
)


def build_runs(root: Path) -> dict[str, Path]:
    """The standard set: two finished demo runs (different lr), a failed WLASL run, a
    running run (this process) with a hot GPU, and a lost run."""
    root.mkdir(parents=True, exist_ok=True)
    out = {
        "a": write_run(root, "20250101-090000-demo", seed=0, system="none"),
        "b": write_run(
            root,
            "20250102-090000-demo",
            t0=T0 + DAY,
            epochs=10,
            sets=["optim.lr=0.001"],
            speed=0.35,
            best_acc=0.9,
            seed=1,
            system="gpu",
        ),
        "failed": write_run(
            root,
            "20250103-090000-wlasl100-conservative",
            preset="wlasl100-conservative",
            t0=T0 + 2 * DAY,
            status="failed",
            epochs=0,
            max_epochs=30,
            with_eval=False,
            error="data root /data/WLASL2000 has no WLASL_v0.3.json",
            system="gpu",
        ),
        "running": write_run(
            root,
            "20250104-090000-demo",
            t0=T0 + 3 * DAY,
            status="running",
            epochs=5,
            with_eval=False,
            system="hot",
        ),
        "lost": write_run(
            root,
            "20250105-090000-demo",
            t0=T0 + 4 * DAY,
            status="lost",
            epochs=3,
            with_eval=False,
        ),
    }
    return out


def write_big_metrics(path: Path, lines: int = 100_000, epochs: int = 100) -> None:
    """A metrics.jsonl of ``lines`` lines (mostly step rows) for the open benchmark."""
    per_epoch = lines // epochs - 1
    rows = metric_rows(epochs, steps_per_epoch=per_epoch, log_every=1)
    _write_rows(path, rows[:lines])


# --------------------------------------------------------------------------- app helpers


@contextlib.contextmanager
def fixed_runs(
    tmp_path: Path, monkeypatch: Any, template: Path | None = None
) -> Iterator[dict[str, Path]]:
    """:func:`build_runs` under ``tmp_path/runs`` (a copy of ``template``, a runs folder
    :func:`build_runs` made, when given) with the working directory at ``tmp_path`` (the app
    is given relative paths), settings in ``./config.yaml`` and local time UTC."""
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLR_CONFIG", str(tmp_path / "config.yaml"))
    try:
        if template is not None:
            shutil.copytree(template, tmp_path / "runs")
            names = dict(zip(("a", "b", "failed", "running", "lost"), STANDARD, strict=True))
            yield {k: tmp_path / "runs" / v for k, v in names.items()}
        else:
            yield build_runs(tmp_path / "runs")
    finally:
        if old_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old_tz
        time.tzset()


def make_app(**kw: Any):
    """The app on ``./runs`` with ``./config.yaml`` (relative: screens show stable paths),
    a frozen clock, no NVML (the GPU panel falls back to system.jsonl) and no dataset
    detection."""
    from slr_tui.app import SlrApp

    kw.setdefault("clock", lambda: NOW)
    kw.setdefault("gpu_reader", lambda: "no NVIDIA GPU/driver: (tests)")
    kw.setdefault("settings_path", "config.yaml")
    kw.setdefault("detect_parents", ())  # the machine's own datasets stay out of the tests
    return SlrApp("runs", **kw)


async def until(pilot: Any, cond: Any, timeout: float = 10.0, what: str = "") -> None:
    """Let the app run until ``cond()`` holds (or fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}")
        await pilot.pause(0.02)


def _cursor_in_view(table: Any) -> bool:
    """Whether a DataTable's cursor row lies inside its visible rows (or it has none)."""
    if not table.is_on_screen or not table.show_cursor or table.row_count == 0:
        return True  # (a table in a hidden tab keeps the size it had when last shown)
    height = table.scrollable_content_region.height
    if height <= 0:
        return True
    header = table.header_height if table.show_header else 0
    y = sum(r.height for r in table.ordered_rows[: table.cursor_row])
    top = int(table.scroll_y)
    return top <= y and y + 1 <= top + height - header


async def settle(pilot: Any, blink: bool = True) -> None:
    """Wait until a screen is still enough to snapshot: workers done, every shown plot drawn
    from its latest data, every table scrolled so its cursor row is in view and no scroll
    offset moving for three samples in a row; input cursors stop blinking."""
    from textual.widgets import DataTable, Input

    from slr_tui.widgets.metric_plot import MetricPlot

    app = pilot.app
    await pilot.pause(0.1)
    await app.workers.wait_for_complete()
    for plot in app.screen.query(MetricPlot):
        if plot.display:
            await until(
                pilot,
                lambda p=plot: p._cache_key is not None and p._cache_key[0] == p._version,
                what=f"plot {plot.id} drawn",
            )
    tables = list(app.screen.query(DataTable))
    for t in tables:
        await until(pilot, lambda t=t: _cursor_in_view(t), what=f"table {t.id} cursor in view")
    before, still = None, 0
    for _ in range(60):
        now = tuple((t.scroll_x, t.scroll_y, t.scroll_target_y) for t in tables)
        still = still + 1 if now == before else 0
        if still >= 3:
            break
        before = now
        await pilot.pause(0.05)
    # one more arrangement of the whole screen after the last scroll: a scrollbar takes
    # its table's virtual size when the screen is arranged, so a table that grew after the
    # last layout could still draw its thumb where it was
    app.screen.refresh(layout=True)
    await pilot.pause(0.1)
    if blink:
        for inp in app.screen.query(Input):
            inp.cursor_blink = False
    await pilot.pause(0.1)


async def open_live(pilot: Any, path: Path) -> Any:
    """Push the live screen of run ``path`` and wait until it has read the run (and its
    eval/ when there is one)."""
    from slr_tui.screens.live import LiveRunScreen

    screen = LiveRunScreen(path)
    await pilot.app.push_screen(screen)
    await until(pilot, lambda: screen.loaded, what="live screen loaded")
    if (Path(path) / "eval" / "report.json").is_file():
        await until(pilot, lambda: screen.eval_loaded, what="eval loaded")
    await pilot.pause(0.2)
    return screen


async def to_row(pilot: Any, key: str) -> None:
    """Put the runs table's cursor on run ``key`` (once the list shows it)."""
    table = pilot.app.screen.table
    await until(pilot, lambda: key in table.shown_keys, what=f"run {key} listed")
    table.select_key(key)
    await pilot.pause()


# --------------------------------------------------------------------------- issue 13 runs


def _rewrite_epochs(run_dir: Path, fn: Any) -> None:
    """Rewrite a run's metrics.jsonl with ``fn(row)`` applied to every epoch row."""
    rows = runs.read_jsonl(run_dir / runs.METRICS)
    _write_rows(run_dir / runs.METRICS, [fn(r) if r.get("kind") == "epoch" else r for r in rows])


def write_binary_run(root: Path, rid: str = "20250110-090000-error-recognition-mlp", **kw: Any):
    """A two-class run monitored on val macro F1 (top-5 is always 1.0; the star follows F1,
    which peaks at another epoch than accuracy)."""
    kw.setdefault("preset", "error-recognition-mlp")
    kw.setdefault("num_classes", 2)
    kw.setdefault("epochs", 8)
    kw.setdefault("max_epochs", 8)
    run_dir = write_run(root, rid, **kw)
    best = {"v": -1.0}

    def fix(r: dict[str, Any]) -> dict[str, Any]:
        e = r["epoch"]
        f1 = round(0.55 + 0.3 * math.sin(e / 2.6), 6)  # peaks at epoch 4, acc keeps rising
        r = {**r, "val_top5": 1.0, "val_macro_f1": f1, "best": f1 > best["v"]}
        best["v"] = max(best["v"], f1)
        return r

    _rewrite_epochs(run_dir, fix)
    ep = [r for r in runs.read_jsonl(run_dir / runs.METRICS) if r.get("kind") == "epoch"]
    top = max(ep, key=lambda r: r["val_macro_f1"]) if ep else None
    meta = runs.load_run(run_dir).meta
    meta.update(
        monitor="val_macro_f1",
        monitor_mode="max",
        best_metric=top["val_macro_f1"] if top else None,
        best_epoch=top["epoch"] if top else None,
    )
    runs.write_run_json(run_dir / runs.RUN_JSON, meta)
    return run_dir


def write_ctc_run(root: Path, rid: str = "20250111-090000-phase1-ctc20", **kw: Any) -> Path:
    """A CTC run: train loss (CTC, 50-85) far above val loss (NLL, 1-2), and the share of
    validation frames predicted blank falling from 0.97 (collapse) to 0.6."""
    kw.setdefault("preset", "phase1-ctc20")
    kw.setdefault("num_classes", 20)
    run_dir = write_run(root, rid, **kw)
    rows = runs.read_jsonl(run_dir / runs.METRICS)
    out = []
    for r in rows:
        x = r["step"] / 20.0
        if r.get("kind") == "step":
            r = {**r, "train_loss": round(50 + 35 * math.exp(-0.3 * x), 4)}
        elif r.get("kind") == "epoch":
            e = r["epoch"]
            r = {
                **r,
                "train_loss": round(50 + 35 * math.exp(-0.3 * e), 4),
                "val_loss": round(1.0 + math.exp(-0.25 * e), 4),
                "val_blank_share": round(0.6 + 0.37 * math.exp(-0.3 * (e - 1)), 4),
            }
        out.append(r)
    _write_rows(run_dir / runs.METRICS, out)
    return run_dir


def write_sweep(root: Path, values: tuple[str, ...] = ("1e-4", "3e-4", "5e-4", "1e-3")):
    """A 4-run sweep of the bigru error-recognition preset over optim.lr (ids that differ
    only in their time stamp); the last run is still training (this process's pid). Every
    run has a long ``description`` in its config that differs."""
    out = []
    for i, lr in enumerate(values):
        last = i == len(values) - 1
        rid = f"20250104-08{i}000-error-recognition-bigru"  # ends before NOW, the last runs
        run_dir = write_run(
            root,
            rid,
            preset="error-recognition-bigru",
            t0=T0 + 3 * DAY - 3600 + i * 600,
            sets=[f"optim.lr={lr}"],
            num_classes=2,
            seed=i,
            speed=0.3 + 0.1 * i,
            epochs=4 if last else 10,
            max_epochs=10,
            status="running" if last else "finished",
            with_eval=not last,
            extra_meta={
                "sweep": "sweep-20250104-080000-error-recognition-bigru",
                "sweep_params": {"optim.lr": lr},
                "monitor": "val_macro_f1",
            },
        )
        cfg = runs.load_run(run_dir).config()
        cfg["description"] = f"sweep member {i}: " + "a long description " * 6
        runs.atomic_write_json(run_dir / runs.CONFIG_JSON, cfg)
        out.append(run_dir)
    return out


def write_gpus8_system(run_dir: Path, hot: tuple[int, ...] = (6, 7)) -> None:
    """Eight H100s in system.jsonl; the ``hot`` ones at 80-83 °C, the rest 55-62 °C."""
    gpus = []
    for i in range(8):
        temp = (83, 80, 81, 82)[hot.index(i) % 4] if i in hot else 55 + i
        gpus.append(
            {
                "index": i,
                "name": "NVIDIA H100 80GB HBM3",
                "temp_c": temp,
                "mem_used_mb": 30000.0 + 1000 * i,
                "mem_total_mb": 81559.0,
                "util_pct": 90 + i,
                "power_w": 400.0 + 10 * i,
            }
        )
    _write_rows(run_dir / runs.SYSTEM, [{"t": T0 + 5, "gpus": gpus}])
