"""The translation demo against its floor: val BLEU-4 of ``slr run --preset translation-demo``
beside copying the most frequent training sentence.

    python bench/bench_translation_demo.py [--runs-dir DIR] [--set key=value ...] [--baseline-only]

Generates the preset's synthetic dataset (in ``$SLR_CACHE_DIR``, reused when it exists),
prints the baseline (sacrebleu corpus BLEU-4 and chrF of the most frequent training
sentence on val), then trains the preset through the CLI and prints the run's best and
last val BLEU-4, the final report's figures and the wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import config as cfgmod  # noqa: E402
from engine.data import synthetic_translation as st  # noqa: E402

PRESET = "translation-demo"


def dataset_root(cfg: cfgmod.RunConfig) -> Path:
    syn = cfg.data.synthetic_sentences
    return Path(cfg.data.root).expanduser() if cfg.data.root else st.default_root(syn)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", type=Path, default=None)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--baseline-only", action="store_true")
    args = ap.parse_args()

    cfg = cfgmod.resolve(preset=PRESET, sets=args.sets)
    t0 = time.perf_counter()
    root = st.generate(cfg.data.synthetic_sentences, dataset_root(cfg))
    print(f"dataset: {root} ({time.perf_counter() - t0:.1f} s to generate or find)")
    base = st.majority_baseline(root, "val")
    print(
        f"baseline (copy '{base['sentence']}', {base['train_count']}x in train): "
        f"val BLEU-4 {base['bleu4']:.2f}, chrF {base['chrf']:.2f}"
    )
    if args.baseline_only:
        return 0

    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="tdemo-"))
    cmd = [sys.executable, "-m", "slr_tui.cli", "run", "--preset", PRESET, "--runs-dir", str(runs)]
    for s in args.sets:
        cmd += ["--set", s]
    cmd.append("-q")
    t0 = time.perf_counter()
    done = subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    folders = sorted(p for p in runs.iterdir() if (p / "metrics.jsonl").is_file())
    if done.returncode or not folders:
        print(f"the run failed (exit {done.returncode}) after {wall:.0f} s")
        return 1
    run = folders[-1]
    epochs = [
        row
        for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        if row.get("kind") == "epoch"
    ]
    bleu = [r.get("val_bleu4") for r in epochs]
    best = max(b for b in bleu if b is not None)
    print(f"run: {run} ({len(epochs)} epochs, {wall:.0f} s wall)")
    print(f"val BLEU-4 per epoch: {', '.join(f'{b:.1f}' for b in bleu if b is not None)}")
    print(f"val BLEU-4 best {best:.2f}, last {bleu[-1]:.2f} vs baseline {base['bleu4']:.2f}")
    report = run / "eval" / "report.json"
    if report.is_file():
        rep = json.loads(report.read_text())
        for decoding, splits in (("greedy", rep), ("beam", rep.get("beam", {}))):
            for split in ("val", "test"):
                fig = splits.get(split) or {}
                if fig.get("bleu4") is not None:
                    print(
                        f"best.pt {split} ({decoding}): BLEU-4 {fig['bleu4']:.2f}, "
                        f"chrF {fig['chrf']:.2f}, WER {fig['wer']:.3f}"
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
