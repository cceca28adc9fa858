"""The torch threads of a CPU server (the device itself is checked by `arner.inference.resolve_device`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


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
