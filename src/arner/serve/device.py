"""Where the model runs: the device, checked before anything loads, and the torch threads of a CPU server."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def check_device(name: str) -> torch.device:
    """The torch device `name` means, or a one-line `ValueError` when this machine has no such device.

    torch would otherwise fail only when the model is moved there, with an error that names neither
    the option nor the fix."""
    import torch

    from arner.inference import resolve_device

    try:
        device = resolve_device(name)
    except RuntimeError as e:  # a device string torch does not parse (ServeSettings lets only known forms through)
        raise ValueError(f"--device {name}: {e}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {name}: no CUDA device is available here (use --device cpu or auto)")
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {name}: there are only {count} CUDA device(s) (cuda:0 to cuda:{count - 1})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available here (use --device cpu or auto)")
    return device


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
