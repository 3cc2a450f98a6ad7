"""Saving and loading checkpoints (``last.pt``, ``best.pt``, ``--init-checkpoint``) safely.

A ``.pt`` file is a pickle, and unpickling can run any code the file names. Checkpoints
are therefore always read with ``torch.load(..., weights_only=True)``: only tensors,
numbers, strings, lists, tuples and dicts come back. A file that needs anything else is
refused with a one-line :class:`CheckpointError`; there is no fallback to full unpickling.

What this project writes fits that: the RNG states are stored as plain values
(:func:`engine.train.rng_state`). Checkpoints written before that kept numpy's RNG state
as an ``np.ndarray``; for those exactly numpy's array and scalar reconstruction and its
dtypes are allowed (they build arrays from bytes and call nothing else).
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

from engine.config import ConfigError


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
