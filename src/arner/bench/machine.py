"""The machine a bench runs on: its description, the device's name and peak FLOP/s, timing and peak memory."""

from __future__ import annotations

import functools
import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch

from arner.core.machine import cpu_cores, cpu_model, memory_gb

# Peak dense bf16 tensor TFLOP/s (NVIDIA datasheets), for MFU.
PEAK_BF16_TFLOPS = {"h100": 989.0, "h100-pcie": 756.0, "h200": 989.0, "a100": 312.0}


def short_gpu_name(name: str) -> str:
    """`NVIDIA H100 80GB HBM3` -> `h100`, `NVIDIA A100-SXM4-80GB` -> `a100`, `NVIDIA H100 PCIe` -> `h100-pcie`."""
    name = name.lower().replace("nvidia", "")
    m = re.search(r"\b([a-z]+\d+[a-z]*)\b", name)
    short = m.group(1) if m else re.sub(r"[^a-z0-9]+", "-", name).strip("-")
    return f"{short}-pcie" if short == "h100" and "pcie" in name else short


def device_name() -> str:
    """`cpu`, or the short GPU name, for the report folder and the peak FLOP/s table."""
    return short_gpu_name(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "cpu"


def peak_tflops() -> float | None:
    return PEAK_BF16_TFLOPS.get(device_name()) if torch.cuda.is_available() else None


def machine() -> dict:
    """What the report records about the hardware and the settings that change throughput."""
    info = {
        "cpu": cpu_model(),
        "cpu_cores": cpu_cores(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": memory_gb(),
        "platform": platform.platform(),
        "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM"),
        "gpu": None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda, gpu_count=torch.cuda.device_count()
        )
    return info


def report_header(bench: str, model: str, run: dict) -> dict:
    """The keys every bench report starts with: what ran, the command, and the machine it ran on."""
    from arner.core.machine import versions

    return {
        "bench": bench,
        "name": run["name"] or f"{bench}-{model}",
        "command": run["command"],
        "device": device_name(),
        "machine": machine(),
        "versions": versions(),
    }


def sync() -> None:
    """Wait for queued GPU work, so that a clock read after it includes it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable, *args, **kwargs) -> tuple[float, object]:
    """Seconds `fn(*args, **kwargs)` took (GPU work included), and its result."""
    sync()
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    sync()
    return time.perf_counter() - t0, result


def with_threads(fn: Callable) -> Callable:
    """Adds `threads=N`: run `fn` with N torch threads (default: torch's), restored afterwards."""

    @functools.wraps(fn)
    def run(*args, threads: int | None = None, **kwargs):
        old = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(old)

    return run


def _rss_peak_mb() -> float:
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB; not resettable


class PeakMemory:
    """Peak resident memory (MB) of this process inside the block, and the CUDA peak on a GPU.

    Linux resets the RSS high-water mark on `echo 5 > /proc/self/clear_refs`, so each side of a
    bench gets its own peak in one process; where that fails the peak is the process's so far.
    """

    def __enter__(self) -> PeakMemory:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.rss_reset = True
        except OSError:
            self.rss_reset = False
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc) -> None:
        self.rss_mb = _rss_peak_mb()
        self.cuda_mb = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None

    @property
    def peak_mb(self) -> float:
        """The figure a report compares: device memory on a GPU, resident memory on a CPU."""
        return self.cuda_mb if self.cuda_mb is not None else self.rss_mb

    def to_json(self) -> dict:
        return {
            "peak_rss_mb": round(self.rss_mb, 1),
            "peak_cuda_mb": self.cuda_mb and round(self.cuda_mb, 1),
            "rss_peak_reset": self.rss_reset,
        }
