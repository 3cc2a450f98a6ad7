"""Checkpoints (``last.pt``, ``best.pt``, ``--init-checkpoint``): written atomically,
read safely, and enough in one file to resume a run exactly.

Loading. A ``.pt`` file is a pickle, and unpickling can run any code the file names.
Checkpoints are therefore always read with ``torch.load(..., weights_only=True)``: only
tensors, numbers, strings, lists, tuples and dicts come back. A file that needs anything
else is refused with a one-line :class:`CheckpointError`; there is no fallback to full
unpickling. What this project writes fits that: the RNG states are stored as plain values
(:func:`rng_state`), the monitor's as floats and ints. Checkpoints written before that
kept numpy's RNG state as an ``np.ndarray``; for those exactly numpy's array and scalar
reconstruction and its dtypes are allowed (they build arrays from bytes and call nothing
else).

Why one file and not Accelerate's ``save_state``. ``save_state`` writes a folder of
separate files (weights, optimizer, scheduler, scaler, sampler state, one RNG file per
process) with no single step that commits them together, and its RNG files hold numpy's
state as an ndarray. A training checkpoint here (:func:`training_checkpoint`) is one dict in one file:

- one file is one atomic rename (:func:`save_checkpoint`): a stop, a crash or a full disk
  leaves the previous checkpoint whole, never a mix of two steps;
- it loads with ``weights_only=True`` and the numpy allowlist above, nothing more;
- it holds the trainer's position (``epoch`` and ``step_in_epoch``: the training
  sampler's order follows from the seed and the epoch, and it skips the batches already
  done), every RNG stream, the monitor's state and the epoch's running sums, so
  ``--resume`` continues mid-epoch exactly;
- ``model`` is the unwrapped model's plain state dict, so ``best.pt`` is read by
  ``engine.predict`` (no accelerate imported) and by ``--init-checkpoint`` on any number
  of GPUs. Exact resume needs the process count that wrote ``last.pt`` (the sampler
  shards by rank); :func:`load_resumable` says so in one line.
"""

from __future__ import annotations

import logging
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

from engine.config import ConfigError

log = logging.getLogger("engine")


class CheckpointError(ConfigError):
    """A checkpoint that is missing, damaged, or not loadable without unpickling code.

    A :class:`ConfigError`, so every place that reports bad input (the engine's run
    record, the CLI) shows it as one line."""


def _numpy_globals() -> list[Any]:
    """The numpy names an old checkpoint's pickled ``np.ndarray`` needs, nothing more."""
    import numpy as np

    try:
        from numpy._core import multiarray

        modern = "numpy._core.multiarray"
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]

        modern = "numpy.core.multiarray"
    out: list[Any] = [np.ndarray, np.dtype]
    for fn in (multiarray._reconstruct, multiarray.scalar):
        out.append(fn)
        # a file pickled by the other numpy major names the other module path
        for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
            if mod != modern:
                out.append((fn, f"{mod}.{fn.__name__}"))
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        out += [
            getattr(dtypes, n)
            for n in getattr(dtypes, "__all__", [])
            if isinstance(getattr(dtypes, n, None), type)
        ]
    return out


_GLOBAL = re.compile(r"GLOBAL (\S+)")


def _reason(exc: BaseException) -> str:
    text = str(exc)
    m = _GLOBAL.search(text)
    if m:
        return f"it would unpickle {m.group(1)}, which can run code"
    if "WeightsUnpickler error:" in text:  # torch's own text around it is advice, not cause
        after = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0]
        detail = " ".join(after.split())[:160]
        if not detail or detail.startswith("Unsupported operand"):
            return "damaged, or not a torch checkpoint" + (f" ({detail})" if detail else "")
        return f"not a plain checkpoint ({detail})"
    if isinstance(exc, EOFError):
        return "the file is empty or cut short"
    if text.startswith("Weights only load failed"):
        return "damaged, or not a torch checkpoint"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = first.split(". ")[0]  # miniz and friends add paragraphs of advice
    return f"damaged, or not a torch checkpoint ({first[:160]})"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path`` as a dict, loaded with ``weights_only=True`` onto the CPU.
    Raises :class:`CheckpointError` (one line) for a missing, damaged or unsafe file."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no checkpoint file at {p}")
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(_numpy_globals()):
            warnings.simplefilter("ignore")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {p}: {exc.strerror or exc}") from None
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"refused to load checkpoint {p}: {_reason(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - any other failure of a hostile file is one line
        raise CheckpointError(f"refused to load checkpoint {p}: {_reason(exc)}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"checkpoint {p} holds a {type(obj).__name__}, not a dict of weights and state"
        )
    return obj


def model_state(ckpt: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The model weights of a checkpoint: its ``model`` entry, or the dict itself when it
    is a bare state dict of tensors."""
    import torch

    state = ckpt.get("model", ckpt)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path} holds no model weights")
    return state


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then rename over ``path``:
    a reader sees the old file or the new one, never half of one. On failure (a full disk)
    the temp file is removed and the old checkpoint stays."""
    import torch

    from engine.runs import atomic_write_file

    atomic_write_file(path, lambda f: torch.save(obj, f))


# --------------------------------------------------------------------------- weights


def _first_detail(exc: RuntimeError) -> str:
    """The telling line of ``load_state_dict``'s error (its first line is a header)."""
    lines = str(exc).strip().splitlines()
    return (lines[1].strip() if len(lines) > 1 else (lines[0] if lines else ""))[:200]


def load_weights(model: Any, path: str | Path, *, strict: bool = True) -> tuple[int, int]:
    """Load the model weights of the checkpoint at ``path`` (its ``model`` entry, or a bare
    state dict) into ``model``, safely (:func:`load_checkpoint`). Weights of another
    model (names or shapes) are a one-line :class:`CheckpointError`. Returns the counts of
    missing and unexpected keys (both 0 with ``strict``)."""
    state = model_state(load_checkpoint(path), path)
    try:
        missing, unexpected = model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {path} does not fit this run's model ({_first_detail(exc)})"
        ) from None
    return len(missing), len(unexpected)


def load_init_weights(model: Any, path: str | Path) -> None:
    """``--init-checkpoint``: another run's weights, where names match (missing and
    unexpected keys are counted in the log, not refused). Errors name the option."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--init-checkpoint: no file at {p}")
    try:
        missing, unexpected = load_weights(model, p, strict=False)
    except CheckpointError as exc:
        raise CheckpointError(f"--init-checkpoint: {exc}") from None
    log.info("initialised weights from %s (%d missing, %d unexpected keys)", p, missing, unexpected)


# --------------------------------------------------------------------------- training state


#: what ``--resume`` cannot do without
RESUME_KEYS = ("model", "optimizer", "epoch", "step_in_epoch", "global_step", "rng")


def rng_state() -> dict[str, Any]:
    """Every RNG stream in forms ``torch.load(weights_only=True)`` accepts: python's state
    as (version, list of ints, gauss), numpy's as (name, list of ints, pos, has_gauss,
    cached_gaussian), torch's as byte tensors."""
    import random

    import numpy as np
    import torch

    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [int(version), [int(x) for x in internal], gauss],
        "numpy": [str(name), [int(x) for x in keys], int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`'s streams; also takes the older form (tuples, numpy's key
    as an ndarray) that checkpoints written before it hold."""
    import random

    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(
        (str(name), np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached))
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def training_checkpoint(parts: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """The one dict a training checkpoint is: the state dict of each of ``parts`` (model,
    optimizer, scheduler, scaler; None for one the run has not got), the plain values of
    ``state`` (position, monitor, config, labels) and every RNG stream, taken last."""
    ckpt = {k: None if part is None else part.state_dict() for k, part in parts.items()}
    ckpt.update(state)
    ckpt["rng"] = rng_state()
    return ckpt


def load_resumable(path: str | Path, world_size: int) -> dict[str, Any]:
    """``last.pt`` for ``--resume``: loaded safely, with every :data:`RESUME_KEYS` entry,
    written by ``world_size`` processes. Otherwise a one-line error."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"cannot resume: {p} does not exist")
    try:
        ckpt = load_checkpoint(p)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot resume: {exc}") from None
    lacking = [k for k in RESUME_KEYS if k not in ckpt]
    if lacking:
        raise CheckpointError(f"cannot resume: {p} lacks {', '.join(lacking)}")
    if ckpt.get("world_size", 1) != world_size:
        raise ConfigError(
            f"cannot resume: last.pt was written by {ckpt.get('world_size')} processes, "
            f"this run has {world_size}"
        )
    return ckpt


def restore(parts: dict[str, Any], ckpt: dict[str, Any]) -> None:
    """Load ``ckpt``'s state dicts into ``parts`` (as :func:`training_checkpoint` named
    them); a part the run has not got, or one saved as None, is left as it is."""
    for key, part in parts.items():
        if part is not None and ckpt.get(key) is not None:
            part.load_state_dict(ckpt[key])
