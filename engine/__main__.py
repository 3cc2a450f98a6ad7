"""``python -m engine {train,check,extract,predict,export,eval} ...``: every engine job,
one subcommand each.

``train`` trains one run into a run folder; ``check``, ``extract``, ``predict``,
``export`` and ``eval`` report through a result JSON and a progress JSONL (see :mod:`engine.jobs`).
``slr_tui.launch`` starts them; ``python -m engine JOB --help`` lists each one's arguments.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

# A stop (SIGTERM, Ctrl-C) must never kill the engine outright, however early it comes:
# the handler goes in before anything heavy is imported. The launcher starts the engine
# with these signals blocked, so one sent before this line is held (pending) rather than
# fatal; unblocking below delivers it to the handler.
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_early: list[str] = []


def _early_stop(signum: int, _frame: object) -> None:
    _early.append(signal.Signals(signum).name)


def _install_early_handler() -> None:
    for s in _SIGNALS:
        signal.signal(s, _early_stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)


if __name__ == "__main__":
    _install_early_handler()


def _say(run_dir: Path, line: str, stream=None) -> None:
    """One log line to ``stream`` (stdout), and to run_dir/log.txt unless that stream
    already is log.txt (the launcher points stdout and stderr there)."""
    stream = stream or sys.stdout
    text = f"{time.strftime('%H:%M:%S')} {line}\n"
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        pass
    log_path = run_dir / "log.txt"
    try:
        a, b = os.fstat(stream.fileno()), os.stat(log_path)
        if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
            return
    except (OSError, ValueError, AttributeError):
        pass
    if run_dir.is_dir():
        try:
            with open(log_path, "a") as f:
                f.write(text)
        except OSError:
            pass


def _record_end(run_dir: Path, status: str, error: str | None = None) -> None:
    """Record how a run ended before training could start (torch not imported): run.json
    ``status``, the error, the end time. Only an existing run folder, only rank 0."""
    if int(os.environ.get("RANK", "0")) != 0 or not run_dir.is_dir():
        return
    from engine import runs

    try:
        meta = runs.read_meta(run_dir)
        now = time.time()
        fields = {"status": status, "error": error, "ended_at": now, "pid": None}
        if meta.get("session_started_at") is not None:
            fields.update(runs.close_session(meta, now))
        runs.update_run_json(run_dir, fields, base=meta)
    except OSError as exc:
        line = runs.no_space_line(exc, run_dir) or f"{exc.strerror or exc}"
        _say(run_dir, f"cannot record status {status} in run.json: {line}", sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train one run into a run directory")
    tr.add_argument("--config", required=True, help="effective config (JSON or YAML)")
    tr.add_argument("--run-dir", required=True, help="the run folder to write")
    tr.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    tr.add_argument("--init-checkpoint", help="load model weights only from this checkpoint")

    progress = "progress JSONL to append rows to (engine.jobs lists them)"
    ck = sub.add_parser("check", help="report what a dataset holds, per split")
    ck.add_argument("--config", required=True, help="effective config (JSON or YAML)")
    ck.add_argument("--out", required=True, help="the report JSON to write")
    ck.add_argument("--progress", help=progress)

    ex = sub.add_parser("extract", help="MediaPipe Holistic landmarks into a landmark cache")
    ex.add_argument("--config", required=True, help="effective config (JSON or YAML)")
    ex.add_argument("--out", required=True, help="the landmark cache folder (a rerun resumes)")
    ex.add_argument("--summary", required=True, help="the summary JSON to write")
    ex.add_argument("--progress", help=progress)
    ex.add_argument("--workers", type=int, default=1, help="processes, one Holistic each")
    ex.add_argument("--max-glosses", type=int, help="keep the N glosses with the most videos")
    ex.add_argument("--samples-per-gloss", type=int, help="at most N videos a gloss")
    ex.add_argument("--stride", type=int, default=1, help="every Nth frame of a video")
    ex.add_argument("--max-size", type=int, help="long side of a frame at most N px")
    ex.add_argument("--model-complexity", type=int, default=1, help="Holistic pose model 0-2")
    ex.add_argument("--model-file", help="pose_landmark_lite/heavy.tflite for complexity 0/2")
    ex.add_argument("--limit", type=int, help="extract at most N videos this run")
    ex.add_argument("--face-indices", help="face mesh points to keep, e.g. 0,13,14 (or all)")
    ex.add_argument("--rois", action="store_true", help="face/hand crops into an ROI cache")
    ex.add_argument("--roi-size", type=int, help="side of the ROI crops in pixels (112)")
    ex.add_argument("--roi-margin", type=float, help="box margin, a share of its side (0.2)")
    ex.add_argument("--roi-hold", type=int, help="frames a lost hand keeps its box (4)")

    pr = sub.add_parser("predict", help="classify recordings with a trained run")
    pr.add_argument("--run-dir", required=True, help="the trained run (its config.json, best.pt)")
    pr.add_argument("--out", required=True, help="the prediction JSON to write")
    pr.add_argument("--progress", help=progress)
    pr.add_argument("--top", type=int, help="the most likely classes to list (5)")
    pr.add_argument(
        "files", nargs="+", help="files of the kind the run reads (CSV, npy, npz, video)"
    )

    ev = sub.add_parser("eval", help="score a trained run on its own or other data")
    ev.add_argument("--run-dir", required=True, help="the trained run (its config.json, best.pt)")
    ev.add_argument("--config", required=True, help="config whose data section is scored")
    ev.add_argument("--name", required=True, help="results go to RUN_DIR/eval-NAME/")
    ev.add_argument("--checkpoint", choices=("best", "last"), default="best")
    ev.add_argument("--splits", help="comma-separated: train,val,test (default: val,test)")
    ev.add_argument("--skip-unknown", action="store_true", help="drop unknown-label samples")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing eval-NAME/")
    ev.add_argument("--aggregate", choices=("mean", "max", "vote"), help="group aggregate")
    ev.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ev.add_argument("--out", required=True, help="the result JSON to write")
    ev.add_argument("--progress", help=progress)

    xp = sub.add_parser("export", help="a trained run as ONNX, checked against PyTorch")
    xp.add_argument("--run-dir", required=True, help="the trained run (its config.json, best.pt)")
    xp.add_argument("--onnx", help="the ONNX file to write (default RUN/export/NAME.onnx)")
    xp.add_argument("--out", required=True, help="the result JSON to write")
    xp.add_argument("--progress", help=progress)
    xp.add_argument("--atol", type=float, help="max abs difference x max(1, output scale)")
    xp.add_argument("--batches", type=int, help="real batches of val/test to compare on (3)")
    xp.add_argument("--batch-size", type=int, help="samples in the traced example batch")
    xp.add_argument("--opset", type=int, help="ONNX opset (18)")
    xp.add_argument("--exporter", choices=("auto", "torchscript", "dynamo"), default="auto")
    return parser


def _stops_interrupt() -> None:
    """A job other than train: from now on a stop (SIGTERM, SIGINT) raises
    KeyboardInterrupt, which the job turns into an ``interrupted`` end (extract keeps a
    valid cache). Only where the early handler was put in (run as a script)."""
    if signal.getsignal(signal.SIGTERM) is not _early_stop:
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    for s in _SIGNALS:
        signal.signal(s, interrupt)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command != "train":
        from engine import jobs

        return jobs.run(args.command, args, early=_early, take_stops=_stops_interrupt)
    run_dir = Path(args.run_dir)

    from engine.config import ConfigError, load_file, validate

    try:
        cfg = validate(load_file(args.config), args.config)
    except ConfigError as exc:  # the run is failed, with the reason, not left "starting"
        _say(run_dir, f"error: {exc}", sys.stderr)
        _record_end(run_dir, "failed", str(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - any other reading failure, as one line
        line = f"{type(exc).__name__}: {exc}".splitlines()[0]
        _say(run_dir, f"error: cannot read {args.config}: {line}", sys.stderr)
        _record_end(run_dir, "failed", f"cannot read {args.config}: {line}")
        return 1
    if _early:  # stopped before torch was even imported
        _say(run_dir, f"stop requested ({_early[0]}) before training started")
        _record_end(run_dir, "stopped")
        return 130
    from engine.train import StopFlag, run_training

    stop = StopFlag()
    stop.install()
    for name in _early:  # a stop that came while torch was being imported
        stop.set(name)
    return run_training(
        cfg,
        run_dir,
        resume=args.resume,
        init_checkpoint=args.init_checkpoint,
        stop=stop,
    )


def fast_exit(code: int) -> None:
    """End the process once a job has recorded everything: the exit handlers run (logging
    flushes and closes log.txt, multiprocessing reaps its children, trackers close), the
    standard streams are flushed, and the interpreter's own teardown is skipped. With
    torch, scipy and pandas loaded that teardown (module dicts cleared, extension
    destructors) took 0.9 s after a 10 s demo run had ended: time a user or a sweep waits
    for nothing."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or a full disk: nothing more to say there
            pass
    os._exit(code)


if __name__ == "__main__":
    # log lines are best effort: on a full disk log.txt cannot take them, and a traceback
    # per line would bury the one line that says so
    import logging

    logging.raiseExceptions = False
    code = main()
    fast_exit(0 if code is None else int(code))
