"""``python -m engine train --config C --run-dir D [--resume] [--init-checkpoint P]``."""

from __future__ import annotations

import argparse
import sys

from engine.config import ConfigError, load_file, validate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train one run into a run directory")
    tr.add_argument("--config", required=True, help="effective config (JSON or YAML)")
    tr.add_argument("--run-dir", required=True, help="the run folder to write")
    tr.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    tr.add_argument("--init-checkpoint", help="load model weights only from this checkpoint")
    args = parser.parse_args(argv)

    try:
        cfg = validate(load_file(args.config), args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from engine.train import run_training

    return run_training(
        cfg,
        args.run_dir,
        resume=args.resume,
        init_checkpoint=args.init_checkpoint,
        install_signals=True,
    )


if __name__ == "__main__":
    sys.exit(main())
