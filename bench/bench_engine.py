"""The engine against a bare PyTorch loop on the same model and data (issue 14, item 5).

    python bench/bench_engine.py            # --repeats 3 --preset demo --threads 1

Each repetition runs, in turn (interleaved, so drift in the machine's speed hits both):

- **engine**: ``slr run --preset demo`` as a user starts it (the CLI, the engine
  subprocess, run folder, checkpoints, evaluation, telemetry), whole-process wall time,
  and training throughput from its ``step`` rows (samples/s, median);
- **bare**: a fresh ``python`` process that builds the same data bundle and the same
  model through the engine's registries, then trains it with a plain loop (DataLoader with
  the source's collate, AdamW, cross-entropy, the preset's epochs and batch size, a
  validation pass per epoch), nothing written; wall time and samples/s the same way.

Both are pinned to ``--threads`` torch threads. The table gives min / median of each figure
and the ratios per pair; its last line reads ``engine/bare throughput X.XX, wall X.XX``
(medians of the per-pair ratios: throughput above 1 and wall below 1 favour the engine).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BARE = r"""
import json, sys, time
t_start = time.perf_counter()
import torch
from torch.utils.data import DataLoader
from engine import config as cfgmod
from engine.data import build_data
from engine.data.base import EpochSampler
from engine.models import build_model

torch.set_num_threads(int(sys.argv[2]))
cfg = cfgmod.resolve(preset=sys.argv[1])
torch.manual_seed(cfg.training.seed)
bundle = build_data(cfg)
model = build_model(cfg, bundle)
opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
bs = cfg.data.batch_size
sampler = EpochSampler(len(bundle.train), shuffle=True, seed=cfg.training.seed)
train = DataLoader(bundle.train, batch_size=bs, sampler=sampler, collate_fn=bundle.collate_fn)
val = DataLoader(bundle.val, batch_size=2 * bs, collate_fn=bundle.collate_fn)
rates = []
for epoch in range(cfg.training.max_epochs):
    sampler.set_epoch(epoch)
    model.train()
    seen, t0 = 0, time.perf_counter()
    for batch in train:
        loss = torch.nn.functional.cross_entropy(model(batch), batch["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += len(batch["label"])
    rates.append(seen / (time.perf_counter() - t0))
    model.eval()
    with torch.no_grad():
        for batch in val:
            model(batch)
print("BARE=" + json.dumps({"samples_per_s": sorted(rates)[len(rates) // 2]}))
"""


def run_engine(preset: str, threads: int, runs_dir: Path) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "slr_tui.cli", "run", "--preset", preset, "-q"]
    cmd += ["--runs-dir", str(runs_dir), "--set", f"training.num_threads={threads}"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True)
    wall = time.perf_counter() - t0
    (run,) = [d for d in runs_dir.iterdir() if d.is_dir()]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["samples_per_s"] for r in rows if r.get("kind") == "step" and r.get("samples_per_s")]
    waits = [r["data_wait_share"] for r in rows if r.get("kind") == "epoch"]
    return {
        "wall": wall,
        "samples_per_s": statistics.median(rates),
        "data_wait_share": statistics.median(waits),
    }


def run_bare(preset: str, threads: int) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", BARE, preset, str(threads)],
        check=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    wall = time.perf_counter() - t0
    line = next(ln for ln in out.splitlines() if ln.startswith("BARE="))
    return {"wall": wall, **json.loads(line.removeprefix("BARE="))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    pairs = []
    # byte-compile the checkout, as `pip install` does: with PYTHONDONTWRITEBYTECODE set an
    # editable checkout is otherwise compiled from source at every start (the engine imports
    # more of it than the bare loop does, so that would count against the engine only)
    compileall.compile_dir(ROOT / "engine", quiet=1)
    compileall.compile_dir(ROOT / "slr_tui", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("SLR_CACHE_DIR", str(Path(tmp) / "cache"))
        run_bare(args.preset, args.threads)  # warm-up: generates the synthetic data once
        for i in range(args.repeats):
            eng = run_engine(args.preset, args.threads, Path(tmp) / f"runs{i}")
            bare = run_bare(args.preset, args.threads)
            pairs.append((eng, bare))
            print(
                f"pair {i + 1}: engine {eng['wall']:.1f} s {eng['samples_per_s']:.0f}/s, "
                f"bare {bare['wall']:.1f} s {bare['samples_per_s']:.0f}/s",
                file=sys.stderr,
            )

    def col(side: int, key: str) -> list[float]:
        return [p[side][key] for p in pairs]

    thr = [e["samples_per_s"] / b["samples_per_s"] for e, b in pairs]
    wall = [e["wall"] / b["wall"] for e, b in pairs]
    load = os.getloadavg()[0]
    print(
        f"preset {args.preset}, {args.threads} torch thread(s), {args.repeats} pairs, load {load:.1f}"
    )
    print(f"{'figure':<28}{'engine min/median':>22}{'bare min/median':>22}{'ratio min/median':>20}")
    for key, unit, ratios in (("samples_per_s", "samples/s", thr), ("wall", "s", wall)):
        e, b = col(0, key), col(1, key)
        print(
            f"{key + ' (' + unit + ')':<28}"
            f"{min(e):>10.1f} /{statistics.median(e):>9.1f}"
            f"{min(b):>12.1f} /{statistics.median(b):>9.1f}"
            f"{min(ratios):>11.2f} /{statistics.median(ratios):>6.2f}"
        )
    waits = col(0, "data_wait_share")
    print(
        f"engine: waiting for data {100 * min(waits):.1f} / {100 * statistics.median(waits):.1f} %"
        " of training time (min / median of the runs' per-epoch medians; target < 10 %)"
    )
    print(
        f"engine/bare throughput {statistics.median(thr):.2f}, wall {statistics.median(wall):.2f}"
    )


if __name__ == "__main__":
    main()
