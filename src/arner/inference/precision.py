"""The numeric precision a `Tagger` runs its torch model in: fewer FLOPs or bytes per answer.

- `auto`: bf16 (fp16 where bf16 is missing) on a GPU, fp32 on a CPU: the defaults since the start.
- `fp32`: the reference every other precision is checked against.
- `bf16`: the weights cast to bfloat16. On a CPU only where it has bf16 instructions (AVX512-BF16 or
  AMX); elsewhere torch emulates it, slower than fp32, so that is refused.
- `fp16`: GPUs only (CPUs have no fast fp16 matmul).
- `int8`: dynamic int8 quantization of the Linear layers (weights int8, activations quantized per
  batch), CPU only. The classification head stays fp32, as NER quantization studies do: it is a
  tiny share of the FLOPs and the layer whose rounding moves labels most. So does ELECTRA's
  embedding projection, which feeds every layer: quantized, it changed 0.52% of the shipped
  encoder's word tags; kept, 0.05% (reports/inference/precision-encoder.md).

Checked against fp32 on trained models (word-tag agreement and pooled F1): scripts/precision_check.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from arner.core.defaults import PRECISIONS

# Linear layers int8 leaves in fp32: the token-classification heads of BERT, ELECTRA, XLM-R and most others,
# and ELECTRA's projection of its small embeddings to the hidden size
KEEP_FP32 = ("classifier", "embeddings_project")


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux lists them (empty elsewhere, where bf16 support is not assumed)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def cpu_has_bf16() -> bool:
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def check_precision(precision: str, device: torch.device) -> str:
    """`precision` made concrete for `device` (auto resolved); a ValueError naming `--precision` when it cannot run there."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    gpu = device.type == "cuda"
    if precision == "auto":
        return ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if gpu else "fp32"
    if precision == "fp16" and not gpu:
        raise ValueError("--precision fp16 runs on a GPU only (a CPU has no fast fp16 matmul): use bf16, int8 or fp32")
    if precision == "int8" and gpu:
        raise ValueError("--precision int8 is dynamic quantization for CPUs: on a GPU use bf16 or fp16")
    if precision == "bf16" and not gpu and not cpu_has_bf16():
        raise ValueError(
            "--precision bf16: this CPU has no bf16 instructions (avx512_bf16 or amx_bf16), torch would emulate it slower than fp32"
        )
    if precision == "bf16" and gpu and not torch.cuda.is_bf16_supported():
        raise ValueError("--precision bf16: this GPU has no bf16 support: use fp16")
    return precision


def load_dtype(precision: str) -> torch.dtype:
    """The dtype to load weights in for a concrete precision (int8 quantizes fp32 weights)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 Linear layers, the classification head left in fp32 (a new module; `model` is not changed)."""
    keep = {name for name, module in model.named_modules() if name.split(".")[-1] in KEEP_FP32}
    targets = {
        name: torch.ao.quantization.default_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name not in keep
    }
    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao, not installed here
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, targets, dtype=torch.qint8)


def apply_precision(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """The model as it runs in a concrete precision (loaded in `load_dtype(precision)` already)."""
    return quantize_int8(model) if precision == "int8" else model
