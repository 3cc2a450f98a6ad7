"""Malformed `slr` invocations: every one must end in one clear line (or a usage box),
never a traceback or a hang.

    python bench/fuzz_cli.py [--timeout 60] [--jobs 2] [--only SUBSTRING] [--verbose]

Builds a temp runs dir from ``tests/fixtures_runs`` (finished, failed, running, lost runs)
plus hostile folders: a best.pt that is garbage, a best.pt and a last.pt whose unpickling
would create a file, damaged run.json / metrics / predictions / report files, a run whose
pid is an unrelated ``sleep``, and config files that are binary, empty, nested too deep or
an alias bomb. Then runs each invocation as a subprocess (``python -m slr_tui.cli``) with
a timeout and classifies the result:

- clean: non-zero exit, one line of output (``error: ...`` or the like)
- usage: Click's usage error box (exit 2, ``Usage:``)
- ok: exit 0
- messy: non-zero exit with several lines but no traceback
- traceback: a Python traceback in the output
- hang: killed at the timeout

Prints the counts and lists every traceback, hang and messy result. Afterwards it checks
that no crafted checkpoint ran code, the foreign ``sleep`` still lives, and nothing was
written outside the run folders. Exit status 1 if any traceback or hang (or a check) fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine import runs  # noqa: E402
from tests.fixtures_runs import DEAD_PID, STANDARD, build_runs, write_run  # noqa: E402

TINY = [
    "--set",
    "training.max_epochs=1",
    "--set",
    "data.synthetic.num_classes=3",
    "--set",
    "data.synthetic.samples_per_class=6",
    "--set",
    "model.hidden_size=8",
]


@dataclass
class Result:
    args: list[str]
    kind: str
    rc: int | None
    seconds: float
    output: str


# --------------------------------------------------------------------------- the playground


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def build_playground(base: Path) -> dict[str, object]:
    """Run folders and files to feed the CLI; returns names the invocations use."""
    import torch

    root = base / "runs"
    build_runs(root)
    a = root / STANDARD[0]
    markers = {k: base / f"PWNED-{k}" for k in ("best", "last", "init")}

    def run_like(name: str, **kw) -> Path:
        return write_run(root, name, **kw)

    # best.pt garbage / empty / evil, with a data.json so `predict` reaches the checkpoint
    data_json = {"source": "synthetic", "class_names": ["a", "b"], "input_dim": 4, "info": {}}
    for name, content in (
        ("20250201-000000-garbage", os.urandom(3000)),
        ("20250202-000000-emptypt", b""),
        ("20250203-000000-evil", None),
        ("20250206-000000-nomodel", "list"),
    ):
        d = run_like(name)
        (d / runs.DATA_JSON).write_text(json.dumps(data_json))
        if content is None:
            torch.save({"model": {}, "x": _Evil(str(markers["best"]))}, d / "best.pt")
        elif content == "list":
            torch.save([1, 2, 3], d / "best.pt")
        else:
            (d / "best.pt").write_bytes(content)
    # last.pt evil, the run stopped: `slr run --resume` would unpickle it
    d = run_like("20250204-000000-evilresume", status="stopped", with_eval=False)
    torch.save({"model": {}, "x": _Evil(str(markers["last"]))}, d / "last.pt")
    torch.save({"model": {}, "x": _Evil(str(markers["init"]))}, base / "evil-init.pt")
    (base / "garbage.pt").write_bytes(os.urandom(500))
    # damaged files
    d = run_like("20250205-000000-damaged")
    (d / runs.METRICS).write_bytes(b'{"kind": "epoch", "epoch": "x"}\n\xff\xfe\n{"kind":\n')
    (d / runs.EVAL_DIR / "report.json").write_text('{"val": 5, "test": [1]}')
    (d / runs.EVAL_DIR / "per_class.csv").write_bytes(b"\x00\x01garbage,,,\n")
    (d / runs.EVAL_DIR / "predictions.npz").write_bytes(b"PK\x03\x04 not a zip")
    d = run_like("20250207-000000-flatprobs")
    np.savez(
        d / runs.EVAL_DIR / "predictions.npz",
        val_ids=np.array(["a", "b"]),
        val_labels=np.array([0, 1]),
        val_probs=np.array([0.2, 0.8]),
        class_names=np.array(["x", "y"]),
    )
    d = root / "20250208-000000-badjson"
    d.mkdir()
    (d / runs.RUN_JSON).write_text("{ not json")
    (d / runs.CONFIG_JSON).write_text("[]")
    d = root / "20250209-000000-weirdmeta"
    d.mkdir()
    (d / runs.RUN_JSON).write_text(
        json.dumps({"id": 5, "status": ["x"], "epoch": "many", "pid": "abc", "started_at": "x"})
    )
    # a run whose pid and process group are an unrelated process
    sleeper = subprocess.Popen(["sleep", "600"], start_new_session=True)
    d = run_like("20250210-000000-foreignpid", status="running", with_eval=False)
    meta = runs.read_json(d / runs.RUN_JSON)
    meta.update(pid=sleeper.pid, pgid=sleeper.pid)
    runs.atomic_write_json(d / runs.RUN_JSON, meta)
    d = run_like("20250211-000000-deadpgid", status="running", with_eval=False)
    meta = runs.read_json(d / runs.RUN_JSON)
    meta.update(pid=DEAD_PID, pgid=sleeper.pid)
    runs.atomic_write_json(d / runs.RUN_JSON, meta)
    # outside the runs dir: runs/../other/X is a run folder
    write_run(base / "other", "X")

    cfg = base / "cfg"
    cfg.mkdir()
    (cfg / "binary.yaml").write_bytes(bytes(range(256)) * 8)
    (cfg / "binary.json").write_bytes(b"\xff\xfe\x00\x01{")
    (cfg / "empty.yaml").write_text("")
    (cfg / "comment.yaml").write_text("# nothing\n")
    (cfg / "list.yaml").write_text("- 1\n- 2\n")
    (cfg / "scalar.yaml").write_text("42\n")
    (cfg / "bad.yaml").write_text("data: [unclosed\n")
    (cfg / "tabs.yaml").write_text("data:\n\tbatch_size: 4\n")
    (cfg / "bad.json").write_text("{'single': 'quotes'}")
    (cfg / "deep.json").write_text("[" * 200000 + "]" * 200000)
    (cfg / "deep.yaml").write_text("a: " + "[" * 20000 + "]" * 20000 + "\n")
    (cfg / "inf.json").write_text('{"optim": {"lr": Infinity}}')
    (cfg / "huge.json").write_text('{"data": {"batch_size": 1e12}}')
    (cfg / "unknown.yaml").write_text("optim: {lrr: 1}\n")
    (cfg / "section.yaml").write_text("optim: 5\n")
    (cfg / "fractions.yaml").write_text(
        "data: {split_val_fraction: 0.7, split_test_fraction: 0.5}\n"
    )
    bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i, c in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        bomb.append(
            f"{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]"
        )
    bomb.append("data: {root: *i}")
    (cfg / "bomb.yaml").write_text("\n".join(bomb) + "\n")
    (cfg / "utf16.yaml").write_bytes("data: {batch_size: 4}\n".encode("utf-16"))
    (cfg / "nul.yaml").write_bytes(b"data:\x00 {}\n")
    (base / "rec.csv").write_text("a,b,label\n1,2,x\n3,4,y\n")
    (base / "notcsv.csv").write_bytes(os.urandom(200))
    (base / "afile").write_text("x")
    (base / "work" / "here").mkdir(parents=True)  # cwd: ../other/X from here does not exist
    return {"root": root, "a": a, "markers": markers, "sleeper": sleeper, "base": base}


# --------------------------------------------------------------------------- invocations


def invocations(base: Path) -> list[list[str]]:
    A, B = STANDARD[0], STANDARD[1]
    FAILED, RUNNING, LOST = STANDARD[2], STANDARD[3], STANDARD[4]
    cfg = base / "cfg"
    c = {p.stem + p.suffix: str(p) for p in cfg.iterdir()}
    rec = str(base / "rec.csv")
    inv: list[list[str]] = [
        # top level
        [],
        ["--bogus"],
        ["nope"],
        ["run", "--bogus-flag"],
        ["presets", "nope"],
        ["presets", "show"],
        ["presets", "show", "nope"],
        ["presets", "show", ""],
        ["presets", "show", "../demo"],
        ["presets", "show", "demo", "--set", "x"],
        ["presets", "show", "demo", "--set", "a.b"],
        ["presets", "show", "demo", "--set", "=1"],
        ["presets", "show", "demo", "--set", "optim.lr="],
        ["presets", "show", "demo", "--set", "optim.lr=[1,2"],
        ["presets", "show", "demo", "--set", "optim.lr={a: 1}"],
        ["presets", "show", "demo", "--set", "optim.lr=.inf"],
        ["presets", "show", "demo", "--set", "optim.lr=.nan"],
        ["presets", "show", "demo", "--set", "optim.lr=-1"],
        ["presets", "show", "demo", "--set", "optim.lr.x=1"],
        ["presets", "show", "demo", "--set", "name=x"],
        ["presets", "show", "demo", "--set", "data=5"],
        ["presets", "show", "demo", "--set", "data.synthetic=5"],
        ["presets", "show", "demo", "--set", "data.parts=[pose, tail]"],
        ["presets", "show", "demo", "--set", "data.batch_size=1e12"],
        ["presets", "show", "demo", "--set", "data.batch_size=true"],
        ["presets", "show", "demo", "--set", "data.batch_size=99999999999999999999999"],
        ["presets", "show", "demo", "--set", "data.speed_range=[1]"],
        ["presets", "show", "demo", "--set", "data.speed_range=[0.8, .inf]"],
        ["presets", "show", "demo", "--set", "model.config_overrides=3"],
        ["presets", "show", "demo", "--set", "training.threshold_step=1e-9"],
        ["presets", "show", "demo", "--set", "training.threshold_start=0.9"],
        ["presets", "show", "demo", "--set", "data.split_val_fraction=0.9"],
        [
            "presets",
            "show",
            "demo",
            "--set",
            "data.synthetic.val_fraction=0.6",
            "--set",
            "data.synthetic.test_fraction=0.5",
        ],
        ["presets", "show", "demo", "--set", "training.max_epochs=0"],
        ["presets", "show", "demo", "--set", "\udcff.x=1"],
        ["presets", "show", "demo", "--json", "--set", "optim.betas=[0.9]"],
        # run: config problems (none of these may create a run folder or start the engine)
        ["run"],
        ["run", "--preset", "nope"],
        ["run", "--preset", ""],
        ["run", "--preset", "demo", "--config", str(base / "missing.yaml")],
        ["run", "--config", str(cfg)],
        ["run", "--config", "/dev/null"],
        *[
            ["run", "--config", c[name]]
            for name in sorted(c)
            if name not in ("fractions.yaml", "unknown.yaml")
        ],
        ["run", "--config", c["fractions.yaml"]],
        ["run", "--config", c["unknown.yaml"]],
        ["run", "--preset", "demo", "--config", c["empty.yaml"]],
        ["run", "--preset", "demo", "--set", "optim.lr=.inf"],
        ["run", "--preset", "demo", "--set", "data.batch_size=0"],
        ["run", "--preset", "demo", "--gpus", "0"],
        ["run", "--preset", "demo", "--gpus", "-1"],
        ["run", "--preset", "demo", "--gpus", "abc"],
        ["run", "--preset", "demo", "--device", "tpu"],
        ["run", "--preset", "demo", "--dataset", "nope"],
        ["run", "--preset", "wlasl100-conservative"],
        ["run", "--preset", "wlasl100-conservative", "--data-root", str(base / "none")],
        ["run", "--preset", "demo", "--runs-dir", str(base / "afile")],
        ["run", "--resume", "nope"],
        ["run", "--resume", ""],
        ["run", "--resume", "../other/X"],
        ["run", "--resume", A],
        ["run", "--resume", RUNNING],
        ["run", "--resume", A, "--preset", "demo"],
        ["run", "--resume", "20250208"],
        # these reach the engine, which must refuse in one line
        ["run", "--resume", "20250204", "--quiet"],
        ["run", "--preset", "demo", *TINY, "--init-checkpoint", str(base / "evil-init.pt"), "-q"],
        ["run", "--preset", "demo", *TINY, "--init-checkpoint", str(base / "garbage.pt"), "-q"],
        ["run", "--preset", "demo", *TINY, "--init-checkpoint", str(base / "missing.pt"), "-q"],
        # sweep
        ["sweep"],
        ["sweep", "--preset", "demo", "--grid", "bad"],
        ["sweep", "--preset", "demo", "--grid", "optim.lr="],
        ["sweep", "--preset", "demo", "--grid", "optim.lr=a,b"],
        ["sweep", "--preset", "demo", "--grid", "optim.nope=1,2"],
        ["sweep", "--preset", "demo", "--grid", "optim.lr=.inf,1"],
        ["sweep", "--preset", "demo", "--parallel", "0"],
        ["sweep", "--config", c["binary.yaml"]],
        # data check
        ["data", "check"],
        ["data", "check", "--preset", "nope"],
        ["data", "check", "--config", c["binary.yaml"]],
        ["data", "check", "--config", c["empty.yaml"]],
        ["data", "check", "--preset", "wlasl100-conservative", "--data-root", str(base / "none")],
        ["data", "check", "--preset", "wlasl100-conservative", "--data-root", str(base / "afile")],
        ["data", "check", "--preset", "wlasl100-conservative", "--data-root", str(base / "cfg")],
        # predict
        ["predict"],
        ["predict", A],
        ["predict", "nope", rec],
        ["predict", A, rec],
        ["predict", "20250201", rec],
        ["predict", "20250202", rec],
        ["predict", "20250203", rec],
        ["predict", "20250206", rec],
        ["predict", "20250201", str(base / "missing.csv")],
        ["predict", "20250201", str(base / "notcsv.csv")],
        ["predict", "../other/X", rec],
        # runs
        ["runs", "--runs-dir", str(base / "afile")],
        ["runs", "--runs-dir", str(base / "none")],
        ["runs", "--runs-dir", "/proc/1/root/nope"],
        ["runs", "--json"],
        ["runs"],
        ["runs", "--runs-dir", ""],
        # show
        ["show"],
        ["show", "nope"],
        ["show", ""],
        ["show", "."],
        ["show", ".."],
        ["show", "../other/X"],
        ["show", "/"],
        ["show", "/etc"],
        ["show", "2025"],
        ["show", A, "--split", "bogus"],
        ["show", A, "--split", "val", "--all"],
        ["show", FAILED],
        ["show", LOST],
        ["show", "20250205"],
        ["show", "20250208"],
        ["show", "20250209"],
        ["show", "20250207"],
        ["show", A, "--runs-dir", str(base / "afile")],
        # compare
        ["compare"],
        ["compare", A],
        ["compare", A, "nope"],
        ["compare", A, A],
        ["compare", A, B, FAILED, LOST],
        ["compare", A, "20250205"],
        ["compare", A, "20250209"],
        ["compare", A, "20250208"],
        # stop
        ["stop"],
        ["stop", "nope"],
        ["stop", A],
        ["stop", LOST],
        ["stop", FAILED],
        ["stop", "20250210", "--wait", "0"],
        ["stop", "20250210", "--force"],
        ["stop", "20250211", "--force"],
        ["stop", RUNNING, "--wait", "0"],
        ["stop", RUNNING, "--force"],
        ["stop", A, "--wait", "-1"],
        ["stop", A, "--wait", "nan"],
        ["stop", A, "--wait", "abc"],
        ["stop", "20250209"],
        ["stop", "../other/X"],
        # thresholds
        ["thresholds"],
        ["thresholds", A, "--step", "1e-7"],
        ["thresholds", A, "--step", "0"],
        ["thresholds", A, "--step", "nan"],
        ["thresholds", A, "--step", "inf"],
        ["thresholds", A, "--step", "-1"],
        ["thresholds", A, "--step", "0.001"],
        ["thresholds", A, "--split", "bogus"],
        ["thresholds", A, "--pick", "2"],
        ["thresholds", A, "--pick", "nan"],
        ["thresholds", A, "--pick", "inf"],
        ["thresholds", A, "--pick", "-0"],
        ["thresholds", A, "--pick", "lots"],
        ["thresholds", A, "--pick", "best-f1", "--split", "test"],
        ["thresholds", FAILED, "--pick", "best-f1"],
        ["thresholds", "../other/X", "--pick", "0.5"],
        ["thresholds", "..", "--pick", "0.5"],
        ["thresholds", "20250205", "--pick", "0.5"],
        ["thresholds", "20250207"],
        ["thresholds", "20250207", "--pick", "best-f1"],
        ["thresholds", "20250208", "--pick", "0.5"],
        # extract
        ["extract"],
        ["extract", "--preset", "nope"],
        ["extract", "--preset", "demo"],
        ["extract", "--preset", "phase1-ctc20", "--data-root", str(base / "none")],
        ["extract", "--preset", "phase1-ctc20", "--data-root", str(base / "afile")],
        ["extract", "--preset", "phase1-ctc20", "--data-root", str(base / "cfg"), "--workers", "0"],
        ["extract", "--preset", "phase1-ctc20", "--workers", "-1"],
    ]
    return inv


# --------------------------------------------------------------------------- running


def classify(rc: int | None, out: str, timed_out: bool) -> str:
    if timed_out:
        return "hang"
    if "Traceback (most recent call last)" in out:
        return "traceback"
    if rc == 0:
        return "ok"
    if rc == 2 and ("Usage:" in out or "Try 'slr" in out):
        return "usage"
    lines = [x for x in out.splitlines() if x.strip()]
    if len(lines) == 1:
        return "clean"
    return "messy"


def run_one(args: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Result:
    cmd = [sys.executable, "-m", "slr_tui.cli", *args]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the CLI and any engine it started
        out, _ = proc.communicate()
        timed_out = True
    text = out.decode("utf-8", "replace")
    return Result(
        args,
        classify(proc.returncode, text, timed_out),
        proc.returncode,
        time.monotonic() - t0,
        text,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per invocation")
    ap.add_argument("--jobs", type=int, default=2, help="invocations at a time")
    ap.add_argument("--only", help="run only invocations whose text contains this")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every result")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    opts = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="slr-fuzz-"))
    try:
        play = build_playground(base)
        env = {
            **os.environ,
            "SLR_RUNS_DIR": str(play["root"]),
            "SLR_CONFIG": str(base / "no-settings.yaml"),
            "SLR_CACHE_DIR": str(base / "cache"),
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO),
            "COLUMNS": "200",
        }
        env.pop("SLR_DEBUG", None)
        items = invocations(base)
        if opts.only:
            items = [a for a in items if opts.only in " ".join(a)]
        before = snapshot(base, play["root"])
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
            results = list(
                pool.map(lambda a: run_one(a, env, base / "work" / "here", opts.timeout), items)
            )
        wall = time.monotonic() - t0
        checks = after_checks(play, base, before)
    finally:
        sleeper = locals().get("play", {}).get("sleeper") if "play" in locals() else None
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait()
        if not opts.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base}")

    kinds = ("clean", "usage", "ok", "messy", "traceback", "hang")
    counts = {k: sum(r.kind == k for r in results) for k in kinds}
    print(
        f"{len(results)} invocations in {wall:.0f}s (timeout {opts.timeout:g}s, {opts.jobs} at a time)"
    )
    print("  ".join(f"{k} {counts[k]}" for k in kinds))
    for r in results:
        if opts.verbose or r.kind in ("traceback", "hang", "messy"):
            shown = " ".join(repr(a) if (" " in a or not a) else a for a in r.args)
            print(f"\n[{r.kind}] rc={r.rc} {r.seconds:.1f}s  slr {shown}")
            tail = r.output.strip().splitlines()
            limit = 30 if r.kind == "traceback" else 6
            for line in tail[-limit:]:
                print(f"    {line[:300]}")
    print()
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    bad = counts["traceback"] + counts["hang"] + sum(not ok for ok in checks.values())
    return 1 if bad else 0


def snapshot(base: Path, root: Path) -> set[str]:
    """Files outside the run folders (their writes are allowed inside only)."""
    out = set()
    for p in base.rglob("*"):
        rel = p.relative_to(base)
        if rel.parts[0] in ("runs", "cache", "work") or not p.is_file():
            continue
        out.add(str(rel))
    return out


def after_checks(play: dict, base: Path, before: set[str]) -> dict[str, bool]:
    markers = play["markers"]
    sleeper = play["sleeper"]
    time.sleep(0.2)
    new = snapshot(base, play["root"]) - before
    if new:
        print("written outside the runs dir:", ", ".join(sorted(new)))
    return {
        "no crafted checkpoint ran code (no PWNED-* file)": not any(
            m.exists() for m in markers.values()
        ),
        "the foreign sleep (stale pid / process group) is alive": sleeper.poll() is None,
        "nothing written outside the runs dir (e.g. other/X/threshold.json)": not new,
        "the runs dir holds no file at its top level": not any(
            p.is_file() for p in play["root"].iterdir()
        ),
    }


if __name__ == "__main__":
    sys.exit(main())
