"""Optuna studies (``slr sweep --search optuna``): search spaces, storages, samplers and
pruners, and the loop that runs the trials. No torch here, and optuna only inside functions:
it is optional (``pip install 'slr-tui[search]'``).

Each trial is a normal run (:func:`slr_tui.launch.start_run`, or a SLURM job through
:func:`slr_tui.launch.start_slurm_run`) with the trial's parameters as ``--set`` overrides,
tagged in run.json with the study (``study``, also ``sweep``) and the trial number
(``trial``); the trial's value is the run's best monitored figure (``best_metric``). While
a trial runs its epoch rows are read as they come (:class:`engine.runs.JsonlTail`) and
reported to Optuna; when the pruner says so the run is stopped the way ``slr stop`` stops it,
with the reason ``pruned`` (the engine ends with that status, last.pt kept).

The trials are asked for one at a time (Optuna's ask-and-tell interface): the storage gives
trial numbers in order across every process and machine sharing it, so a study of N trials
runs trials 0..N-1 exactly once however many workers join (a worker that is handed number N
or more marks it failed with the user attribute ``surplus`` and stops; viewers leave those
out). The grid sampler maps trial number k to grid point k: the same combinations as
``--grid``.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import runs, threads
from engine.errors import ConfigError
from engine.schema import lower_is_better
from slr_tui import launch

if TYPE_CHECKING:
    from engine.config import RunConfig
    from slr_tui.slurm import SlurmOptions

INSTALL_HINT = "pip install 'slr-tui[search]'"
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "hyperband")
KINDS = ("loguniform", "uniform", "int", "choice")
STUDIES_DIR = "studies"  # RUNS/studies/NAME.journal: the default storage
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SURPLUS = "surplus"  # user attribute of a trial asked for past the study's budget


def require_optuna() -> Any:
    """The optuna module, or ConfigError (one line) saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(f"--search optuna needs optuna: {INSTALL_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# --------------------------------------------------------------------------- spaces


@dataclass(frozen=True)
class Param:
    """One dimension of a search space: a config key and how its values are drawn."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple[str, ...] = ()

    def suggest(self, trial: Any) -> str:
        """Draw this parameter for ``trial``; the value as a ``--set`` string."""
        if self.kind == "loguniform":
            return fmt_value(trial.suggest_float(self.key, self.low, self.high, log=True))
        if self.kind == "uniform":
            return fmt_value(trial.suggest_float(self.key, self.low, self.high))
        if self.kind == "int":
            return str(trial.suggest_int(self.key, self.low, self.high))
        return str(trial.suggest_categorical(self.key, list(self.choices)))

    def probes(self) -> list[str]:
        """Values that validate the space before anything starts: both ends, every choice."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return [str(self.low), str(self.high)]
        return [fmt_value(float(self.low)), fmt_value(float(self.high))]  # type: ignore[arg-type]

    def describe(self) -> str:
        if self.kind == "choice":
            return f"{self.key}=choice:{','.join(self.choices)}"
        return f"{self.key}={self.kind}:{self.low:g}:{self.high:g}"


def fmt_value(v: float) -> str:
    """A float as a --set value, exactly (``repr``: 1e-05, 0.00012345678)."""
    return repr(float(v))


def _number(text: str, what: str, *, integer: bool = False) -> float | int:
    try:
        v = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{what}: '{text}' is not {kind}") from None
    if not integer and not math.isfinite(v):
        raise ConfigError(f"{what}: '{text}' is not a finite number")
    return v


def parse_spec(key: str, spec: str) -> Param:
    """``loguniform:1e-5:1e-3``, ``uniform:0:0.5``, ``int:2:8`` or ``choice:8,12,16`` for the
    config key ``key`` (``section.key``). ConfigError (one line) for anything else."""
    key, spec = key.strip(), str(spec).strip()
    what = f"--space {key}={spec}"
    if "." not in key or not key.split(".")[0] or not key.split(".")[-1]:
        raise ConfigError(f"{what}: the key must be section.key (e.g. optim.lr)")
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise ConfigError(
            f"{what}: expected loguniform:LOW:HIGH, uniform:LOW:HIGH, int:LOW:HIGH or "
            "choice:V1,V2,..."
        )
    if kind == "choice":
        values = tuple(v.strip() for v in rest.split(",") if v.strip())
        if not values:
            raise ConfigError(f"{what}: choice needs at least one value (choice:8,12,16)")
        if len(set(values)) != len(values):
            raise ConfigError(f"{what}: a choice is given twice")
        return Param(key, kind, choices=values)
    parts = rest.split(":")
    if len(parts) != 2:
        raise ConfigError(f"{what}: expected {kind}:LOW:HIGH")
    integer = kind == "int"
    low, high = (_number(p.strip(), what, integer=integer) for p in parts)
    if low >= high:
        raise ConfigError(f"{what}: LOW must be below HIGH")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{what}: loguniform needs LOW > 0")
    return Param(key, kind, low=low, high=high)


def parse_space(items: list[str]) -> list[Param]:
    """``--space key=spec`` items (repeatable)."""
    out: list[Param] = []
    for item in items:
        key, sep, spec = item.partition("=")
        if not sep:
            raise ConfigError(f"--space '{item}': expected section.key=KIND:... (see --help)")
        _add(out, parse_spec(key, spec))
    return out


def _add(out: list[Param], p: Param) -> None:
    if any(q.key == p.key for q in out):
        raise ConfigError(f"--space: '{p.key}' is given twice")
    out.append(p)


def load_space_file(path: str | Path) -> list[Param]:
    """A YAML mapping of config keys to specs: a spec string (``optim.lr: loguniform:1e-5:1e-3``),
    a list (a choice), or a mapping ``{type: int, low: 2, high: 8}`` /
    ``{type: choice, values: [8, 12]}``. ConfigError (one line) when unreadable."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--space-file {p}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"--space-file {p}: not valid YAML ({line})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"--space-file {p}: expected a mapping of section.key: spec")
    out: list[Param] = []
    for key, spec in data.items():
        key = str(key)
        if isinstance(spec, list):
            spec = "choice:" + ",".join(str(v) for v in spec)
        elif isinstance(spec, dict):
            kind = str(spec.get("type") or spec.get("kind") or "")
            if kind == "choice":
                values = spec.get("values", spec.get("choices"))
                if not isinstance(values, list):
                    raise ConfigError(f"--space-file {p}: {key}: choice needs a list of values")
                spec = "choice:" + ",".join(str(v) for v in values)
            else:
                spec = f"{kind}:{spec.get('low')}:{spec.get('high')}"
        elif not isinstance(spec, str):
            raise ConfigError(f"--space-file {p}: {key}: expected a spec string, list or mapping")
        try:
            _add(out, parse_spec(key, spec))
        except ConfigError as exc:
            raise ConfigError(f"--space-file {p}: {exc}") from None
    return out


def grid_space(grid_items: list[str]) -> list[Param]:
    """``--grid key=v1,v2`` items as choice parameters (for ``--sampler grid``)."""
    from slr_tui import sweep as sw

    return [Param(k, "choice", choices=tuple(vals)) for k, vals in sw.parse_grid(grid_items)]


# --------------------------------------------------------------------------- storage, study


def check_study_name(name: str) -> str:
    if not STUDY_NAME.match(name):
        raise ConfigError(
            f"--study '{name}': use letters, digits, '.', '_' and '-' (it names a file)"
        )
    return name


def new_study_name(preset: str) -> str:
    return "study-" + runs.new_run_id(preset)


def default_journal(runs_root: Path, study: str) -> Path:
    return Path(runs_root) / STUDIES_DIR / f"{study}.journal"


def storage_label(spec: str | None, runs_root: Path, study: str) -> str:
    """What ``--storage`` means, as a user reads it: the journal file or the URL."""
    kind, target = _storage_target(spec, runs_root, study)
    return str(target) if kind == "journal" else _hide_password(str(target))


def _storage_target(spec: str | None, runs_root: Path, study: str) -> tuple[str, str | Path]:
    if spec is None or not spec.strip():
        return "journal", default_journal(runs_root, study)
    spec = spec.strip()
    if spec.startswith("journal:"):
        rest = spec[len("journal:") :]
        if not rest:
            raise ConfigError("--storage journal:PATH needs a path")
        return "journal", Path(rest).expanduser()
    if "://" in spec:
        return "rdb", spec
    return "journal", Path(spec).expanduser()


def storage_ref(spec: str | None, runs_root: Path, study: str) -> str:
    """What run.json records as the study's storage (``study_storage``) for viewers to
    find it again: the journal file's absolute path, or the URL without its password (a
    database client then reads it from its own files, e.g. ~/.pgpass)."""
    kind, target = _storage_target(spec, runs_root, study)
    if kind == "journal":
        return str(Path(target).resolve())
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1@", str(target))


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def open_storage(spec: str | None, runs_root: Path, study: str, *, create: bool = True) -> Any:
    """The Optuna storage ``--storage`` names: an RDB URL (``postgresql://...``,
    ``mysql://...``, ``sqlite:///...``), or a journal file (``journal:PATH`` or a path;
    default RUNS/studies/STUDY.journal) through ``JournalStorage`` + ``JournalFileBackend``
    (safe on NFS: its lock is a symlink). ``create=False``: a journal file that does not
    exist is ConfigError (reading a study must not make one)."""
    optuna = require_optuna()
    kind, target = _storage_target(spec, runs_root, study)
    if kind == "rdb":
        try:
            return optuna.storages.RDBStorage(str(target))
        except Exception as exc:  # noqa: BLE001 - a driver missing, a refused connection
            line = str(exc).strip().splitlines()
            raise ConfigError(
                f"--storage {_hide_password(str(target))}: "
                f"{line[0] if line else type(exc).__name__}"
            ) from None
    path = Path(target)
    if not create and not path.is_file():
        raise ConfigError(f"no study journal at {path} (give --storage, or --runs-dir)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--storage {path}: {exc.strerror or exc}") from None
    journal = optuna.storages.journal
    backend_cls = getattr(journal, "JournalFileBackend", None)
    if backend_cls is None:  # optuna < 4
        return optuna.storages.JournalStorage(optuna.storages.JournalFileStorage(str(path)))
    return optuna.storages.JournalStorage(backend_cls(str(path)))


def monitor_of(cfg: RunConfig) -> tuple[str, str]:
    """``(metric, "maximize"|"minimize")``: the figure the config's runs pick best.pt by
    (``training.monitor``; translation runs' default is val_loss) and its direction."""
    metric = cfg.training.monitor
    with contextlib.suppress(Exception):
        if runs.translation_config(cfg.to_dict()):
            metric = runs.translation_monitor(metric)
    mode = cfg.training.monitor_mode
    if mode == "auto":
        mode = "min" if lower_is_better(metric) else "max"
    return metric, "minimize" if mode == "min" else "maximize"


def make_sampler(name: str, space: list[Param], seed: int | None) -> Any:
    optuna = require_optuna()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        if not space or any(p.kind != "choice" for p in space):
            raise ConfigError("--sampler grid needs --grid key=v1,v2 (or only choice: spaces)")
        return _grid_sampler(optuna)({p.key: list(p.choices) for p in space}, seed=seed)
    raise ConfigError(f"--sampler must be one of {', '.join(SAMPLERS)}, not '{name}'")


def _grid_sampler(optuna: Any) -> type:
    """Optuna's GridSampler without its ``study.stop()`` once the grid is done (that works
    only inside ``study.optimize``; here trials are asked for, and the grid is done when
    the study has as many trials as points: trial k is point k)."""

    class AskTellGridSampler(optuna.samplers.GridSampler):
        def after_trial(self, study, trial, state, values) -> None:  # noqa: ANN001
            return None

    return AskTellGridSampler


def make_pruner(name: str, *, startup: int, warmup: int, max_epochs: int) -> Any:
    optuna = require_optuna()
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, max_epochs))
    raise ConfigError(f"--pruner must be one of {', '.join(PRUNERS)}, not '{name}'")


def grid_size(space: list[Param]) -> int:
    n = 1
    for p in space:
        n *= len(p.choices)
    return n


# --------------------------------------------------------------------------- the trials


@dataclass
class TrialRun:
    """One trial this process runs: the Optuna trial, its run and how it stands."""

    number: int
    params: dict[str, str]
    trial: Any = None
    run_dir: Path | None = None
    proc: Any = None
    gpu: int | None = None
    cores: list[int] | None = None
    tail: runs.JsonlTail | None = None
    reported: set[int] = field(default_factory=set)
    pruning: bool = False
    state: str = "running"  # running, complete, pruned, fail
    value: float | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None

    @property
    def run_id(self) -> str | None:
        return self.run_dir.name if self.run_dir is not None else None


@dataclass
class Search:
    """A study and how this process takes part in it."""

    study: Any
    name: str
    space: list[Param]
    preset: str | None
    config_file: str | Path | None
    sets: list[str]
    extra: dict[str, Any]
    runs_root: Path
    n_trials: int
    metric: str
    parallel: int = 1
    slurm: SlurmOptions | None = None
    procs: int = 1
    storage: str | None = None  # run.json's study_storage (storage_ref)
    members: list[TrialRun] = field(default_factory=list)
    interrupted: bool = False
    exhausted: bool = False
    error: str | None = None  # why this worker stopped asking for trials (ConfigError)

    @property
    def direction(self) -> str:
        return "minimize" if self.study.direction.name == "MINIMIZE" else "maximize"

    def trial_config(self, params: dict[str, str]) -> RunConfig:
        from engine import config as cfgmod

        sets = [*self.sets, *(f"{k}={v}" for k, v in params.items())]
        cfg = cfgmod.resolve(
            preset=self.preset, config_file=self.config_file, sets=sets, extra=self.extra
        )
        launch.check_data_root(cfg)
        return cfg


def validate_space(
    space: list[Param],
    preset: str | None,
    config_file: str | Path | None,
    sets: list[str],
    extra: dict[str, Any],
) -> RunConfig:
    """Resolve the config at each end of every parameter (and each choice): a key the
    config lacks or a value it refuses is ConfigError before anything starts. The base
    config (the first probe's)."""
    from engine import config as cfgmod

    base = cfgmod.resolve(preset=preset, config_file=config_file, sets=sets, extra=extra)
    launch.check_data_root(base)
    for p in space:
        for v in p.probes():
            try:
                cfgmod.resolve(
                    preset=preset,
                    config_file=config_file,
                    sets=[*sets, f"{p.key}={v}"],
                    extra=extra,
                )
            except ConfigError as exc:
                raise ConfigError(f"--space {p.key}: {exc}") from None
    return base


def open_study(
    name: str,
    storage: Any,
    *,
    direction: str,
    sampler: Any,
    pruner: Any,
    attrs: dict[str, Any],
) -> Any:
    """Create the study, or join it when it exists (another box, an earlier call); a
    study that optimises the other way is ConfigError."""
    optuna = require_optuna()
    try:
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction=direction,
            load_if_exists=True,
        )
    except ValueError as exc:
        raise ConfigError(f"study {name}: {str(exc).splitlines()[0]}") from None
    have = "minimize" if study.direction.name == "MINIMIZE" else "maximize"
    if have != direction:
        raise ConfigError(f"study {name} exists and {have}s; this call would {direction}")
    for key, value in attrs.items():
        if key not in study.user_attrs:
            study.set_user_attr(key, value)
    return study


def budget_reached(search: Search) -> bool:
    trials = search.study.get_trials(deepcopy=False)
    return sum(1 for t in trials if not t.user_attrs.get(SURPLUS)) >= search.n_trials


def _ask(search: Search) -> TrialRun | None:
    """The next trial of the study, or None (and ``exhausted``) past its budget."""
    optuna = require_optuna()
    if budget_reached(search):
        search.exhausted = True
        return None
    trial = search.study.ask()
    if trial.number >= search.n_trials:  # another worker took the last one meanwhile
        trial.set_user_attr(SURPLUS, True)
        search.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        search.exhausted = True
        return None
    try:
        params = {p.key: p.suggest(trial) for p in search.space}
    except ValueError as exc:  # a space that differs from the one the study was run with
        trial.set_user_attr("error", str(exc)[:500])
        search.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        search.exhausted = True
        line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        search.error = f"study {search.name}: this --space does not match the study's ({line})"
        return None
    return TrialRun(number=trial.number, params=params, trial=trial)


class LaunchError(ConfigError):
    """A trial's run could not be started (a job refused): the next would not be either."""


def _start(search: Search, m: TrialRun, env: dict[str, str] | None) -> None:
    tags = {
        "study": search.name,
        "trial": m.number,
        "sweep": search.name,
        "sweep_params": dict(m.params),
    }
    if search.storage:
        tags["study_storage"] = search.storage
    cfg = search.trial_config(m.params)  # a ConfigError here is this trial's alone
    try:
        if search.slurm is not None:
            handle = launch.start_slurm_run(
                cfg, search.runs_root, search.slurm, tags=tags, procs=search.procs
            )
        else:
            handle = launch.start_run(cfg, search.runs_root, tags=tags, env=env)
    except ConfigError as exc:
        raise LaunchError(str(exc)) from None
    m.run_dir, m.proc = handle.run_dir, handle.proc
    m.tail = runs.JsonlTail(m.run_dir / runs.METRICS)
    m.trial.set_user_attr("run_id", m.run_dir.name)
    m.trial.set_user_attr("host", runs.hostname())
    m.trial.set_user_attr("run_dir", str(m.run_dir))


def _tell(search: Search, m: TrialRun, state: str, value: float | None = None) -> None:
    optuna = require_optuna()
    states = optuna.trial.TrialState
    m.state, m.value, m.ended = state, value, time.time()
    if m.error:
        with contextlib.suppress(Exception):
            m.trial.set_user_attr("error", m.error[:500])
    if state == "complete":
        search.study.tell(m.trial, value)
    elif state == "pruned":
        search.study.tell(m.trial, state=states.PRUNED)
    else:
        search.study.tell(m.trial, state=states.FAIL)


def _report(search: Search, m: TrialRun, prune: bool) -> None:
    """Report the new epoch rows; ask the run to stop (reason pruned) when Optuna says so."""
    assert m.tail is not None and m.run_dir is not None
    metric = runs.read_meta(m.run_dir).get("monitor") or search.metric
    for row in m.tail.read_new():
        if row.get("kind") != "epoch":
            continue
        value, epoch = row.get(metric), row.get("epoch")
        if not isinstance(epoch, int) or epoch in m.reported:
            continue
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        m.trial.report(float(value), epoch)
        m.reported.add(epoch)
        if prune and not m.pruning and not search.interrupted and m.trial.should_prune():
            m.pruning = True
            with contextlib.suppress(runs.RunError, OSError):
                launch.stop_run(runs.load_run(m.run_dir), reason="pruned")


def run_value(info: runs.RunInfo, metric: str, direction: str) -> float | None:
    """The run's best monitored figure: run.json's best_metric, else the best of its
    epoch rows (metrics.jsonl)."""
    v = info.best_metric
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    vals = [
        float(r[metric])
        for r in info.metrics()
        if r.get("kind") == "epoch" and isinstance(r.get(metric), (int, float))
    ]
    vals = [x for x in vals if math.isfinite(x)]
    if not vals:
        return None
    return min(vals) if direction == "minimize" else max(vals)


def _finish(search: Search, m: TrialRun) -> None:
    """The trial's run has ended: tell the study how."""
    assert m.run_dir is not None
    launch.settle(m.run_dir, m.proc.returncode)
    _report(search, m, prune=False)  # the last rows
    info = runs.load_run(m.run_dir)
    status = info.raw_status
    if status == "finished":
        value = run_value(info, search.metric, search.direction)
        if value is None:
            m.error = f"run {info.id} finished without a {search.metric} figure"
            _tell(search, m, "fail")
        else:
            _tell(search, m, "complete", value)
    elif status == "pruned" or (m.pruning and status == "stopped"):
        _tell(search, m, "pruned")
    else:
        m.error = m.error or info.meta.get("error") or f"run {info.id} ended {status}"
        _tell(search, m, "fail")


def execute(
    search: Search,
    prune: bool = True,
    on_update: Callable[[Search], None] | None = None,
    poll_s: float = 0.5,
) -> Search:
    """Run trials until the study has its ``n_trials`` (counting every worker's), at most
    ``parallel`` at a time here (one GPU each when there are several; the cores split as
    :func:`slr_tui.sweep.execute` splits them). A Ctrl-C stops the running trials the way
    ``slr stop`` does, waits for them and marks them failed (``interrupted``); then
    KeyboardInterrupt is raised again."""
    from slr_tui import sweep as sw

    local = search.slurm is None
    parallel = search.parallel
    n_gpu = sw.gpu_count() if local and parallel > 1 else 0
    core_groups = threads.split_cores(threads.available_cores(), parallel)
    free_gpus = list(range(n_gpu))
    active: list[TrialRun] = []
    while True:
        try:
            while not search.interrupted and not search.exhausted and len(active) < parallel:
                m = _ask(search)
                if m is None:
                    break
                search.members.append(m)
                env = (
                    sw.claim_slot(m, active, core_groups, free_gpus, parallel)
                    if local and parallel > 1
                    else None
                )
                try:
                    _start(search, m, env)
                except (ConfigError, runs.WriteError, OSError) as exc:
                    m.error = str(exc)
                    if m.gpu is not None:
                        free_gpus.append(m.gpu)
                    _tell(search, m, "fail")
                    if isinstance(exc, (OSError, LaunchError)):  # a full disk, a refused
                        search.exhausted = True  # job: the next trial would fail the same
                    continue
                active.append(m)
            for m in list(active):
                _report(search, m, prune)
                if m.proc.poll() is not None:
                    _finish(search, m)
                    active.remove(m)
                    if m.gpu is not None:
                        free_gpus.append(m.gpu)
            if on_update:
                on_update(search)
            if not active and (search.exhausted or search.interrupted):
                break
            time.sleep(poll_s)
        except KeyboardInterrupt:
            if search.interrupted:  # a second Ctrl-C: they are stopping already
                continue
            search.interrupted = True
            for m in search.members:
                if m.state != "running":
                    continue
                m.error = "interrupted (Ctrl-C)"
                if m.proc is None:  # asked for, not started: nothing runs
                    _tell(search, m, "fail")
                    continue
                if m not in active:  # started just as the Ctrl-C came
                    active.append(m)
                with contextlib.suppress(runs.RunError, OSError):
                    launch.stop_run(runs.load_run(m.run_dir))
    if on_update:
        on_update(search)
    if search.interrupted:
        raise KeyboardInterrupt
    if search.error:
        raise ConfigError(search.error)
    return search


# --------------------------------------------------------------------------- results


def load_study(name: str, storage: Any) -> Any:
    optuna = require_optuna()
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise ConfigError(f"no study '{name}' in that storage") from None


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """The study's trials, best first: complete ones by value (the study's direction),
    then pruned, running and failed ones by number. Surplus trials are left out."""
    minimize = study.direction.name == "MINIMIZE"
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(SURPLUS):
            continue
        duration = None
        if t.datetime_start is not None:
            end = t.datetime_complete
            if end is None and t.state.name == "RUNNING":
                end = datetime.datetime.now()  # so far
            if end is not None:
                duration = (end - t.datetime_start).total_seconds()
        last = None
        if t.intermediate_values:
            last = t.intermediate_values[max(t.intermediate_values)]
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "last_reported": last,
                "epochs_reported": len(t.intermediate_values),
                "params": dict(t.params),
                "duration_s": duration,
                "run_id": t.user_attrs.get("run_id"),
                "host": t.user_attrs.get("host"),
                "error": t.user_attrs.get("error"),
            }
        )
    order = {"complete": 0, "pruned": 1, "running": 2, "waiting": 2, "fail": 3}

    def key(r: dict[str, Any]) -> tuple:
        v = r["value"] if r["state"] == "complete" and r["value"] is not None else 0.0
        return (order.get(r["state"], 4), v if minimize else -v, r["number"])

    return sorted(rows, key=key)


def importances(study: Any) -> tuple[dict[str, float] | None, str | None]:
    """Optuna's parameter importances, or None with the reason they are skipped."""
    optuna = require_optuna()
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    names = {k for t in complete for k in t.params}
    if len(complete) < 2:
        return None, f"importances need 2 or more complete trials ({len(complete)} so far)"
    if len(names) < 2:
        return None, "importances need 2 or more parameters"
    try:
        with warnings.catch_warnings():  # "importances will be equal": the table says so
            warnings.simplefilter("ignore")
            imp = optuna.importance.get_param_importances(study)
    except Exception as exc:  # noqa: BLE001 - a degenerate study (every value the same)
        return None, f"importances could not be computed: {str(exc).splitlines()[0]}"
    return {k: float(v) for k, v in imp.items()}, None


def study_summary(study: Any) -> dict[str, Any]:
    rows = trial_rows(study)
    imp, note = importances(study)
    direction = "minimize" if study.direction.name == "MINIMIZE" else "maximize"
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    return {
        "study": study.study_name,
        "direction": direction,
        "metric": study.user_attrs.get("metric"),
        "preset": study.user_attrs.get("preset"),
        "counts": counts,
        "trials": rows,
        "importances": imp,
        "importances_note": note,
    }
