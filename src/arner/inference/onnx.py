"""ONNX Runtime as a `Tagger` backend: `arner export --format onnx [--quantize int8]` and the module that runs it.

An exported folder holds `model.onnx` (input_ids, attention_mask -> logits, any batch and length),
`config.json` (labels, max positions), the tokenizer, and the source's `arner.json` and model card,
so `Tagger.from_pretrained(folder)` loads it like any model folder and windows texts the same way.

int8 is ONNX Runtime's dynamic quantization: MatMul weights int8 per channel, activations quantized
per batch. The classification head stays fp32, as in `precision.KEEP_FP32`: few FLOPs, most label moves.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from arner.core import atomic
from arner.inference.precision import KEEP_FP32

ONNX_FILE = "model.onnx"
QUANTIZE = ("none", "int8")
# what an export folder holds: an existing --out holding anything else is refused, never deleted
OWNED = (ONNX_FILE, "config.json", "tokenizer*", "special_tokens_map.json", "vocab.txt", "*.model", "arner.json", "README.md")


def is_onnx_folder(path: str | Path) -> bool:
    return (Path(path) / ONNX_FILE).is_file()


def export_record(folder: str | Path) -> dict:
    """What `arner.json` says of the export (`quantize`, `source`, `opset`); empty for a folder without one."""
    meta = Path(folder) / "arner.json"
    return json.loads(meta.read_text(encoding="utf-8")).get("export", {}) if meta.is_file() else {}


class OnnxTokenClassifier(torch.nn.Module):
    """An ONNX Runtime session with the call and output of a transformers token classifier (CPU).

    A Module, so the hooks and `.config` that code around a torch model uses work unchanged.
    """

    def __init__(self, folder: str | Path):
        super().__init__()
        import onnxruntime
        from transformers import AutoConfig

        self.config = AutoConfig.from_pretrained(str(folder))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the thread budget torch has, so benches compare alike
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(Path(folder) / ONNX_FILE), options, providers=["CPUExecutionProvider"])
        self.precision = "onnx-int8" if export_record(folder).get("quantize") == "int8" else "onnx-fp32"

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        from transformers.modeling_outputs import TokenClassifierOutput

        feed = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        (logits,) = self.session.run(["logits"], feed)
        return TokenClassifierOutput(logits=torch.from_numpy(logits))


@contextmanager
def quiet() -> Iterator[None]:
    """No exporter chatter: torch.onnx's per-op notes and progress, ONNX Runtime's advice on the root logger."""
    loggers = [logging.getLogger(), logging.getLogger("torch.onnx")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _export_graph(model, path: Path) -> None:
    """torch.export's ONNX exporter, batch and length dynamic (length up to the model's positions)."""
    positions = int(getattr(model.config, "max_position_embeddings", 512))
    example = {"input_ids": torch.ones((2, 16), dtype=torch.long), "attention_mask": torch.ones((2, 16), dtype=torch.long)}
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=positions)
    shapes = {"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}}
    with quiet():
        program = torch.onnx.export(model, (), kwargs=example, dynamo=True, dynamic_shapes=shapes, output_names=["logits"], verbose=False)
    program.save(str(path), external_data=False)


def _head_nodes(path: Path) -> list[str]:
    """Names of the graph nodes that read the classification head's weights (left fp32 by int8)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    head = {i.name for i in graph.initializer if any(k in i.name for k in KEEP_FP32)}
    return [n.name for n in graph.node if head & set(n.input)]


def _quantize_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet():
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=_head_nodes(source),
        )


def export_onnx(model_dir: str | Path, out: str | Path, quantize: str = "none") -> dict:
    """Write `out` (replaced whole) as an ONNX model folder of `model_dir`; return what `arner.json` records of it."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    if quantize not in QUANTIZE:
        raise ValueError(f"--quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    source = Path(model_dir)
    if not source.is_dir():
        raise ValueError(f"{model_dir}: no such model folder")
    model = AutoModelForTokenClassification.from_pretrained(str(source), dtype=torch.float32, attn_implementation="sdpa").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    meta = json.loads((source / "arner.json").read_text(encoding="utf-8")) if (source / "arner.json").is_file() else {}
    record = {"format": "onnx", "quantize": quantize, "source": source.name, "opset": None}
    with atomic.directory(out, owned=OWNED, what="an ONNX export") as tmp:
        _export_graph(model, tmp / ONNX_FILE)
        if quantize == "int8":
            plain = tmp / "fp32.onnx"
            (tmp / ONNX_FILE).rename(plain)
            _quantize_int8(plain, tmp / ONNX_FILE)
            plain.unlink()
        record["opset"] = _opset(tmp / ONNX_FILE)
        model.config.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if (source / "README.md").is_file():  # the model card: what the model is, trained on what, scored how
            shutil.copyfile(source / "README.md", tmp / "README.md")
        (tmp / "arner.json").write_text(json.dumps({**meta, "export": record}, indent=2, ensure_ascii=False), encoding="utf-8")
    return record


def _opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
