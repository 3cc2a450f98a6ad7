"""How long ``slr --help``, ``slr runs`` and ``slr presets`` take from a shell, against bare
Typer apps that do the same work, and ``slr runs`` on 1000 runs.

    python bench/bench_startup.py [--repeats 15] [--runs 50] [--scale-runs 1000] [--json]

Each ``slr`` command is paired with a bare Typer app written to a temp folder (no slr code):

- ``--help``: a Typer app with the same commands, panels and one-line helps;
- ``runs``: a Typer command that reads every run.json of the same store with orjson and
  prints a Rich table of id, status, preset, epoch and best;
- ``presets``: a Typer command that parses the same preset YAML files and prints a Rich
  table of name, source, model, batch, epochs, lr and description.

The two of a pair run alternately (A, B, A, B, ...) as subprocesses, stdout to /dev/null,
120 columns; the ratio is median(slr) / median(bare). Target (issue 14): every ratio under
1.3, and ``slr runs`` on 1000 runs under 1 s. Before timing, the checkout is byte-compiled
(``compileall``), as ``pip install`` does for a package: with ``PYTHONDONTWRITEBYTECODE``
set, an editable checkout would otherwise be compiled from source at every start, which
is not what a user's install pays. The last line reads
``startup/bare --help X.XX, runs X.XX, presets X.XX``.
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
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from slr_tui.cli import COMMANDS  # noqa: E402

BARE_HELP = """
import typer
app = typer.Typer(name="slr", help={top!r}, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
for name, panel, text in {commands!r}:
    def cmd() -> None:
        pass
    cmd.__doc__ = text
    app.command(name, rich_help_panel=panel)(cmd)
app()
"""

BARE_RUNS = """
from pathlib import Path
import orjson, typer
from rich.console import Console
from rich.table import Table
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
@app.command()
def runs(runs_dir: Path = typer.Option(..., "--runs-dir")) -> None:
    t = Table("id", "status", "preset", "epoch", "best")
    metas = []
    for d in runs_dir.iterdir():
        f = d / "run.json"
        if f.is_file():
            metas.append(orjson.loads(f.read_bytes()))
    for m in sorted(metas, key=lambda m: m.get("started_at") or 0, reverse=True):
        t.add_row(m["id"], m.get("status"), m.get("preset"), str(m.get("epoch")),
                  f"{m.get('best_metric') or 0:.4f}")
    Console().print(t)
app()
"""

BARE_PRESETS = """
from pathlib import Path
import typer, yaml
from rich.console import Console
from rich.table import Table
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
@app.command()
def presets(folder: Path) -> None:
    t = Table("preset", "data, model, key hyperparameters / description", show_lines=True)
    for f in sorted(folder.glob("*.yaml")):
        p = yaml.safe_load(f.read_text())
        d, m, o, tr = (p.get(k) or {} for k in ("data", "model", "optim", "training"))
        t.add_row(f.stem, f"{d.get('source')} · {m.get('name')} · batch {d.get('batch_size')}"
                  f" · {tr.get('max_epochs')} epochs · lr {o.get('lr')}\\n{p.get('description')}")
    Console().print(t)
    print("show one: slr presets show NAME")
app()
"""


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t


def pair(slr: list[str], bare: list[str], repeats: int, env: dict[str, str]) -> dict[str, float]:
    _time(slr, env), _time(bare, env)  # warm the page cache for both
    a, b = [], []
    for _ in range(repeats):
        a.append(_time(slr, env))
        b.append(_time(bare, env))
    return {
        "slr_min_ms": 1e3 * min(a),
        "slr_median_ms": 1e3 * statistics.median(a),
        "bare_min_ms": 1e3 * min(b),
        "bare_median_ms": 1e3 * statistics.median(b),
        "ratio": statistics.median(a) / statistics.median(b),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--runs", type=int, default=50, help="runs in the store for `slr runs`")
    ap.add_argument("--scale-runs", type=int, default=1000, help="0 to skip")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from bench_tui import make_store  # noqa: PLC0415

    compileall.compile_dir(ROOT / "slr_tui", quiet=1)
    compileall.compile_dir(ROOT / "engine", quiet=1)
    env = {
        **os.environ,
        "COLUMNS": "120",
        "PYTHONPATH": str(ROOT),
        "SLR_CONFIG": "/nonexistent/slr-bench-config.yaml",  # the user's settings stay out
    }
    py = sys.executable
    slr = [py, "-m", "slr_tui.cli"]
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="slr-bench-startup-") as tmp:
        tmpd = Path(tmp)
        top = "Train and compare sign-language-recognition experiments (headless)."
        rows = [(c.name, c.panel, c.help) for c in COMMANDS]
        (tmpd / "bare_help.py").write_text(BARE_HELP.format(top=top, commands=rows))
        (tmpd / "bare_runs.py").write_text(BARE_RUNS)
        (tmpd / "bare_presets.py").write_text(BARE_PRESETS)
        store = tmpd / "runs"
        make_store(store, args.runs)
        presets = ROOT / "presets"  # the package data engine.presets
        assert len(list(presets.glob("*.yaml"))) > 5, presets
        cases = {
            "--help": (["--help"], [str(tmpd / "bare_help.py"), "--help"]),
            "runs": (
                ["runs", "--runs-dir", str(store)],
                [str(tmpd / "bare_runs.py"), "--runs-dir", str(store)],
            ),
            "presets": (["presets"], [str(tmpd / "bare_presets.py"), str(presets)]),
        }
        for name, (ours, bare) in cases.items():
            out[name] = pair(slr + ours, [py, *bare], args.repeats, env)
        if args.scale_runs:
            big = tmpd / "big"
            make_store(big, args.scale_runs)
            cmd = [*slr, "runs", "--runs-dir", str(big)]
            times = sorted(_time(cmd, env) for _ in range(5))
            out["runs_scale"] = {"runs": args.scale_runs, "median_ms": 1e3 * times[2]}

    if args.json:
        print(json.dumps(out, indent=2))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"start-up of `slr` commands ({args.repeats} interleaved pairs, load avg {load:.1f})")
    print(f"{'command':<10} {'slr min/median ms':>20} {'bare min/median ms':>20} {'ratio':>6}")
    for name in cases:
        r = out[name]
        print(
            f"{name:<10} {r['slr_min_ms']:>9.0f} / {r['slr_median_ms']:<8.0f}"
            f" {r['bare_min_ms']:>9.0f} / {r['bare_median_ms']:<8.0f} {r['ratio']:>6.2f}"
        )
    if "runs_scale" in out:
        s = out["runs_scale"]
        print(f"`slr runs` on {s['runs']} runs: median {s['median_ms']:.0f} ms (target < 1000)")
    print(
        "startup/bare "
        + ", ".join(f"{name.lstrip('-')} {out[name]['ratio']:.2f}" for name in cases)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
