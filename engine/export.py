"""Export a trained run to ONNX and check the graph against PyTorch (``slr export RUN --onnx``).

The run folder holds all it takes: :func:`load_for_export` reads ``config.json``, builds
the run's own data (the same splits and standardisation the trainer used) and the model
from it, and loads ``best.pt`` (weights only, as :func:`engine.predict.load_trained`).
The model's :meth:`~engine.models.base.SLRModel.onnx_export` hook says what to export
(the whole classifier by default, a translation model's encoder) as an
:class:`~engine.models.base.ExportSpec`.

The check runs the ONNX file with onnxruntime (CPU) and the module with PyTorch on
``batches`` real batches from val, then test, of different sizes: the example the graph
was traced on (``batch_size`` samples), one of half that size and one of a single sample,
plus a copy of the second batch (or the example) cut to 3/4 of its length on every
dynamic axis that is not the batch axis. A graph whose shapes were frozen at trace time fails there.

Exporters: ``auto`` (the default) tries ``torch.onnx.export(dynamo=False)``, the
TorchScript tracer, first: it runs offline in a second, honours ``dynamic_axes`` as given
and is the one that handles the packed RNNs of this repo (torch.export cannot trace
``pack_padded_sequence``). Its trace freezes a shape that Python code computes
(``nn.MultiheadAttention`` reshapes by the example's batch and length), which the checks
on other sizes catch; ``auto`` then exports again with ``dynamo=True`` (torch.export with
``Dim.AUTO`` axes, through onnxscript), which keeps them symbolic, and keeps whichever
graph matches PyTorch. The result names the exporter used and what the other said.

Tolerance: the check passes when the largest absolute difference over every output
element is at most ``atol * max(1, scale)``, ``scale`` being the largest absolute PyTorch
output (so ``atol`` is absolute for outputs of order 1 and relative for larger ones). The
default 1e-4 is about 100x what float32 kernels of two runtimes differ by on these
models (measured: about 1e-7) and far below a real export error (a wrong axis, a frozen
length: differences of order 1).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import runs
from engine.config import load_file, validate
from engine.errors import DataError, ModelError
from engine.models.base import ExportSpec, SLRModel

DEFAULT_ATOL = 1e-4
DEFAULT_BATCHES = 3
OPSET = 18
EXPORTERS = ("torchscript", "dynamo")  # the order "auto" tries them in
EXPORT_DIR = "export"  # RUN/export/NAME.onnx unless a path is given


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ModelError(
            "onnxruntime is not installed, so the export cannot be checked: pip install onnxruntime"
        ) from None
    return onnxruntime


def _pool(bundle) -> list[tuple[str, Any, int]]:
    """(split, dataset, index) of every val then test sample."""
    out = []
    for split in ("val", "test"):
        ds = getattr(bundle, split, None)
        if ds is not None:
            out += [(split, ds, i) for i in range(len(ds))]
    return out


def _batches(bundle, batch_size: int, n: int) -> list[tuple[str, dict[str, Any]]]:
    """``n`` collated batches of sizes batch_size, batch_size // 2, 1, ... taken in turn
    from val then test (wrapping around a small pool); each with the splits it holds."""
    pool = _pool(bundle)
    if not pool:
        raise DataError("the run's data has no val or test samples to check the export on")
    sizes = [batch_size, max(1, batch_size // 2), 1]
    out, start = [], 0
    for k in range(n):
        size = min(sizes[k % len(sizes)], len(pool))
        picked = [pool[(start + j) % len(pool)] for j in range(size)]
        start = (start + size) % len(pool)
        items = [ds[i] for _split, ds, i in picked]
        splits = "+".join(dict.fromkeys(s for s, _ds, _i in picked))
        out.append((splits, bundle.collate_fn(items)))
    return out


def _shorter(spec: ExportSpec, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
    """``inputs`` cut to 3/4 of their length on every dynamic axis but ``batch`` (padding
    sits at the end, so every sample keeps its first frames); None if none can shrink."""
    sizes: dict[str, int] = {}
    for name, t in zip(spec.input_names, inputs, strict=True):
        for axis, label in spec.dynamic_axes.get(name, {}).items():
            if label != "batch" and axis < t.dim():
                sizes[label] = min(sizes.get(label, t.shape[axis]), t.shape[axis])
    new = {label: max(1, n * 3 // 4) for label, n in sizes.items() if n > 1}
    if not new:
        return None
    cut = []
    for name, t in zip(spec.input_names, inputs, strict=True):
        for axis, label in spec.dynamic_axes.get(name, {}).items():
            if label in new and axis < t.dim():
                t = t.narrow(axis, 0, new[label])
        cut.append(t.contiguous())
    return tuple(cut)


def _outputs(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.detach().float().cpu().numpy() for o in outs]


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b|, NaN/inf where both agree counted as equal, where one differs as inf."""
    if a.shape != b.shape:
        return float("inf")
    a, b = a.astype(np.float64), b.astype(np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if np.any(~both & ~same):
        return float("inf")
    return float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0


def _graph_axes(path: Path) -> dict[str, list[list[int | str]]]:
    """The input and output shapes the ONNX file declares (a name where an axis is dynamic)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(model)

    def shape(v) -> list[int | str]:
        return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]

    return {
        "inputs": [[v.name, shape(v)] for v in model.graph.input],
        "outputs": [[v.name, shape(v)] for v in model.graph.output],
    }


def _dynamo_shapes(spec: ExportSpec) -> tuple[tuple[dict[int, Any], ...]]:
    """``dynamic_axes`` as torch.export's ``dynamic_shapes`` for a module of ``*tensors``:
    ``Dim.AUTO`` lets torch.export find each axis' range and the axes that are equal (a
    named ``Dim`` must state a range up front, and a model that checks its length against
    a position table has one)."""
    auto = torch.export.Dim.AUTO
    per_input = tuple(
        {axis: auto for axis in spec.dynamic_axes.get(name, {})} for name in spec.input_names
    )
    return (per_input,)


def _name_axes(path: Path, spec: ExportSpec) -> None:
    """Give the dynamo graph's symbolic axes (``s87``) the names of ``dynamic_axes``."""
    import onnx

    model = onnx.load(str(path))
    rename: dict[str, str] = {}
    for v in [*model.graph.input, *model.graph.output]:
        dims = v.type.tensor_type.shape.dim
        for axis, label in spec.dynamic_axes.get(v.name, {}).items():
            if axis < len(dims) and dims[axis].dim_param:
                rename.setdefault(dims[axis].dim_param, label)
    if not rename:
        return
    for v in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for d in v.type.tensor_type.shape.dim:
            if d.dim_param in rename:
                d.dim_param = rename[d.dim_param]
    onnx.save(model, str(path))


def _write(name: str, spec: ExportSpec, path: Path, opset: int) -> None:
    """One exporter's graph of ``spec`` into ``path``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings on frozen Python branches
        if name == "torchscript":
            torch.onnx.export(
                spec.module.eval(),
                spec.inputs,
                str(path),
                input_names=spec.input_names,
                output_names=spec.output_names,
                dynamic_axes=spec.dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
            return
        with contextlib.redirect_stdout(io.StringIO()):  # its step-by-step chatter
            torch.onnx.export(
                spec.module.eval(),
                spec.inputs,
                str(path),
                input_names=spec.input_names,
                output_names=spec.output_names,
                dynamic_shapes=_dynamo_shapes(spec),
                opset_version=opset,
                dynamo=True,
                external_data=False,
            )
        _name_axes(path, spec)


def _attempt(
    name: str,
    spec: ExportSpec,
    checks: list[tuple[str, tuple[torch.Tensor, ...], list[np.ndarray]]],
    path: Path,
    opset: int,
    ort,
    on_check: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    """Export with one exporter into ``path`` (atomically) and run every check (label,
    inputs, PyTorch's outputs): the exporter, its ``graph``, ``checks``, ``max_abs_diff``,
    ``scale``, or its ``error``."""
    part = path.with_name(path.name + ".part")
    res: dict[str, Any] = {"exporter": name}
    try:
        _write(name, spec, part, opset)
        res["graph"] = _graph_axes(part)
    except OSError:
        part.unlink(missing_ok=True)
        raise
    except Exception as exc:  # noqa: BLE001 - the exporters' many failures, as one line
        part.unlink(missing_ok=True)
        res["error"] = _line(exc)
        return res
    os.replace(part, path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    opts.log_severity_level = 4  # a refused batch is reported once, in the result
    rows, worst, scale = [], 0.0, 0.0
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        for k, (label, inputs, expected) in enumerate(checks, 1):
            feeds = {n: t.cpu().numpy() for n, t in zip(spec.input_names, inputs, strict=True)}
            got = session.run(spec.output_names, feeds)
            diff = max(_max_diff(np.asarray(g), e) for g, e in zip(got, expected, strict=True))
            if not np.isfinite(diff):
                res.update(
                    checks=rows,
                    error=f"on the {label} batch the ONNX output differs from PyTorch's in "
                    "shape or in where it is NaN/inf",
                )
                return res
            out_scale = max(float(np.abs(e[np.isfinite(e)]).max(initial=0.0)) for e in expected)
            worst, scale = max(worst, diff), max(scale, out_scale)
            shapes = {n: list(t.shape) for n, t in zip(spec.input_names, inputs, strict=True)}
            sizes = {  # the size of each named dynamic axis: {"batch": 4, "time": 10}
                label: shapes[n][axis]
                for n in spec.input_names
                for axis, label in spec.dynamic_axes.get(n, {}).items()
                if axis < len(shapes[n])
            }
            rows.append(
                {
                    "split": label,
                    "sizes": sizes,
                    "shapes": shapes,
                    "max_abs_diff": diff,
                    "scale": out_scale,
                }
            )
            if on_check is not None:
                on_check(k, len(checks))
    except Exception as exc:  # noqa: BLE001 - onnxruntime refusing the graph on a batch
        res.update(checks=rows, error=f"onnxruntime: {_line(exc)}")
        return res
    res.update(checks=rows, max_abs_diff=worst, scale=scale)
    return res


_CLASS = re.compile(r"^<class '(?:[\w.]+\.)?(\w+)'>")
_ORT_SOURCE = re.compile(r"^\s*/\S+:\d+ .*? was false\.\s*")


def _line(exc: BaseException) -> str:
    """An exception as one short line. The dynamo exporter puts the real error on a
    ``<class 'TypeError'>: ...`` line under a banner; onnxruntime names the node, then the
    C++ source and condition, then what went wrong (kept: the node and what went wrong)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    line = next((ln for ln in lines if _CLASS.match(ln)), lines[0] if lines else "")
    line = _CLASS.sub(r"\1", line) or type(exc).__name__
    if "Status Message:" in line:
        head, detail = line.split("Status Message:", 1)
        node = re.search(r"Name:'([^']*)'", head)
        line = f"node {node.group(1)}: " if node else ""
        line += _ORT_SOURCE.sub("", detail).strip()
    return line[:300]


def load_for_export(run_dir: Path) -> tuple[Any, SLRModel, Any]:
    """(config, model with best.pt weights in eval mode on the CPU, the run's data bundle).

    The same weights-only load as :func:`engine.predict.load_trained`, but the model is
    built from the data bundle, as the trainer builds it, not from data.json's class
    names: a translation model needs the training texts and the tokenizer saved in the
    run folder (``bundle.run_dir``) to be built. A classical model is refused (the hook's
    one line) before its weights are read."""
    from engine.checkpoint import load_weights
    from engine.data import build_data
    from engine.models import build_model

    path = run_dir / runs.CONFIG_JSON
    if not path.is_file():
        raise DataError(f"{run_dir} is not a run folder (no {runs.CONFIG_JSON})")
    cfg = validate(load_file(path), str(path))
    ckpt = run_dir / "best.pt"
    if not ckpt.is_file():
        raise DataError(f"run {run_dir.name} has no trained model yet (best.pt)")
    bundle = build_data(cfg)
    bundle.run_dir = run_dir  # where the trainer saved what the model reloads (a tokenizer)
    model = build_model(cfg, bundle)
    if model.is_classical:
        model.onnx_export({})  # raises the hook's one-line ModelError
    load_weights(model, ckpt)  # weights_only: a crafted best.pt runs no code
    return cfg, model.cpu().eval(), bundle


def export_onnx(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    atol: float = DEFAULT_ATOL,
    batches: int = DEFAULT_BATCHES,
    batch_size: int | None = None,
    opset: int = OPSET,
    exporter: str = "auto",
    on_stage: Callable[[str], None] | None = None,
    on_check: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write the run's model as ONNX and compare onnxruntime with PyTorch on its data.

    Returns the result (``ok`` False when the difference is above the tolerance, see the
    module docstring). Raises ModelError (cannot be exported, no onnxruntime), DataError
    (no trained model, no samples), ConfigError (a damaged config)."""
    run_dir = Path(run_dir)
    if atol <= 0 or not np.isfinite(atol):
        raise ModelError(f"--atol must be a positive number, not {atol}")
    if exporter not in ("auto", *EXPORTERS):
        raise ModelError(f"--exporter must be auto, torchscript or dynamo, not '{exporter}'")
    if batches < 1:
        raise ModelError(f"--batches must be at least 1, not {batches}")
    stage = on_stage or (lambda _s: None)
    ort = _onnxruntime()
    stage("loading")
    cfg, model, bundle = load_for_export(run_dir)
    size = batch_size or int(getattr(cfg.data, "batch_size", 8) or 8)
    if size < 1:
        raise ModelError(f"--batch-size must be at least 1, not {size}")
    real = _batches(bundle, size, batches)
    spec = model.onnx_export(real[0][1])
    batches_in = [(f"{real[0][0]} (example)", spec.inputs)]
    for splits, batch in real[1:]:
        batches_in.append((splits, model.onnx_export(batch).inputs))
    # cut a batch of another size than the example (the example itself if there is none)
    for _label, inp in [*batches_in[1:], batches_in[0]]:
        cut = _shorter(spec, inp)
        if cut is not None:
            batches_in.append(("shortened", cut))
            break
    checks = [(label, inp, _outputs(spec.module, inp)) for label, inp in batches_in]

    path = Path(out) if out else run_dir / EXPORT_DIR
    if path.is_dir() or out is None:  # a folder: NAME.onnx inside it
        path = path / f"{spec.name}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    order = EXPORTERS if exporter == "auto" else (exporter,)
    tried: list[dict[str, Any]] = []
    for k, name in enumerate(order):
        stage(f"exporting ({name})")
        attempt = _attempt(name, spec, checks, path, opset, ort, on_check)
        tried.append(attempt)
        worst, scale = attempt.get("max_abs_diff"), attempt.get("scale", 0.0)
        if worst is not None and worst <= atol * max(1.0, scale):
            break
        if k + 1 < len(order):
            why = attempt.get("error") or f"max abs diff {worst:.3g}"
            stage(f"{name}: {why}; trying {order[k + 1]}")
    ran = [t for t in tried if t.get("max_abs_diff") is not None]
    written = [t for t in tried if "graph" in t]
    if not written:
        why = "; ".join(f"{t['exporter']}: {t['error'][:160]}" for t in tried)
        raise ModelError(f"{type(model).__name__} cannot be exported to ONNX ({why})")
    best = min(ran, key=lambda t: t["max_abs_diff"]) if ran else written[0]
    if best is not written[-1]:  # a later exporter's file replaced it: write it again
        _attempt(best["exporter"], spec, checks, path, opset, ort, None)
    worst, scale = best.get("max_abs_diff"), best.get("scale", 0.0)
    limit = atol * max(1.0, scale)
    ok = worst is not None and worst <= limit
    return {
        "run": run_dir.name,
        "model": cfg.model.name,
        "exported": spec.name,
        "onnx": str(path),
        "size_bytes": path.stat().st_size if path.is_file() else None,
        "opset": opset,
        "exporter": best["exporter"],
        "tried": [
            {
                "exporter": t["exporter"],
                "error": t.get("error"),
                "max_abs_diff": t.get("max_abs_diff"),
            }
            for t in tried
        ],
        "graph": best.get("graph"),
        "dynamic_axes": {
            k: {str(a): v for a, v in ax.items()} for k, ax in spec.dynamic_axes.items()
        },
        "checks": best.get("checks", []),
        "max_abs_diff": worst,
        "scale": scale,
        "atol": atol,
        "limit": limit,
        "ok": bool(ok),
        "error": None if ok else best.get("error"),
    }
