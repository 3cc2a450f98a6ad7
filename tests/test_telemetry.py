"""engine.telemetry: no-GPU behaviour, and sampling through a fake pynvml module."""

from __future__ import annotations

import json
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from engine import telemetry
from engine.telemetry import GpuSampler, read_gpus_now

MIB = 1024 * 1024


def _lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _wait_until(pred, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.01)


def _fake_nvml(
    *, init_error: str | None = None, count: int = 2, count_error: bool = False
) -> types.ModuleType:
    """A stand-in for pynvml exposing only what engine.telemetry calls. GPU 1 does not
    support power or utilisation readings (as under MIG)."""
    m = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    m.NVMLError = NVMLError
    m.NVMLError_NotSupported = NVMLError_NotSupported
    m.NVML_TEMPERATURE_GPU = 0
    m.calls = {"init": 0, "shutdown": 0, "threads": set()}

    def nvmlInit():
        m.calls["init"] += 1
        m.calls["threads"].add(threading.current_thread().name)
        if init_error:
            raise NVMLError(init_error)

    def nvmlShutdown():
        m.calls["shutdown"] += 1

    def nvmlDeviceGetCount():
        if count_error:
            raise NVMLError("GPU is lost")
        return count

    def nvmlDeviceGetHandleByIndex(i):
        return {"i": i}

    def nvmlDeviceGetName(h):
        return b"Fake H100" if h["i"] == 0 else "Fake A100"

    def nvmlDeviceGetTemperature(h, sensor):
        assert sensor == 0
        return 40 + h["i"]

    def nvmlDeviceGetMemoryInfo(h):
        return types.SimpleNamespace(used=(1000 + h["i"]) * MIB, total=80000 * MIB, free=0)

    def nvmlDeviceGetUtilizationRates(h):
        if h["i"] == 1:
            raise NVMLError_NotSupported("Not Supported")
        return types.SimpleNamespace(gpu=97, memory=50)

    def nvmlDeviceGetPowerUsage(h):
        if h["i"] == 1:
            raise NVMLError_NotSupported("Not Supported")
        return 312_400  # milliwatts

    for fn in [
        nvmlInit,
        nvmlShutdown,
        nvmlDeviceGetCount,
        nvmlDeviceGetHandleByIndex,
        nvmlDeviceGetName,
        nvmlDeviceGetTemperature,
        nvmlDeviceGetMemoryInfo,
        nvmlDeviceGetUtilizationRates,
        nvmlDeviceGetPowerUsage,
    ]:
        setattr(m, fn.__name__, fn)
    return m


def _real_nvml_available() -> bool:
    return isinstance(read_gpus_now(), list)


# --------------------------------------------------------------------------- no GPU


@pytest.mark.skipif(_real_nvml_available(), reason="this machine has an NVIDIA GPU")
def test_no_gpu_here_writes_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "system.jsonl"
    s = GpuSampler(path, interval_s=0.05, host=False).start()
    _wait_until(lambda: not s.running)
    s.stop()
    s.stop()  # idempotent
    lines = _lines(path)
    assert len(lines) == 1
    assert lines[0]["gpus"] == [] and lines[0]["error"].startswith("no NVIDIA GPU/driver: ")
    assert isinstance(lines[0]["t"], float)
    assert s.error == lines[0]["error"]
    reason = read_gpus_now()
    assert isinstance(reason, str) and reason.startswith("no NVIDIA GPU/driver")


def test_pynvml_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    path = tmp_path / "sys" / "system.jsonl"  # parent made on demand
    with GpuSampler(path, interval_s=0.05, host=False) as s:
        _wait_until(lambda: not s.running)
    lines = _lines(path)
    assert len(lines) == 1 and "pynvml" in lines[0]["error"]
    assert "not importable" in read_gpus_now()


def test_driver_not_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_nvml(init_error="Driver Not Loaded")
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    path = tmp_path / "system.jsonl"
    with GpuSampler(path, interval_s=0.05, host=False) as s:
        _wait_until(lambda: not s.running)
    time.sleep(0.1)
    lines = _lines(path)
    assert lines == [
        {"t": lines[0]["t"], "gpus": [], "error": "no NVIDIA GPU/driver: Driver Not Loaded"}
    ]
    assert read_gpus_now() == "no NVIDIA GPU/driver: Driver Not Loaded"


# --------------------------------------------------------------------------- fake GPUs


def test_fake_gpus_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_nvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    path = tmp_path / "system.jsonl"
    s = GpuSampler(path, interval_s=0.05, peak_mem_fn=lambda: 512.0)
    s.start()
    _wait_until(lambda: s.samples >= 3)
    before = s.samples
    s.stop()
    assert not s.running
    assert fake.calls["threads"] == {"slr-gpu-sampler"}  # NVML used on the sampler thread
    assert fake.calls["shutdown"] == 1
    lines = _lines(path)
    assert len(lines) == s.samples >= before + 1  # stop() took a final sample
    ts = [r["t"] for r in lines]
    assert ts == sorted(ts)
    for rec in lines:
        assert set(rec) == {"t", "gpus", "proc_peak_mem_mb", *telemetry.HOST_KEYS}
        assert rec["proc_peak_mem_mb"] == 512.0
        g0, g1 = rec["gpus"]
        assert g0 == {
            "index": 0,
            "name": "Fake H100",
            "temp_c": 40,
            "mem_used_mb": 1000.0,
            "mem_total_mb": 80000.0,
            "util_pct": 97,
            "power_w": 312.4,
        }
        assert g1["name"] == "Fake A100" and g1["mem_used_mb"] == 1001.0
        assert g1["power_w"] is None and g1["util_pct"] is None  # NotSupported -> None
    # samples are roughly interval apart (not a burst)
    assert lines[-2]["t"] - lines[0]["t"] >= 0.05 * (len(lines) - 2) * 0.5


def test_peak_mem_fn_failure_and_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(count=1))

    def boom() -> float:
        raise RuntimeError("CUDA not initialised")

    for fn in (boom, lambda: None, None):
        path = tmp_path / f"s{id(fn)}.jsonl"
        with GpuSampler(path, interval_s=10.0, peak_mem_fn=fn):
            pass  # first sample at start, final sample at stop
        lines = _lines(path)
        assert len(lines) == 2
        assert all(r["proc_peak_mem_mb"] is None and len(r["gpus"]) == 1 for r in lines)


def test_gpu_lost_mid_run_is_recorded_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(count_error=True))
    path = tmp_path / "system.jsonl"
    with GpuSampler(path, interval_s=10.0):
        pass
    lines = _lines(path)
    assert lines and all(r["gpus"] == [] and "GPU is lost" in r["error"] for r in lines)


def test_stop_is_prompt_with_long_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml())
    s = GpuSampler(tmp_path / "system.jsonl", interval_s=60.0).start()
    _wait_until(lambda: s.samples >= 1)
    t0 = time.monotonic()
    s.stop()
    assert time.monotonic() - t0 < 2.0
    assert s.samples == 2


def test_read_gpus_now_with_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_nvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    gpus = read_gpus_now()
    assert isinstance(gpus, list) and [g["index"] for g in gpus] == [0, 1]
    assert gpus[1]["power_w"] is None
    assert fake.calls["shutdown"] == 1


def test_telemetry_does_not_import_torch() -> None:
    assert "torch" not in telemetry.__dict__
    src = Path(telemetry.__file__).read_text()
    assert "import torch" not in src


@pytest.mark.gpu
@pytest.mark.skipif(not _real_nvml_available(), reason="no NVIDIA GPU/driver")
def test_real_gpu_sample(tmp_path: Path) -> None:
    path = tmp_path / "system.jsonl"
    with GpuSampler(path, interval_s=0.2):
        time.sleep(0.5)
    lines = _lines(path)
    assert len(lines) >= 2 and "error" not in lines[0]
    g = lines[0]["gpus"][0]
    assert g["name"] and g["mem_total_mb"] and g["mem_total_mb"] > 0
    assert set(g) == {
        "index",
        "name",
        "temp_c",
        "mem_used_mb",
        "mem_total_mb",
        "util_pct",
        "power_w",
    }


# --------------------------------------------------------------------------- host figures


def test_host_fields_without_a_gpu_keep_coming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No NVML: the sampler keeps writing the machine's and the process's figures (with the
    no-GPU line in every row), checked against the schema by the run folder's writer."""
    from engine import runs
    from engine.schema import SystemRow, specs

    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(init_error="Driver Not Loaded"))
    path = tmp_path / "system.jsonl"
    ballast = bytearray(64 * MIB)  # this process holds at least 64 MiB resident
    ballast[::4096] = b"x" * len(ballast[::4096])
    s = GpuSampler(path, interval_s=0.05).start()
    t0 = time.process_time()
    while time.process_time() - t0 < 0.3:  # burn CPU so the process figure is above zero
        sum(i * i for i in range(1000))
    _wait_until(lambda: s.samples >= 3)
    assert s.running  # not ended by the missing GPU
    s.stop()
    rows = runs.read_jsonl(path)
    assert len(rows) == len(_lines(path)) >= 4
    known = set(specs(SystemRow))
    for r in rows:
        assert set(r) <= known
        assert r["gpus"] == [] and r["error"] == "no NVIDIA GPU/driver: Driver Not Loaded"
        assert 0 <= r["cpu_percent"] <= 100
        assert 0 < r["ram_used_mb"] < r["ram_total_mb"]
        assert r["proc_rss_mb"] >= 64
        assert r["disk_free_gb"] > 0
    import shutil as _sh

    free = _sh.disk_usage(tmp_path).free / 1024**3
    assert rows[-1]["disk_free_gb"] == pytest.approx(free, rel=0.05)
    assert max(r["proc_cpu_percent"] for r in rows) > 0
    del ballast


def test_host_reader_without_psutil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)
    got = telemetry.HostReader(tmp_path).read()
    assert set(got) == set(telemetry.HOST_KEYS)
    assert [got[k] for k in telemetry.HOST_KEYS[:5]] == [None] * 5
    assert got["disk_free_gb"] > 0  # shutil, not psutil
    assert telemetry.HostReader(tmp_path / "missing").read()["disk_free_gb"] is None


def test_host_fields_with_fake_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(count=1))
    path = tmp_path / "system.jsonl"
    with GpuSampler(path, interval_s=10.0):
        pass
    rows = _lines(path)
    assert len(rows) == 2 and all(len(r["gpus"]) == 1 and "error" not in r for r in rows)
    assert all(r["ram_total_mb"] > 0 and r["proc_rss_mb"] > 0 for r in rows)
