"""The GPU check (issue 14 item 6): one command on a machine with one NVIDIA GPU.

    python bench/gpu_check.py              # the full check, a few minutes on one GPU
    python bench/gpu_check.py --quick      # fewer steps
    python bench/gpu_check.py --cpu-smoke  # every stage on CPU, tiny model and videos

Downloads nothing (the model is a random-init VideoMAE built from its config through the
engine's model registry, ``model.pretrained=null``; the videos are generated). Stages:

1. model only: VideoMAE-B (``transformers.VideoMAEConfig()`` defaults, 16 frames of 224 px)
   fine-tune steps (AdamW, cross-entropy) on synthetic uint8 clips already on the device:
   samples/s and ``torch.cuda.max_memory_allocated`` in bf16 (autocast) at batch 12 and 16,
   and fp32 at batch 12 for reference; a few warm-up steps, then timed steps.
2. data pipeline: a WLASL-layout root of generated videos (``tests/wlasl_fixture.py``),
   the preset's training dataset (augmentation on, uint8 clips) through a DataLoader with
   ``data.num_workers`` from the cores, bf16 at batch 16, decoding the videos directly and
   then from the frame cache (``data.frame_cache``, built first): samples/s as a ratio of
   the model-only figure (goal >= 0.9 with the cache). The batches the workers stocked
   during the warm-up steps are drained before the timed steps.
3. AMP numerics: every timed loss finite; bf16 vs fp32 logits of the same weights on the
   same batch (eval mode, fp32 without TF32): max abs diff and that over max |logit|.
4. telemetry: ``slr run --preset wlasl100-conservative --gpus 1`` for one epoch on the
   generated root; its ``system.jsonl`` (read with ``engine.runs``) must hold GPU rows with
   temperature and memory, and ``engine.telemetry.read_gpus_now()`` (the TUI's GPU panel)
   must return the GPU.

Prints one table (figure, value, target, ok) and ``gpu_check: N ok, M failed``; exits 0
only when every row passes. With ``--cpu-smoke`` the figures against GPU targets are
reported but not judged (ok reads ``-``): only that each stage ran, the losses are finite
and the run finished are judged.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PRESET = "wlasl100-conservative"
TINY_VIDEOMAE = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "patch_size": 8,
    "tubelet_size": 2,
}
# (key, figure, target); "judge" says when a row is judged: always, or only on the GPU
ROWS: list[tuple[str, str, str, str]] = [
    ("params", "VideoMAE parameters", "80-95 M (base)", "gpu"),
    ("bf16_12", "model only, bf16 batch 12: samples/s", "> 0", "always"),
    ("bf16_12_mem", "model only, bf16 batch 12: peak memory", "< 90% of GPU", "gpu"),
    ("bf16_16", "model only, bf16 batch 16: samples/s", "> 0", "always"),
    ("bf16_16_mem", "model only, bf16 batch 16: peak memory", "< 90% of GPU", "gpu"),
    ("fp32_12", "model only, fp32 batch 12: samples/s (reference)", "> 0", "always"),
    ("fp32_12_mem", "model only, fp32 batch 12: peak memory", "< 90% of GPU", "gpu"),
    ("speedup", "bf16 / fp32 samples/s at batch 12", ">= 1.5x", "gpu"),
    ("videos", "generated WLASL videos", "written", "always"),
    ("direct", "pipeline, direct decoding, bf16 b16: of model only", "report", "always"),
    ("cache_build", "frame cache build", "0 failed", "always"),
    ("cache", "pipeline, frame cache, bf16 b16: of model only", ">= 0.90", "gpu"),
    ("loss", "loss finite over the timed steps", "all", "always"),
    ("logits", "bf16 vs fp32 logits: max abs diff (/ max |logit|)", "<= 5%", "gpu"),
    ("run", "slr run --gpus 1, one epoch", "finished on cuda, bf16", "always"),
    ("system", "system.jsonl rows with GPU temperature and memory", ">= 1", "gpu"),
    ("nvml", "read_gpus_now() (TUI GPU panel)", ">= 1 GPU", "gpu"),
    ("wall", "gpu_check wall time", "< 480 s", "gpu"),
]


@dataclass
class Plan:
    smoke: bool
    quick: bool
    device: str
    num_frames: int = 16
    image_size: int = 224
    overrides: dict[str, Any] = field(default_factory=dict)
    warmup: int = 5
    steps: int = 30
    pipe_steps: int = 80
    glosses: int = 20
    per_train: int = 24
    video_size: tuple[int, int] = (288, 224)  # (width, height), multiples of 16
    video_frames: int = 16
    workers: int = 1
    pipe_batch: int = 16

    @classmethod
    def make(cls, smoke: bool, quick: bool) -> Plan:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
        if smoke:
            return cls(
                smoke=True,
                quick=quick,
                device="cpu",
                num_frames=4,
                image_size=32,
                overrides=dict(TINY_VIDEOMAE),
                warmup=1,
                steps=3,
                pipe_steps=4,
                glosses=4,
                per_train=4,
                video_size=(64, 48),
                video_frames=8,
                workers=1,
                pipe_batch=16,
            )
        plan = cls(smoke=False, quick=quick, device="cuda", workers=max(1, min(cores - 2, 14)))
        if quick:
            plan.warmup, plan.steps, plan.pipe_steps, plan.per_train = 3, 10, 30, 12
        return plan

    def model_extra(self) -> dict[str, Any]:
        model: dict[str, Any] = {"pretrained": None}
        if self.overrides:
            model["config_overrides"] = dict(self.overrides)
        return {
            "model": model,
            "data": {"num_frames": self.num_frames, "image_size": self.image_size},
            "training": {"device": self.device},
        }


class Table:
    def __init__(self, smoke: bool):
        self.smoke = smoke
        self.values: dict[str, tuple[str, bool | None]] = {}

    def set(self, key: str, value: str, ok: bool | None) -> None:
        self.values[key] = (value, ok)

    def fail_missing(self, keys: list[str], why: str) -> None:
        for k in keys:
            self.values.setdefault(k, (why, False))

    def rows(self) -> list[tuple[str, str, str, str]]:
        out = []
        for key, figure, target, judge in ROWS:
            value, ok = self.values.get(key, ("not run", False))
            if self.smoke and judge == "gpu":
                mark = "-"
            else:
                mark = "ok" if ok else "FAIL"
            out.append((figure, value, target, mark))
        return out

    def print(self) -> int:
        rows = [("figure", "value", "target", "ok"), *self.rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        line = "  ".join("-" * w for w in widths)
        for i, r in enumerate(rows):
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
            if i == 0:
                print(line)
        marks = [r[3] for r in rows[1:]]
        ok, failed, skipped = marks.count("ok"), marks.count("FAIL"), marks.count("-")
        tail = f", {skipped} not judged (--cpu-smoke)" if skipped else ""
        print(f"gpu_check: {ok} ok, {failed} failed{tail}", flush=True)
        return failed


def _say(msg: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _build_model(plan: Plan, cfg, bundle, device):
    from engine.models import build_model

    return build_model(cfg, bundle).to(device)


def _train_steps(
    model, batches, device, precision: str, warmup: int, steps: int, lr: float, drain: int = 0
):
    """Fine-tune steps on ``batches`` (an iterator of batch dicts): ``warmup`` steps, then
    ``drain`` batches pulled without training (the stock a DataLoader's workers made
    meanwhile, so the timed steps cannot live on it), ``warmup`` steps again (only with
    ``drain``), then ``steps`` timed steps. Returns (samples/s over the timed steps, the
    timed losses as floats)."""
    import torch
    import torch.nn.functional as F

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    amp = precision == "bf16"

    def step(batch):
        pv = batch["pixel_values"].to(device, non_blocking=True)
        label = batch["label"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model({"pixel_values": pv})
        loss = F.cross_entropy(logits.float(), label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach(), int(label.shape[0])

    for _ in range(warmup):
        step(next(batches))
    if drain:
        for _ in range(drain):
            next(batches)
        for _ in range(warmup):
            step(next(batches))
    _sync(device)
    t0 = time.perf_counter()
    losses, samples = [], 0
    for _ in range(steps):
        loss, n = step(next(batches))
        losses.append(loss)
        samples += n
    _sync(device)
    dt = time.perf_counter() - t0
    return samples / dt, [float(x) for x in losses]


def _synthetic_batches(plan: Plan, batch: int, num_classes: int, device):
    import torch

    g = torch.Generator(device="cpu").manual_seed(batch)
    shape = (batch, plan.num_frames, 3, plan.image_size, plan.image_size)
    pool = [
        {
            "pixel_values": torch.randint(0, 256, shape, dtype=torch.uint8, generator=g).to(device),
            "label": torch.randint(0, num_classes, (batch,), generator=g).to(device),
        }
        for _ in range(3)
    ]
    i = 0
    while True:
        yield pool[i % len(pool)]
        i += 1


def stage_model_only(plan: Plan, table: Table, state: dict[str, Any]) -> None:
    import torch

    from engine.config import resolve

    device = torch.device(plan.device)
    cfg = resolve(PRESET, extra=plan.model_extra())
    bundle = SimpleNamespace(num_classes=100, class_names=[f"sign{i}" for i in range(100)])
    total = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else 0
    for precision, batch in (("bf16", 12), ("bf16", 16), ("fp32", 12)):
        key = f"{precision}_{batch}"
        _free(device)
        torch.manual_seed(0)
        model = _build_model(plan, cfg, bundle, device)
        if key == "bf16_12":
            n = sum(p.numel() for p in model.parameters())
            table.set("params", f"{n / 1e6:.1f} M ({n:,})", 80e6 <= n <= 95e6)
        _say(f"model only, {precision} batch {batch}")
        sps, losses = _train_steps(
            model,
            _synthetic_batches(plan, batch, 100, device),
            device,
            precision,
            plan.warmup,
            plan.steps,
            cfg.optim.lr,
        )
        state["losses"] += losses
        state[key] = sps
        table.set(key, f"{sps:.1f}", sps > 0 and math.isfinite(sps))
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device)
            table.set(f"{key}_mem", f"{_gib(peak)} of {_gib(total)}", peak < 0.9 * total)
        else:
            table.set(f"{key}_mem", "n/a on cpu", None)
        if key == "bf16_12":
            state["logits"] = _logits_check(model, plan, device)
        del model
    ratio = state["bf16_12"] / state["fp32_12"]
    table.set("speedup", f"{ratio:.2f}x", ratio >= 1.5)
    _free(device)


def _logits_check(model, plan: Plan, device) -> tuple[float, float]:
    """bf16 (autocast) vs fp32 logits of ``model`` on one batch, in eval mode."""
    import torch

    model.eval()
    batch = next(_synthetic_batches(plan, 8, 100, device))
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            ref = model(batch).float()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                low = model(batch).float()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    diff = float((low - ref).abs().max())
    return diff, diff / max(float(ref.abs().max()), 1e-12)


def stage_videos(plan: Plan, table: Table, state: dict[str, Any], work: Path) -> None:
    from tests.wlasl_fixture import make_wlasl_root

    _say(f"writing {plan.glosses * (plan.per_train + 2)} videos")
    t0 = time.perf_counter()
    fx = make_wlasl_root(
        work / "wlasl",
        glosses=plan.glosses,
        per_split=(plan.per_train, 1, 1),
        size=plan.video_size,
        frames=plan.video_frames,
        missing=0,
        corrupt=0,
    )
    n = sum(len(v) for v in fx.ids.values())
    w, h = plan.video_size
    dt = time.perf_counter() - t0
    table.set("videos", f"{n} of {plan.video_frames} frames, {w}x{h}, {dt:.1f} s", n > 0)
    state["root"] = fx.root


def _pipe_cfg(plan: Plan, root: Path, cache: Path | None):
    from engine.config import resolve

    extra = plan.model_extra()
    extra["data"].update(
        root=str(root),
        subset=plan.glosses,
        batch_size=plan.pipe_batch,
        num_workers=plan.workers,
        frame_cache=str(cache) if cache else None,
    )
    return resolve(PRESET, extra=extra)


def _loader_batches(cfg, bundle, pin: bool):
    """An endless stream of training batches, as the trainer's loader makes them."""
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    ds = bundle.train

    def sampler():
        epoch = 0
        while True:
            for i in np.random.default_rng(epoch).permutation(len(ds)):
                yield (int(i), epoch)
            epoch += 1

    nw = cfg.data.num_workers
    loader = DataLoader(
        ds,
        batch_size=cfg.data.batch_size,
        sampler=sampler(),
        collate_fn=bundle.collate_fn,
        num_workers=nw,
        pin_memory=pin,
        persistent_workers=nw > 0,
        prefetch_factor=4 if nw > 0 else None,
        generator=torch.Generator().manual_seed(0),
    )
    return loader, iter(loader)


def _pipeline(plan: Plan, cfg, device, state: dict[str, Any]) -> float:
    import torch

    from engine.data import build_data

    bundle = build_data(cfg)
    ds = bundle.train
    for i in range(min(2, len(ds))):  # zero clips (undecodable videos) would time nothing
        ds[(i, 0)]
    if ds.failures:
        raise RuntimeError(f"{ds.failures} of the first clips could not be decoded")
    _free(device)
    torch.manual_seed(0)
    model = _build_model(plan, cfg, bundle, device)
    loader, it = _loader_batches(cfg, bundle, device.type == "cuda")
    # drain what the workers can hold (prefetch 4 a worker): batches made while the model
    # was warming up would otherwise flatter the timed steps
    drain = plan.workers * 4
    try:
        sps, losses = _train_steps(
            model, it, device, "bf16", plan.warmup, plan.pipe_steps, cfg.optim.lr, drain=drain
        )
    finally:
        del it, loader
    state["losses"] += losses
    del model
    _free(device)
    return sps


def stage_pipeline(plan: Plan, table: Table, state: dict[str, Any], work: Path) -> None:
    import torch

    from engine.data.frame_cache import build_frame_cache

    device = torch.device(plan.device)
    ref = state.get("bf16_16")
    root = state["root"]

    def ratio_row(key: str, sps: float, goal: float | None) -> None:
        r = sps / ref if ref else float("nan")
        ok = sps > 0 if goal is None else r >= goal
        table.set(key, f"{r:.2f} ({sps:.1f} samples/s, {plan.workers} workers)", ok)

    _say(f"pipeline, direct decoding, {plan.workers} workers")
    ratio_row("direct", _pipeline(plan, _pipe_cfg(plan, root, None), device, state), None)

    cache = work / "frame_cache"
    cfg = _pipe_cfg(plan, root, cache)
    _say("building the frame cache")
    t0 = time.perf_counter()
    stats = build_frame_cache(cfg, workers=max(plan.workers, 1))
    dt = time.perf_counter() - t0
    table.set(
        "cache_build",
        f"{stats['written'] + stats['already']}/{stats['videos']} videos, {dt:.1f} s, "
        f"{stats['bytes'] / 2**20:.0f} MiB, {stats['failed']} failed",
        stats["failed"] == 0 and stats["videos"] > 0,
    )
    state["cache"] = cache
    _say("pipeline, frame cache")
    ratio_row("cache", _pipeline(plan, cfg, device, state), 0.9)


def stage_run(plan: Plan, table: Table, state: dict[str, Any], work: Path) -> None:
    from engine import runs
    from engine.telemetry import read_gpus_now

    runs_dir = work / "runs"
    sets = [
        "model.pretrained=null",
        "training.max_epochs=1",
        f"data.subset={plan.glosses}",
        "training.min_epoch_steps=0",
        "training.telemetry_interval_s=0.5",
        f"data.num_workers={plan.workers if not plan.smoke else 0}",
    ]
    if state.get("cache"):
        sets.append(f"data.frame_cache={state['cache']}")
    if plan.smoke:
        ov = ", ".join(f"{k}: {v}" for k, v in TINY_VIDEOMAE.items())
        sets += [
            f"model.config_overrides={{{ov}}}",
            f"data.num_frames={plan.num_frames}",
            f"data.image_size={plan.image_size}",
            "data.batch_size=8",
            "training.device=cpu",
        ]
    cmd = [sys.executable, "-m", "slr_tui.cli", "run", "--preset", PRESET]
    cmd += ["--data-root", str(state["root"]), "--runs-dir", str(runs_dir), "--gpus", "1", "-q"]
    for s in sets:
        cmd += ["--set", s]
    _say("slr run --gpus 1 (one epoch)")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    dt = time.perf_counter() - t0
    found = runs.list_runs(runs_dir)
    if proc.returncode != 0 or len(found) != 1:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        print("\n".join(["slr run failed:", *tail]), file=sys.stderr)
        table.set("run", f"exit {proc.returncode}, {len(found)} runs", False)
    else:
        run = found[0]
        dev, amp = run.meta.get("device", "?"), run.meta.get("mixed_precision", "?")
        ok = run.status == "finished"
        if not plan.smoke:
            ok = ok and str(dev).startswith("cuda") and amp == "bf16"
        table.set("run", f"{run.status} in {dt:.0f} s on {dev}, {amp}", ok)
        rows = runs.read_jsonl(run.path / runs.SYSTEM)
        gpu_rows = [
            r
            for r in rows
            if any(
                g.get("temp_c") is not None and g.get("mem_used_mb") is not None
                for g in r.get("gpus") or []
            )
        ]
        value = f"{len(gpu_rows)} of {len(rows)} rows"
        if gpu_rows:
            g = gpu_rows[-1]["gpus"][0]
            value += f" (last: {g['temp_c']:.0f} C, {g['mem_used_mb']:.0f} MiB)"
        elif rows and rows[-1].get("error"):
            value += f" ({str(rows[-1]['error'])[:60]})"
        table.set("system", value, len(gpu_rows) >= 1)
    now = read_gpus_now()
    if isinstance(now, str):
        table.set("nvml", now[:70], False)
    else:
        names = ", ".join(str(g.get("name")) for g in now)
        table.set("nvml", f"{len(now)} GPU: {names}"[:70], len(now) >= 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and videos")
    ap.add_argument(
        "--cpu-smoke", action="store_true", help="every stage on CPU, tiny model (tests the script)"
    )
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    if not args.cpu_smoke and not torch.cuda.is_available():
        print("gpu_check: no CUDA device (use --cpu-smoke to test the script on CPU)")
        return 2
    plan = Plan.make(args.cpu_smoke, args.quick)
    table = Table(plan.smoke)
    state: dict[str, Any] = {"losses": []}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        os.environ["SLR_CACHE_DIR"] = str(work / "slr_cache")  # probes etc.: not the user's
        stages = [
            (stage_model_only, [k for k, *_ in ROWS[:8]]),
            (stage_videos, ["videos"]),
            (stage_pipeline, ["direct", "cache_build", "cache"]),
            (stage_run, ["run", "system", "nvml"]),
        ]
        for fn, keys in stages:
            try:
                if fn is stage_model_only:
                    fn(plan, table, state)
                else:
                    fn(plan, table, state, work)
            except Exception as exc:  # noqa: BLE001 - one failed stage fails its rows, not all
                traceback.print_exc()
                msg = f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                table.fail_missing(keys, msg[:70])
                if fn is stage_videos:
                    table.fail_missing(["direct", "cache_build", "cache", "run"], "no videos")
                    table.fail_missing(["system"], "no run")
                    with contextlib.suppress(Exception):
                        stage_nvml_only(table)
                    break
    losses = state["losses"]
    bad = sum(not math.isfinite(x) for x in losses)
    table.set("loss", f"{len(losses) - bad}/{len(losses)} finite", bool(losses) and bad == 0)
    if "logits" in state:
        diff, rel = state["logits"]
        table.set("logits", f"{diff:.2e} ({rel:.2%})", rel <= 0.05)
    wall = time.perf_counter() - t_start
    table.set("wall", f"{wall:.0f} s{' (--quick)' if plan.quick else ''}", wall < 480)
    return 1 if table.print() else 0


def stage_nvml_only(table: Table) -> None:
    from engine.telemetry import read_gpus_now

    now = read_gpus_now()
    ok = not isinstance(now, str) and len(now) >= 1
    table.set("nvml", now[:70] if isinstance(now, str) else f"{len(now)} GPU", ok)


if __name__ == "__main__":
    sys.exit(main())
