"""GPU and host telemetry: GPUs through NVML (nvidia-ml-py, ``import pynvml``), the
machine and the engine process through psutil; no torch here.

:class:`GpuSampler` appends one JSON line per sample to ``system.jsonl``
(:class:`engine.schema.SystemRow`)::

    {"t": 1712345678.9, "gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "temp_c": 41,
      "mem_used_mb": 1234.5, "mem_total_mb": 81559.0, "util_pct": 97, "power_w": 312.4}],
     "proc_peak_mem_mb": 900.1, "cpu_percent": 38.5, "ram_used_mb": 20480.0,
     "ram_total_mb": 64000.0, "proc_cpu_percent": 250.0, "proc_rss_mb": 3100.2,
     "disk_free_gb": 120.4}

A field the device does not support (``NVMLError_NotSupported``, e.g. utilisation under
MIG) is ``null``. Without an NVIDIA GPU, driver or nvidia-ml-py, every line says
``"gpus": [], "error": "no NVIDIA GPU/driver: <reason>"``; the host fields are still sampled
(``host=False``: one such line and the thread ends). CPU percentages are over the interval
since the previous sample (the first sample's are since the sampler started). Nothing here
raises into the caller. Memory figures are MiB (as nvidia-smi shows them), disk GiB.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from engine import runs
from engine.schema import SYSTEM_HOST_KEYS as HOST_KEYS

NO_GPU_PREFIX = "no NVIDIA GPU/driver"
_MIB = 1024 * 1024


def _load_nvml() -> ModuleType:
    """Import pynvml and ``nvmlInit()``; ImportError / NVMLError (any Exception) propagate."""
    import pynvml  # looked up in sys.modules each call, so tests can substitute a fake

    pynvml.nvmlInit()
    return pynvml


def _shutdown(nv: ModuleType) -> None:
    try:
        nv.nvmlShutdown()
    except Exception:
        pass


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ImportError):
        return f"{NO_GPU_PREFIX}: nvidia-ml-py (pynvml) not importable ({exc})"
    text = str(exc).strip() or type(exc).__name__
    return f"{NO_GPU_PREFIX}: {text}"


def _field(fn: Callable[[], Any]) -> Any:
    """``fn()``, or None when NVML raises (NotSupported, NoPermission, GPU lost, ...)."""
    try:
        return fn()
    except Exception:
        return None


def _num(x: Any, scale: float = 1.0, ndigits: int = 1) -> float | None:
    if x is None:
        return None
    try:
        v = float(x) / scale
    except (TypeError, ValueError):
        return None
    return round(v, ndigits) if math.isfinite(v) else None


def _name(nv: ModuleType, h: Any) -> str | None:
    n = nv.nvmlDeviceGetName(h)
    return n.decode(errors="replace") if isinstance(n, bytes) else str(n)


def _gpu(nv: ModuleType, index: int) -> dict[str, Any]:
    """One GPU's reading; every field independently None when unavailable."""
    h = _field(lambda: nv.nvmlDeviceGetHandleByIndex(index))
    if h is None:
        return {
            "index": index,
            "name": None,
            "temp_c": None,
            "mem_used_mb": None,
            "mem_total_mb": None,
            "util_pct": None,
            "power_w": None,
        }
    mem = _field(lambda: nv.nvmlDeviceGetMemoryInfo(h))
    util = _field(lambda: nv.nvmlDeviceGetUtilizationRates(h))
    temp_sensor = getattr(nv, "NVML_TEMPERATURE_GPU", 0)
    return {
        "index": index,
        "name": _field(lambda: _name(nv, h)),
        "temp_c": _num(_field(lambda: nv.nvmlDeviceGetTemperature(h, temp_sensor)), ndigits=0),
        "mem_used_mb": _num(_field(lambda: mem.used), _MIB) if mem is not None else None,
        "mem_total_mb": _num(_field(lambda: mem.total), _MIB) if mem is not None else None,
        "util_pct": _num(_field(lambda: util.gpu), ndigits=0) if util is not None else None,
        "power_w": _num(_field(lambda: nv.nvmlDeviceGetPowerUsage(h)), 1000.0),
    }


def _gpus(nv: ModuleType) -> list[dict[str, Any]]:
    count = int(nv.nvmlDeviceGetCount())
    return [_gpu(nv, i) for i in range(count)]


def read_gpus_now() -> list[dict[str, Any]] | str:
    """A live reading of every GPU (same fields as a sample), or a one-line reason string
    (``"no NVIDIA GPU/driver: ..."``) when NVML is unavailable. Never raises."""
    try:
        nv = _load_nvml()
    except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return _reason(exc)
    try:
        return _gpus(nv)
    except Exception as exc:
        return f"GPU reading failed: {str(exc).strip() or type(exc).__name__}"
    finally:
        _shutdown(nv)


class HostReader:
    """The machine's CPU and memory, this process's CPU and resident memory (psutil, a
    dependency of accelerate) and the free space where ``disk_path`` lives. CPU figures are
    over the time since the previous :meth:`read` (or since this reader was made). A figure
    that cannot be read is None; :meth:`read` never raises."""

    def __init__(self, disk_path: Path | None = None, pid: int | None = None) -> None:
        self.disk_path = Path(disk_path) if disk_path is not None else None
        try:
            import psutil

            self._ps: Any = psutil
            self._proc: Any = psutil.Process(pid or os.getpid())
            psutil.cpu_percent(interval=None)  # the first call starts the interval
            self._proc.cpu_percent(interval=None)
        except Exception:  # psutil missing or the process gone: the figures are None
            self._ps = self._proc = None

    def read(self) -> dict[str, float | None]:
        out: dict[str, float | None] = dict.fromkeys(HOST_KEYS)
        ps, proc = self._ps, self._proc
        if ps is not None:
            out["cpu_percent"] = _num(_field(lambda: ps.cpu_percent(interval=None)))
            mem = _field(ps.virtual_memory)
            if mem is not None:
                out["ram_used_mb"] = _num(mem.total - mem.available, _MIB)
                out["ram_total_mb"] = _num(mem.total, _MIB)
        if proc is not None:
            out["proc_cpu_percent"] = _num(_field(lambda: proc.cpu_percent(interval=None)))
            out["proc_rss_mb"] = _num(_field(lambda: proc.memory_info().rss), _MIB)
        if self.disk_path is not None:
            free = _field(lambda: shutil.disk_usage(self.disk_path).free)
            out["disk_free_gb"] = _num(free, 1024.0**3, 2)
        return out


class GpuSampler:
    """Samples every GPU every ``interval_s`` seconds on a daemon thread and appends one JSON
    line per sample to ``path``. ``stop()`` takes a final sample and joins the thread.

    ``peak_mem_fn`` (optional) returns this process's peak CUDA memory in **MiB**, e.g.
    ``lambda: torch.cuda.max_memory_allocated(device) / 2**20`` (it is called on the sampler
    thread, so name the device); it is written as ``proc_peak_mem_mb`` (None when it returns
    None or raises).

    ``host`` (default on) adds the machine's and this process's CPU and memory and the free
    disk space of ``path``'s folder to every line (:class:`HostReader`); sampling then goes
    on without a GPU too.

    Usable as a context manager::

        with GpuSampler(run_dir / "system.jsonl", 5.0, peak_mem_fn=...):
            train()
    """

    def __init__(
        self,
        path: Path,
        interval_s: float = 5.0,
        peak_mem_fn: Callable[[], float | None] | None = None,
        join_timeout_s: float = 10.0,
        host: bool = True,
    ) -> None:
        self.path = Path(path)
        self.host = host
        self._host: HostReader | None = None
        self.interval_s = max(float(interval_s), 0.01)
        self.peak_mem_fn = peak_mem_fn
        self.join_timeout_s = join_timeout_s
        self.error: str | None = None  # set when NVML was unavailable or sampling failed
        self.samples = 0  # lines written
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> GpuSampler:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        if self.host and self._host is None:  # primed here: the first CPU figure is real
            self._host = HostReader(self.path.parent)
        self._thread = threading.Thread(target=self._run, name="slr-gpu-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Signal the thread, let it take a final sample, and join it (bounded wait, so a
        hung driver cannot hang the caller; the thread is a daemon)."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(self.join_timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> GpuSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- thread

    def _run(self) -> None:
        nv: ModuleType | None
        try:
            nv = _load_nvml()
        except Exception as exc:
            self.error = _reason(exc)
            if self._host is None:
                self._append({"t": time.time(), "gpus": [], "error": self.error})
                return
            nv = None  # no GPU: the host figures go on
        try:
            next_at = time.monotonic()
            while True:
                self._append(self._sample(nv))
                next_at += self.interval_s
                now = time.monotonic()
                if next_at < now:  # fell behind (slow NVML): don't burst to catch up
                    next_at = now + self.interval_s
                if self._stop.wait(next_at - now):
                    self._append(self._sample(nv))  # the final sample
                    break
        except Exception as exc:  # never let telemetry take the run down
            self.error = f"GPU sampling failed: {str(exc).strip() or type(exc).__name__}"
            self._append({"t": time.time(), "gpus": [], "error": self.error})
        finally:
            if nv is not None:
                _shutdown(nv)

    def _sample(self, nv: ModuleType | None) -> dict[str, Any]:
        rec: dict[str, Any] = {"t": time.time()}
        if nv is None:
            rec["gpus"] = []
            rec["error"] = self.error
        else:
            try:
                rec["gpus"] = _gpus(nv)
            except Exception as exc:
                rec["gpus"] = []
                rec["error"] = f"GPU reading failed: {str(exc).strip() or type(exc).__name__}"
            rec["proc_peak_mem_mb"] = self._peak_mb()
        if self._host is not None:
            rec.update(self._host.read())
        return rec

    def _peak_mb(self) -> float | None:
        if self.peak_mem_fn is None:
            return None
        return _num(_field(self.peak_mem_fn))

    def _append(self, rec: dict[str, Any]) -> None:
        """One row through the run folder's writer (one ``write`` of whole lines, checked
        against the schema; NaN becomes null). A failed write loses one sample, not the
        run."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            runs.append_jsonl(self.path, rec)
            self.samples += 1
        except OSError:
            pass
