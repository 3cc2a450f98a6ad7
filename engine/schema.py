"""What a run folder's records hold, field by field: run.json, the rows of metrics.jsonl
and of system.jsonl, and a split's figures (eval/report.json, eval rows).

Each record is a dataclass whose fields name every key a writer may put in it, with its
type and meaning; ``always`` marks the keys every record of that kind carries. The
writers in :mod:`engine.runs` check what they write against these classes (an unknown key
or a value of the wrong type is a programming error: :class:`SchemaError`), and the
tolerant readers there and the TUI take their key lists from here, so a key renamed in one
place fails a test instead of vanishing from a screen. Every value may be null (a figure
that is undefined, a field cleared). No torch, no I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# statuses an engine or launcher records, and the one viewers add for a damaged run.json
RECORDED_STATUSES = ("starting", "running", "finished", "failed", "stopped", "pruned", "lost")
STATUSES = (*RECORDED_STATUSES, "unreadable")
ACTIVE = ("running", "starting")
RESUMABLE = ("stopped", "pruned", "failed", "lost")

#: RUN/stop_request.json: why a stop was asked for, written by the launcher just before it
#: signals the engine (``{"reason": "pruned"}`` from a search's pruner); the engine then ends
#: with that status instead of ``stopped``. Absent for a plain `slr stop`.
STOP_REQUEST = "stop_request.json"
STOP_REASONS = ("pruned",)


LOWER_IS_BETTER = ("loss", "wer")  # metric name endings where smaller is better


def lower_is_better(metric: str) -> bool:
    """``val_loss``, ``train_loss``, ``val_wer``: smaller is better; anything else larger."""
    return metric.endswith(LOWER_IS_BETTER)


class SchemaError(ValueError):
    """A record that does not fit its schema: a writer's bug, not a damaged file."""


def _field(doc: str, *, always: bool = False, choices: tuple[str, ...] = ()) -> Any:
    return dataclasses.field(
        default=None, metadata={"doc": doc, "always": always, "choices": choices}
    )


#: the record classes are never instantiated: only their fields are read, so no __init__,
#: __repr__ or __eq__ is generated for them (that code generation cost ~10 ms of every start)
_record = dataclass(init=False, repr=False, eq=False, match_args=False)


# --------------------------------------------------------------------------- run.json


@_record
class RunMeta:
    """run.json: the run's identity, status and progress, rewritten atomically as it goes."""

    id: str | None = _field("the run folder's name, YYYYMMDD-HHMMSS-<preset>", always=True)
    status: str | None = _field(
        "where the run stands (viewers show 'lost' for an active run whose process is gone)",
        always=True,
        choices=RECORDED_STATUSES,
    )
    preset: str | None = _field("the config's name (the preset it came from)", always=True)
    dataset: str | None = _field("the dataset's label, as the config names it", always=True)
    host: str | None = _field("the machine the engine runs on", always=True)
    pid: int | None = _field("the engine's process id while it works on the run, else null")
    pgid: int | None = _field("the engine's process group: what `slr stop --force` kills")
    started_at: float | None = _field("when the run first started (Unix seconds)", always=True)
    updated_at: float | None = _field("when run.json was last written (Unix seconds)")
    ended_at: float | None = _field("when the last session ended; null while one is open")
    active_s: float | None = _field(
        "seconds of the closed sessions (a resumed run's idle gap is left out)"
    )
    session_started_at: float | None = _field("when the open session started; null when none is")
    error: str | None = _field("one line saying why the run failed; null otherwise")
    stop_reason: str | None = _field(
        "why training ended: max_epochs, early_stopping, target_metric or pruned"
    )
    lost_reason: str | None = _field(
        "why the run was marked lost (its pid was gone or another program's)"
    )
    lost_at: float | None = _field("when the run was marked lost (Unix seconds)")
    max_epochs: int | None = _field("the epochs the run trains for at most", always=True)
    epoch: int | None = _field("completed epochs")
    step: int | None = _field("optimiser steps done, over all epochs")
    steps_per_epoch: int | None = _field("optimiser steps in one epoch")
    passes_per_epoch: int | None = _field(
        "passes over the training split in one epoch (>1 for a small split)"
    )
    monitor: str | None = _field("the epoch-row figure that picks best.pt (e.g. val_acc)")
    monitor_mode: str | None = _field("'max' or 'min': which way the monitor improves")
    best_metric: float | None = _field("the monitor's best value so far")
    best_epoch: int | None = _field("the epoch that gave best_metric (best.pt's epoch)")
    best_val_acc: float | None = _field("the best validation accuracy, whatever the monitor")
    last_metrics: dict[str, Any] | None = _field("the latest epoch row, without t and kind")
    results: dict[str, Any] | None = _field(
        "per split, best.pt's accuracy, top5_accuracy, per_class_accuracy and macro_f1 "
        "(translation: bleu4, chrf, wer and nll, greedy)"
    )
    device: str | None = _field("the torch device the engine trains on (cpu, cuda:0)")
    world_size: int | None = _field("training processes (one per GPU with --gpus N)")
    mixed_precision: str | None = _field("no, fp16 or bf16")
    threads: dict[str, Any] | None = _field("the CPU thread budget (engine.threads.apply_budget)")
    num_classes: int | None = _field("classes the model tells apart")
    num_params: int | None = _field("the model's parameter count")
    data_info: dict[str, Any] | None = _field(
        "the data's root, per-split counts, missing and unreadable files"
    )
    sweep: str | None = _field("the sweep this run belongs to (`slr sweep`)")
    sweep_params: dict[str, Any] | None = _field(
        "the config keys this sweep member set, and their values"
    )
    study: str | None = _field("the Optuna study this run is a trial of (`slr sweep --search`)")
    trial: int | None = _field("the run's trial number in its study")
    study_storage: str | None = _field(
        "where the study lives: its journal file, or its RDB URL without the password"
    )
    launcher: str | None = _field(
        "how the engine was started: local (a process here), slurm (a submitit job), or "
        "local-submitit (submitit's local executor: a test aid)",
        choices=("local", "slurm", "local-submitit"),
    )
    slurm_job_id: str | None = _field("the SLURM job running the engine (what `slr stop` cancels)")


# --------------------------------------------------------------------------- notes.json

#: RUN/notes.json: the run's tags and note. People's tools write it (`slr tag`, `slr note`,
#: the runs screen), never the engine: the engine rewrites run.json all through a run
#: (read, merge, rename), so a field another process wrote into run.json between the
#: engine's read and its rename would be lost; a file of its own is never rewritten by it.
NOTES_JSON = "notes.json"
#: the run store's folders that are not runs: deleted runs (``slr rm``, kept until emptied
#: by hand) and archived ones (``slr archive``); run listings leave both out unless asked
TRASH_DIR = ".trash"
ARCHIVE_DIR = "archive"


@_record
class RunNotes:
    """notes.json: labels and free text a person gave the run (written atomically, under a
    lock on the run folder, by :func:`engine.runs.update_notes`)."""

    tags: list[str] | None = _field("short labels (baseline, ablation-3): letters, digits, ._-")
    note: str | None = _field("free text about the run")
    updated_at: float | None = _field("when notes.json was last written (Unix seconds)")


def check_notes(fields: Mapping[str, Any]) -> None:
    """notes.json fields a writer is about to record."""
    check(RunNotes, fields, "notes.json")


# --------------------------------------------------------------------------- a split's figures


@_record
class SplitFigures:
    """The figures of one evaluated split (engine.evaluate.summarize): report.json's "val"
    and "test", and the eval rows of metrics.jsonl. Undefined figures are null."""

    num_samples: int | None = _field("samples in the split", always=True)
    num_classes: int | None = _field("classes the model tells apart", always=True)
    num_classes_present: int | None = _field(
        "classes with at least one sample in the split", always=True
    )
    accuracy: float | None = _field("share of samples whose top class is right", always=True)
    top5_accuracy: float | None = _field(
        "share whose class is among the top 5 (k capped at C)", always=True
    )
    top10_accuracy: float | None = _field(
        "share whose class is among the top 10 (k capped at C)", always=True
    )
    per_class_accuracy: float | None = _field(
        "mean recall over the classes present (WLASL's figure)", always=True
    )
    macro_precision: float | None = _field("precision averaged over all classes", always=True)
    macro_recall: float | None = _field("recall averaged over all classes", always=True)
    macro_f1: float | None = _field("F1 averaged over all classes", always=True)
    weighted_f1: float | None = _field("F1 averaged over classes, weighted by support", always=True)
    nll: float | None = _field("mean log loss of the probabilities", always=True)
    roc_auc: float | None = _field("binary tasks only: ROC AUC of the positive class")
    pr_auc: float | None = _field("binary tasks only: average precision of the positive class")


@_record
class TranslationFigures:
    """The figures of a split a translation model was evaluated on
    (engine.translation_eval): report.json's "val"/"test" (greedy) and "beam" -> split, and
    the eval rows; with ``nll`` and ``num_samples`` of SplitFigures. Undefined ones are null."""

    token_accuracy: float | None = _field("teacher-forced token accuracy")
    bleu1: float | None = _field("corpus BLEU-1 of the generated sentences (0..100)")
    bleu2: float | None = _field("corpus BLEU-2 (0..100)")
    bleu3: float | None = _field("corpus BLEU-3 (0..100)")
    bleu4: float | None = _field("corpus BLEU-4 (0..100)")
    chrf: float | None = _field("chrF (sacrebleu, 0..100)")
    wer: float | None = _field("word error rate (jiwer, 0..1; lower is better)")
    num_beams: int | None = _field("beam width of the decoding (1: greedy)")


# --------------------------------------------------------------------------- metrics.jsonl


@_record
class _Row:
    t: float | None = _field("when the row was written (Unix seconds)", always=True)
    kind: str | None = _field("the row's kind: step, epoch or eval", always=True)


@_record
class StepRow(_Row):
    """A training step row, every ``training.log_every_steps`` steps and at an epoch's end."""

    epoch: int | None = _field("the epoch in progress (1-based)", always=True)
    step: int | None = _field("optimiser steps done, over all epochs", always=True)
    step_in_epoch: int | None = _field("optimiser steps done in this epoch", always=True)
    train_loss: float | None = _field("mean training loss since the previous step row", always=True)
    lr: float | None = _field("the learning rate (first parameter group)", always=True)
    samples_per_s: float | None = _field(
        "training samples per second since the previous step row, all processes", always=True
    )


@_record
class EpochRow(_Row):
    """An epoch row, after each epoch's validation (a resumed run may repeat an epoch)."""

    epoch: int | None = _field("the epoch just completed (1-based)", always=True)
    step: int | None = _field("optimiser steps done, over all epochs", always=True)
    train_loss: float | None = _field("mean training loss over the epoch", always=True)
    train_acc: float | None = _field("training accuracy over the epoch", always=True)
    val_loss: float | None = _field("validation log loss (nll)", always=True)
    val_acc: float | None = _field("validation accuracy", always=True)
    val_top5: float | None = _field("validation top-5 accuracy", always=True)
    val_per_class_acc: float | None = _field("validation mean per-class recall", always=True)
    val_macro_f1: float | None = _field("validation macro F1", always=True)
    val_blank_share: float | None = _field("CTC models: share of validation frames predicted blank")
    train_token_acc: float | None = _field(
        "translation: teacher-forced token accuracy over the epoch (train_acc is null)"
    )
    val_token_acc: float | None = _field("translation: validation teacher-forced token accuracy")
    val_bleu1: float | None = _field("translation: validation corpus BLEU-1, greedy (0..100)")
    val_bleu2: float | None = _field("translation: validation corpus BLEU-2, greedy (0..100)")
    val_bleu3: float | None = _field("translation: validation corpus BLEU-3, greedy (0..100)")
    val_bleu4: float | None = _field("translation: validation corpus BLEU-4, greedy (0..100)")
    val_chrf: float | None = _field("translation: validation chrF, greedy (0..100)")
    val_wer: float | None = _field("translation: validation word error rate, greedy (0..1)")
    lr: float | None = _field("the learning rate at the epoch's end", always=True)
    epoch_time_s: float | None = _field(
        "seconds of training in the epoch (validation left out)", always=True
    )
    samples_per_s: float | None = _field(
        "training samples per second over the epoch, all processes", always=True
    )
    data_wait_share: float | None = _field(
        "share of the epoch's training time spent waiting for the next batch (data loading "
        "that did not overlap the model's work; 0..1)"
    )
    sync_max_diff: float | None = _field(
        "several processes: largest gap between their parameter checksums"
    )
    best: bool | None = _field(
        "the monitor improved: this epoch's weights are best.pt", always=True
    )


@_record
class EvalRow(TranslationFigures, _Row, SplitFigures):
    """best.pt's figures on one split, one row per split when training ends."""

    split: str | None = _field("the split evaluated: val or test", always=True)
    epoch: int | None = _field("best.pt's epoch", always=True)
    step: int | None = _field("optimiser steps done when training ended", always=True)
    blank_share: float | None = _field("CTC models: share of the split's frames predicted blank")
    decoding: str | None = _field(
        "translation: how the sentences were generated", choices=("greedy", "beam")
    )


@_record
class ExamplesRow(_Row):
    """Translation: a few validation sentences, reference vs what the model wrote, after
    each epoch (greedy decoding)."""

    epoch: int | None = _field("the epoch just completed (1-based)", always=True)
    step: int | None = _field("optimiser steps done, over all epochs", always=True)
    split: str | None = _field("the split the examples come from", always=True)
    decoding: str | None = _field(
        "how the hypotheses were generated", always=True, choices=("greedy", "beam")
    )
    examples: list[dict[str, Any]] | None = _field(
        "one {id, reference, hypothesis} object per example", always=True
    )


METRIC_ROWS: dict[str, type] = {
    "step": StepRow,
    "epoch": EpochRow,
    "eval": EvalRow,
    "examples": ExamplesRow,
}


# --------------------------------------------------------------------------- system.jsonl


@_record
class GpuReading:
    """One GPU in a system row (NVML); a figure the device does not report is null."""

    index: int | None = _field("the GPU's NVML index", always=True)
    name: str | None = _field("the GPU's name", always=True)
    temp_c: float | None = _field("core temperature, °C", always=True)
    mem_used_mb: float | None = _field("memory in use on the GPU, all processes, MiB", always=True)
    mem_total_mb: float | None = _field("the GPU's memory, MiB", always=True)
    util_pct: float | None = _field("utilisation, percent", always=True)
    power_w: float | None = _field("power draw, W", always=True)


@_record
class SystemRow:
    """A telemetry sample (engine.telemetry.GpuSampler), every telemetry_interval_s."""

    t: float | None = _field("when the sample was taken (Unix seconds)", always=True)
    gpus: list[dict[str, Any]] | None = _field(
        "one GpuReading per GPU; [] without one", always=True
    )
    proc_peak_mem_mb: float | None = _field("peak CUDA memory this run's process allocated, MiB")
    error: str | None = _field("why there is no reading (no NVIDIA GPU/driver: ...)")
    # the host and the engine process (psutil; null where it cannot tell)
    cpu_percent: float | None = _field("whole-machine CPU use since the previous sample, 0-100")
    ram_used_mb: float | None = _field("machine memory in use (total - available), MiB")
    ram_total_mb: float | None = _field("machine memory, MiB")
    proc_cpu_percent: float | None = _field(
        "the engine process's CPU use since the previous sample, % of one core (can pass 100)"
    )
    proc_rss_mb: float | None = _field("the engine process's resident memory, MiB")
    disk_free_gb: float | None = _field("free space on the run folder's filesystem, GiB")


# --------------------------------------------------------------------------- field specs


@dataclass(frozen=True)
class FieldSpec:
    """One key of a record: its name, JSON type (int, float, str, bool, object, list),
    meaning, whether every record has it, and the values it may take (any when empty)."""

    name: str
    type: str
    doc: str
    always: bool
    choices: tuple[str, ...]


_TYPE_NAMES = {int: "int", float: "float", str: "str", bool: "bool", dict: "object", list: "list"}


def _json_type(hint: Any) -> str:
    """``int | None`` -> "int", ``dict[str, Any] | None`` -> "object" ..."""
    (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
    return _TYPE_NAMES[typing.get_origin(inner) or inner]


@functools.cache
def specs(record: type) -> dict[str, FieldSpec]:
    """The keys of ``record`` (one of the classes above), in declaration order."""
    hints = typing.get_type_hints(record)
    return {
        f.name: FieldSpec(
            f.name,
            _json_type(hints[f.name]),
            f.metadata["doc"],
            f.metadata["always"],
            f.metadata["choices"],
        )
        for f in dataclasses.fields(record)
    }


def keys(record: type, *names: str) -> tuple[str, ...]:
    """``names`` (all of ``record``'s keys when none are given), each checked to be one of
    its keys: a viewer's key list fails at import when the schema renames a key."""
    known = specs(record)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SchemaError(f"{record.__name__} has no key {', '.join(unknown)}")
    return names or tuple(known)


#: the host fields of a system.jsonl row: what engine.telemetry samples beside the GPUs and
#: the TUI's system panel shows
SYSTEM_HOST_KEYS = keys(
    SystemRow,
    "cpu_percent",
    "ram_used_mb",
    "ram_total_mb",
    "proc_cpu_percent",
    "proc_rss_mb",
    "disk_free_gb",
)


def keys_of_type(record: type, *types: str) -> tuple[str, ...]:
    """``record``'s keys whose JSON type is one of ``types``."""
    return tuple(n for n, s in specs(record).items() if s.type in types)


def always(record: type) -> frozenset[str]:
    """The keys every ``record`` carries."""
    return frozenset(n for n, s in specs(record).items() if s.always)


# --------------------------------------------------------------------------- checks


def _fits(kind: str, v: Any) -> bool:
    """``v`` is a value of JSON type ``kind``; numpy scalars count as numbers (the writers
    serialise them), a bool is not a number."""
    t = type(v)
    if kind == "float":
        return t is float or t is int or (isinstance(v, numbers.Real) and t is not bool)
    if kind == "int":
        return t is int or (isinstance(v, numbers.Integral) and t is not bool)
    if kind == "str":
        return t is str
    if kind == "bool":
        return t is bool
    if kind == "object":
        return isinstance(v, Mapping)
    return isinstance(v, (list, tuple))


def check(record: type, fields: Mapping[str, Any], what: str) -> None:
    """Raise :class:`SchemaError` unless every key of ``fields`` is one of ``record``'s,
    with a value of its type (or null) and one of its choices."""
    known = specs(record)
    for key, v in fields.items():
        spec = known.get(key)
        if spec is None:
            raise SchemaError(f"{what}: unknown key {key!r} (not in {record.__name__})")
        if v is None:
            continue
        if not _fits(spec.type, v):
            raise SchemaError(f"{what}: {key} is {type(v).__name__}, not {spec.type}")
        if spec.choices and v not in spec.choices:
            raise SchemaError(f"{what}: {key} is {v!r}, not one of {', '.join(spec.choices)}")


def check_run_fields(fields: Mapping[str, Any]) -> None:
    """run.json fields a writer is about to record."""
    check(RunMeta, fields, "run.json")


def check_metric_row(row: Any) -> None:
    """A metrics.jsonl row: an object of a known kind whose keys fit that kind's row."""
    if not isinstance(row, Mapping):
        raise SchemaError(f"metrics.jsonl row is {type(row).__name__}, not an object")
    record = METRIC_ROWS.get(row.get("kind"))  # type: ignore[arg-type]
    if record is None:
        kinds = ", ".join(METRIC_ROWS)
        raise SchemaError(f"metrics.jsonl row of kind {row.get('kind')!r}, not one of {kinds}")
    check(record, row, f"metrics.jsonl {row['kind']} row")


def check_system_row(row: Any) -> None:
    """A system.jsonl row and each GPU reading in it."""
    if not isinstance(row, Mapping):
        raise SchemaError(f"system.jsonl row is {type(row).__name__}, not an object")
    check(SystemRow, row, "system.jsonl row")
    for gpu in row.get("gpus") or ():
        if not isinstance(gpu, Mapping):
            raise SchemaError(f"system.jsonl GPU reading is {type(gpu).__name__}, not an object")
        check(GpuReading, gpu, "system.jsonl GPU reading")


# --------------------------------------------------------------------------- key lists for readers

# where a metrics/system row belongs in the run: integers, or a reader drops the row
ROW_POSITION = keys(StepRow, "epoch", "step", "step_in_epoch")
# every numeric figure a row may carry: a reader turns one that is not a number into null
ROW_FIGURES = frozenset(
    k
    for record in (*METRIC_ROWS.values(), SystemRow)
    for k in keys_of_type(record, "int", "float")
    if k not in ROW_POSITION
)
# a split's figures (report.json's val/test): all numbers
REPORT_FIGURES = keys(SplitFigures)
# a translation split's figures (report.json's val/test and beam of a translation run)
TRANSLATION_FIGURES = keys(TranslationFigures)
# the scores summarize computes for every split, and those only a binary task has
BINARY_SCORES = keys(SplitFigures, "roc_auc", "pr_auc")
SPLIT_SCORES = tuple(k for k in keys_of_type(SplitFigures, "float") if k not in BINARY_SCORES)
