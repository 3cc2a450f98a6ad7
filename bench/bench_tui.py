"""How fast the TUI opens a big run, how soon a new metric line reaches the screen, and how
much CPU it uses idle. Headless (Textual's ``App.run_test``), no torch.

    python bench/bench_tui.py [--lines 100000] [--repeats 5] [--appends 20] [--json]

- open: push the live screen of a run whose metrics.jsonl has ``--lines`` lines (mostly
  step rows, 100 epochs) and wait until both plots were drawn with every point loaded and
  the epoch table is filled. Target: under 0.3 s.
- new line: the run is live (its pid is this process); append one epoch row to
  metrics.jsonl and wait until the epoch table shows it and the plots were redrawn with it.
  Target: under 0.5 s (poll every 0.25 s, plots redrawn at most 10 times a second).
- idle CPU: process CPU time over a few seconds on the runs screen (50 finished runs) and on
  the live screen of a finished run. Target: next to nothing.
- 1000 runs (``--scale-runs``, 0 to skip): the runs screen of a store of 1000 run folders
  (one of them running: its row ticks): open (app start to every row in the table, and a
  fresh runs screen pushed in a warm app), idle CPU over ``--idle-seconds`` (polled every
  2 s), and ``slr runs`` on the same store (a subprocess, wall). Targets: open < 1 s, idle
  CPU < 2 % of a core, ``slr runs`` < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import runs  # noqa: E402
from engine.runs import JsonlTail  # noqa: E402
from slr_tui.app import SlrApp  # noqa: E402
from slr_tui.screens.live import LiveRunScreen  # noqa: E402
from slr_tui.widgets.metric_plot import MetricPlot  # noqa: E402
from slr_tui.widgets.sortable_table import SortableTable  # noqa: E402

T0 = 1_700_000_000.0


def epoch_row(e: int, spe: int, t: float) -> dict[str, Any]:
    acc = 0.95 * (1 - math.exp(-0.05 * e))
    return {
        "t": t,
        "kind": "epoch",
        "epoch": e,
        "step": e * spe,
        "train_loss": 2.3 * math.exp(-0.05 * e) + 0.3,
        "train_acc": acc,
        "val_loss": 2.0 * math.exp(-0.05 * e) + 0.2,
        "val_acc": acc,
        "val_top5": min(1.0, acc + 0.1),
        "val_per_class_acc": acc,
        "val_macro_f1": acc,
        "lr": 1e-3,
        "epoch_time_s": 30.0,
        "samples_per_s": 100.0,
        "best": True,
    }


def make_run(root: Path, rid: str, lines: int, epochs: int, status: str) -> Path:
    """A run folder whose metrics.jsonl has ``lines`` lines: ``epochs`` epochs of step rows."""
    d = root / rid
    d.mkdir(parents=True)
    spe = max(1, lines // epochs - 1)
    with open(d / runs.METRICS, "wb") as f:
        n = 0
        for e in range(1, epochs + 1):
            for s in range(1, spe + 1):
                if n >= lines - (epochs - e + 1):
                    break
                step = (e - 1) * spe + s
                x = step / spe
                row = {
                    "t": T0 + x * 30,
                    "kind": "step",
                    "epoch": e,
                    "step": step,
                    "step_in_epoch": s,
                    "train_loss": 2.3 * math.exp(-0.05 * x) + 0.3 + 0.05 * math.sin(step),
                    "lr": 1e-3,
                    "samples_per_s": 100.0,
                }
                f.write(orjson.dumps(row) + b"\n")
                n += 1
            f.write(orjson.dumps(epoch_row(e, spe, T0 + e * 30)) + b"\n")
            n += 1
    meta = {
        "id": rid,
        "preset": "bench",
        "dataset": "synthetic10",
        "status": status,
        "host": runs.hostname(),
        "pid": os.getpid() if status == "running" else None,
        "started_at": T0,
        "ended_at": None if status == "running" else T0 + epochs * 30,
        "max_epochs": epochs * 2,
        "epoch": epochs,
        "steps_per_epoch": spe,
        "monitor": "val_acc",
        "best_metric": 0.9,
    }
    runs.atomic_write_json(d / runs.RUN_JSON, meta)
    (d / runs.LOG).write_text("bench\n")
    (d / runs.SYSTEM).write_text(json.dumps({"t": T0, "gpus": [], "error": "no GPU"}) + "\n")
    return d


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def new_app(root: Path, **kw: Any) -> SlrApp:
    return SlrApp(
        root,
        settings_path=root / "config.yaml",
        gpu_reader=lambda: "no NVIDIA GPU/driver: bench",
        **kw,
    )


async def _until(cond, timeout: float = 10.0, step: float = 0.002) -> float:
    start = time.perf_counter()
    while not cond():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("condition not met")
        await asyncio.sleep(step)
    return time.perf_counter() - start


async def settle(pilot) -> None:
    """Let the app start and finish its one-off warm-up (imports, first plot) first."""
    await pilot.pause(1.3)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.2)


async def bench_open(root: Path, run_dir: Path, repeats: int) -> list[float]:
    times: list[float] = []
    n_lines = count_lines(run_dir / runs.METRICS)
    app = new_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for _ in range(repeats):
            screen = LiveRunScreen(run_dir)
            start = time.perf_counter()
            await app.push_screen(screen)
            plots = list(screen.query(MetricPlot))
            table = screen.query_one("#epoch-table", SortableTable)

            def ready(screen=screen, plots=plots, table=table) -> bool:
                return (
                    screen.series.lines == n_lines
                    and all(
                        p.draws > 0 and p._cache_key == (p._version, p.size, app.theme, p.theme)
                        for p in plots
                    )
                    and table.row_count == len(screen.series.epochs)
                )

            await _until(ready)
            times.append(time.perf_counter() - start)
            app.pop_screen()
            await pilot.pause(0.05)
    return times


async def bench_new_line(root: Path, run_dir: Path, appends: int) -> list[float]:
    """Latency from appending an epoch row to the epoch table and plots showing it."""
    lat: list[float] = []
    app = new_app(root)
    metrics = run_dir / runs.METRICS
    meta = runs.read_json(run_dir / runs.RUN_JSON) or {}
    spe = meta["steps_per_epoch"]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = LiveRunScreen(run_dir)
        await app.push_screen(screen)
        await _until(lambda: screen.loaded)
        table = screen.query_one("#epoch-table", SortableTable)
        acc_plot = screen.query_one("#acc-plot", MetricPlot)
        rng = random.Random(0)
        epoch = max(screen.series.epochs)
        for _ in range(appends):
            await asyncio.sleep(rng.uniform(0.05, 0.4))  # land anywhere in the poll cycle
            epoch += 1
            rows_before = table.row_count
            draws_before = acc_plot.draws
            line = orjson.dumps(epoch_row(epoch, spe, time.time())) + b"\n"
            start = time.perf_counter()
            with open(metrics, "ab") as f:
                f.write(line)
            await _until(
                lambda rb=rows_before, db=draws_before: (
                    table.row_count > rb
                    and acc_plot.draws > db
                    and acc_plot._cache_key[0] == acc_plot._version
                )
            )
            lat.append(time.perf_counter() - start)
    return lat


async def bench_idle(root: Path, finished: Path, seconds: float) -> dict[str, float]:
    out: dict[str, float] = {}
    app = new_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        out["runs screen"] = (time.process_time() - c0) / (time.perf_counter() - w0)
        screen = LiveRunScreen(finished)
        await app.push_screen(screen)
        await _until(lambda: screen.loaded)
        await pilot.pause(1.0)
        await app.workers.wait_for_complete()
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        out["live screen, finished run"] = (time.process_time() - c0) / (time.perf_counter() - w0)
    return out


def make_store(root: Path, n: int) -> None:
    """``n`` small run folders (run.json, a short metrics.jsonl), all ended."""
    for i in range(n):
        status = "failed" if i % 17 == 0 else "finished"
        rid = f"2024{1 + i // 300:02d}{1 + (i // 10) % 28:02d}-{i:06d}-scale"
        d = root / rid
        d.mkdir(parents=True)
        meta = {
            "id": rid,
            "preset": "bench",
            "dataset": "synthetic10",
            "status": status,
            "host": runs.hostname(),
            "pid": os.getpid() if status == "running" else None,
            "started_at": T0 + 60.0 * i,
            "ended_at": None if status == "running" else T0 + 60.0 * i + 300,
            "max_epochs": 20,
            "epoch": 1 + i % 20,
            "steps_per_epoch": 10,
            "monitor": "val_acc",
            "monitor_mode": "max",
            "best_metric": round(0.5 + 0.4 * ((i * 37) % 100) / 100, 4),
            "best_epoch": 1 + i % 20,
            "last_metrics": {
                k: v for k, v in epoch_row(1 + i % 20, 10, 0).items() if k not in ("t", "kind")
            },
            "results": {
                s: {"accuracy": 0.8, "top5": 0.95, "macro_f1": 0.78, "n": 60}
                for s in ("val", "test")
            },
        }
        runs.atomic_write_json(d / runs.RUN_JSON, meta)
        (d / runs.METRICS).write_bytes(orjson.dumps(epoch_row(1, 10, T0 + 60.0 * i)) + b"\n")


async def bench_scale(root: Path, n: int, repeats: int, seconds: float) -> dict[str, Any]:
    """Open times and idle CPU of the runs screen on ``n`` runs."""
    from slr_tui.screens.runs import RunsScreen  # noqa: PLC0415

    out: dict[str, Any] = {}
    start = time.perf_counter()
    app = new_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.table
        await _until(lambda: table.row_count == n, timeout=60)
        out["first_open_s"] = time.perf_counter() - start
        await settle(pilot)
        pushes = []
        for _ in range(repeats):
            screen = RunsScreen()
            t = time.perf_counter()
            await app.push_screen(screen)
            await _until(lambda s=screen: s.scans > 0 and s.table.row_count == n, timeout=60)
            pushes.append(time.perf_counter() - t)
            app.pop_screen()
            await pilot.pause(0.05)
        out["push_open_s"] = pushes
        await pilot.pause(0.5)
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        out["idle_cpu_fraction"] = (time.process_time() - c0) / (time.perf_counter() - w0)
        # the newest run becomes a running one (this process): its row ticks every scan
        newest = max(root.iterdir())
        meta = runs.read_json(newest / runs.RUN_JSON) or {}
        meta.update(status="running", pid=os.getpid(), ended_at=None)
        runs.atomic_write_json(newest / runs.RUN_JSON, meta)
        await pilot.pause(2.5)
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        out["one_running_cpu_fraction"] = (time.process_time() - c0) / (time.perf_counter() - w0)
    return out


def bench_cli_runs(root: Path, repeats: int) -> list[float]:
    import subprocess

    slr = Path(sys.executable).parent / "slr"
    cmd = [str(slr), "runs", "--runs-dir", str(root)] if slr.exists() else None
    if cmd is None:
        cmd = [sys.executable, "-m", "slr_tui.cli", "runs", "--runs-dir", str(root)]
    times = []
    # this checkout's code, wherever the package is installed from
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t)
    return times


async def _cold_child(root: Path, n: int) -> None:
    app = new_app(root)
    async with app.run_test(size=(120, 40)):
        table = app.screen.table
        await _until(lambda: table.row_count == n, timeout=60)
        await asyncio.sleep(0)
        print("ready", flush=True)


def bench_cold_open(root: Path, n: int, repeats: int) -> list[float]:
    """A new process: interpreter start, imports, the app, every row in the table."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        cmd = [sys.executable, __file__, "--cold-child", str(root), "--scale-runs", str(n)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
        assert p.stdout is not None
        line = p.stdout.readline()
        times.append(time.perf_counter() - t)
        p.wait()
        if line.strip() != "ready":
            raise RuntimeError(f"cold open child said {line!r}")
    return times


def fmt_ms(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return (
        f"min {xs[0] * 1000:4.0f}  median {statistics.median(xs) * 1000:4.0f}  "
        f"p95 {p95 * 1000:4.0f}  max {xs[-1] * 1000:4.0f} ms  (n={len(xs)})"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--appends", type=int, default=20)
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    ap.add_argument("--scale-runs", type=int, default=1000, help="runs in the store (0: skip)")
    ap.add_argument("--only-scale", action="store_true", help="only the many-runs case")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--cold-child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cold_child:
        asyncio.run(_cold_child(args.cold_child, args.scale_runs))
        return 0

    scale: dict[str, Any] = {}
    if args.scale_runs:
        with tempfile.TemporaryDirectory(prefix="slr-bench-tui-scale-") as tmp:
            root = Path(tmp) / "runs"
            make_store(root, args.scale_runs)
            gc.collect()
            scale = asyncio.run(bench_scale(root, args.scale_runs, 5, args.idle_seconds))
            scale["slr_runs_s"] = bench_cli_runs(root, 5)
            scale["cold_open_s"] = bench_cold_open(root, args.scale_runs, 5)
            scale["load_average"] = os.getloadavg()[0]
    if args.only_scale:
        if args.json:
            print(json.dumps(scale, indent=2))
        else:
            print_scale(args.scale_runs, scale)
        return 0

    with tempfile.TemporaryDirectory(prefix="slr-bench-tui-") as tmp:
        root = Path(tmp) / "runs"
        big = make_run(root, "20240101-000000-big", args.lines, args.epochs, "finished")
        live = make_run(root, "20240101-000001-live", args.lines, args.epochs, "running")
        for i in range(48):
            make_run(root, f"20230101-{i:06d}-small", 200, 10, "finished")
        size_mb = (big / runs.METRICS).stat().st_size / 1e6

        t = time.perf_counter()
        JsonlTail(big / runs.METRICS).read_new()
        parse_s = time.perf_counter() - t

        # idle first, in a process not yet holding the other measurements' garbage; the
        # live run must not count as running for it
        meta = runs.read_json(live / runs.RUN_JSON) or {}
        runs.atomic_write_json(live / runs.RUN_JSON, {**meta, "status": "finished", "pid": None})
        idle = asyncio.run(bench_idle(root, big, args.idle_seconds))
        runs.atomic_write_json(live / runs.RUN_JSON, meta)
        gc.collect()
        open_s = asyncio.run(bench_open(root, big, args.repeats))
        gc.collect()
        line_s = asyncio.run(bench_new_line(root, live, args.appends))

    result = {
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "lines": args.lines,
        "metrics_mb": round(size_mb, 1),
        "parse_s": parse_s,
        "open_s": open_s,
        "new_line_s": line_s,
        "idle_cpu_fraction": idle,
        "scale": scale,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"metrics.jsonl: {args.lines} lines, {size_mb:.1f} MB ({args.epochs} epochs)")
    print(f"parse only (JsonlTail, orjson)        {parse_s * 1000:6.0f} ms")
    print(f"open live screen (target < 300 ms)    {fmt_ms(open_s)}")
    print(f"new line on screen (target < 500 ms)  {fmt_ms(line_s)}")
    for k, v in idle.items():
        print(f"idle CPU, {k:<28} {v * 100:5.2f} % of one core")
    if scale:
        print_scale(args.scale_runs, scale)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} while measuring")
    ok = statistics.median(open_s) < 0.3 and statistics.median(line_s) < 0.5
    print("targets met (medians)" if ok else "TARGETS MISSED (medians)")
    return 0 if ok else 1


def print_scale(n: int, scale: dict[str, Any]) -> None:
    print(f"{n} runs: open from app start (target < 1 s)  {scale['first_open_s'] * 1000:6.0f} ms")
    print(f"{n} runs: open, new process (imports too)  {fmt_ms(scale['cold_open_s'])}")
    print(f"{n} runs: push a runs screen                 {fmt_ms(scale['push_open_s'])}")
    print(
        f"{n} runs: idle CPU, runs screen (< 2 %)       {scale['idle_cpu_fraction'] * 100:5.2f} %"
    )
    print(
        f"{n} runs: idle CPU, one of them running        {scale['one_running_cpu_fraction'] * 100:5.2f} %"
    )
    print(f"{n} runs: slr runs (target < 1 s)             {fmt_ms(scale['slr_runs_s'])}")
    print(f"{n} runs: load average {scale['load_average']:.1f} while measuring")


if __name__ == "__main__":
    sys.exit(main())
