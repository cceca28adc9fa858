"""Where the model runs: the device, checked before anything loads, and the torch threads of a CPU server."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def check_device(name: str) -> torch.device:
    """The torch device `name` means, or a one-line `ValueError` when this machine has no such device (the Tagger's rule)."""
    from arner.inference import resolve_device

    return resolve_device(name)


def default_threads(device: torch.device) -> int | None:
    """torch threads for a CPU server: one core is left to the event loop (HTTP, JSON), the rest
    go to the model; None (torch's default) when the model runs on a GPU.

    Measured on 2 cores (reports/serve): a model thread per core is ~20% faster on an otherwise
    idle machine, but 2.7x slower beside one busy process (OpenMP threads waiting for a core),
    while one model thread keeps its throughput."""
    from arner.core.machine import cpu_cores

    if device.type == "cuda":
        return None
    return max(1, cpu_cores() - 1)
