"""`arner bench infer`: `Tagger` against `transformers.pipeline` on full articles.

The pipeline is `pipeline("token-classification", aggregation_strategy="first", stride=...)`, at its
default batching (1) and at its best batch size in the sweep; the Tagger at its default batch size
and at its best. A second sweep runs texts of set lengths, each side at its best batch size.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from arner.bench.data import cut_texts, repeat_documents, token_counts
from arner.bench.machine import PeakMemory, report_header, sync, timed, with_threads
from arner.bench.models import build_model, classifier_folder, load_bench_config
from arner.bench.report import infer_markdown, plot, write_report
from arner.core import corpus
from arner.core.conventions import TAG2ID
from arner.core.defaults import ONNX_PRECISIONS

SYSTEMS = ("tagger", "pipeline")


class ForwardTimer:
    """Seconds spent inside `model.forward` (synchronized on a GPU) and positions fed to it (padding included)."""

    def __init__(self, model):
        self.seconds, self.positions, self.start = 0.0, 0, 0.0
        model.register_forward_pre_hook(self.before, with_kwargs=True)
        model.register_forward_hook(self.after)

    def before(self, module, args, kwargs) -> None:
        self.positions += (kwargs["input_ids"] if "input_ids" in kwargs else args[0]).numel()
        sync()
        self.start = time.perf_counter()

    def after(self, module, args, output) -> None:
        sync()
        self.seconds += time.perf_counter() - self.start


class FixedLogits(torch.nn.Module):
    """A stand-in model for `--host-only`: each token's logits read from a fixed random table by its id.

    No matmul, so a run times tokenization, windows, batching and decoding alone. The O column is
    biased so that about `entity_share` of the tokens are tagged as entities, as on real text.
    """

    def __init__(self, model, entity_share: float, seed: int = 0):
        super().__init__()
        self.config = model.config
        labels = len(model.config.id2label)
        table = torch.randn(model.config.vocab_size, labels, generator=torch.Generator().manual_seed(seed))
        o = TAG2ID["O"]
        margin = torch.cat([table[:, :o], table[:, o + 1 :]], -1).max(-1).values - table[:, o]
        table[:, o] += float(torch.quantile(margin, 1 - entity_share))
        self.table = torch.nn.Parameter(table, requires_grad=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_):
        from transformers.modeling_outputs import TokenClassifierOutput

        return TokenClassifierOutput(logits=self.table[input_ids])


@dataclass
class Point:
    """One measurement: a system on some texts at one batch size; `tokens` is the texts' subwords."""

    system: str
    texts: list[str]
    batch_size: int
    tokens: int


def point_row(p: Point, seconds: float, forward: float, positions: int, entities: int, memory: float) -> dict:
    n = len(p.texts)
    return {
        "batch_size": p.batch_size,
        "documents": n,
        "seconds": round(seconds, 4),
        "documents_per_second": round(n / seconds, 3),
        "tokens_per_second": round(p.tokens / seconds, 1),
        "entities_per_document": round(entities / n, 2),
        "peak_memory_mb": round(memory, 1),
        "model_forward_share": round(forward / seconds, 4),
        "model_positions_per_token": round(positions / p.tokens, 3),
    }


class Systems:
    """Both sides on the same model folder, each run timed with the share spent in the model's forward."""

    def __init__(self, tagger, pipe):
        self.tagger, self.pipe = tagger, pipe
        self.forward = {"tagger": ForwardTimer(tagger.model), "pipeline": ForwardTimer(pipe.model)}

    def run(self, system: str, texts: list[str], batch_size: int) -> list:
        if system == "pipeline":
            return self.pipe(texts, batch_size=batch_size)
        self.tagger.batch_size = batch_size
        return self.tagger.predict(texts)

    def once(self, p: Point) -> tuple[float, float, int, int, float]:
        """Seconds, seconds in forward, positions, entities found, peak memory MB of one run after a warm-up."""
        self.run(p.system, p.texts[: max(1, min(len(p.texts) // 4, p.batch_size))], p.batch_size)  # kernels, allocator
        timer = self.forward[p.system]
        timer.seconds, timer.positions = 0.0, 0
        with PeakMemory() as mem:
            seconds, result = timed(self.run, p.system, p.texts, p.batch_size)
        return seconds, timer.seconds, timer.positions, sum(len(r) for r in result), mem.peak_mb

    def measure(self, points: list[Point], repeats: int) -> list[dict]:
        """Each point's best run; with repeats, whole rounds over all points (so a burst of load elsewhere
        does not hit every try of one point). Memory is the highest peak over the repeats."""
        best: list[tuple | None] = [None] * len(points)
        memory = [0.0] * len(points)
        for _ in range(repeats):
            for k, p in enumerate(points):
                got = self.once(p)
                memory[k] = max(memory[k], got[4])
                if best[k] is None or got[0] < best[k][0]:
                    best[k] = got
        return [point_row(p, *b[:4], m) for p, b, m in zip(points, best, memory)]


def best_of(sweep: dict) -> dict:
    """Each side's row with the most documents/s."""
    return {k: max(rows, key=lambda r: r["documents_per_second"]) for k, rows in sweep.items()}


def batch_sweep(systems: Systems, texts: list[str], tokens: int, batch_sizes: tuple[int, ...], repeats: int, default: int) -> dict:
    """Each side on all the texts at each batch size (1 and the Tagger's default always among them)."""
    sizes = sorted(set(batch_sizes) | {1, default})
    rows = systems.measure([Point(s, texts, b, tokens) for s in SYSTEMS for b in sizes], repeats)
    return {s: rows[i * len(sizes) : (i + 1) * len(sizes)] for i, s in enumerate(SYSTEMS)}


def length_sweep(systems: Systems, docs, tokenizer, best: dict, lengths: tuple[int, ...], total: int, seed: int, repeats: int) -> dict:
    """Each side, at its best batch size, on about `total` subwords of texts cut to each length."""
    stream = [d.text for d in repeat_documents(docs, tokenizer, max(total, 2 * max(lengths)), seed + 1)]
    cuts = [cut_texts(stream, tokenizer, n, total) for n in lengths]
    points = [Point(s, ts, best[s]["batch_size"], sum(token_counts(tokenizer, ts))) for s in SYSTEMS for ts in cuts]
    rows = systems.measure(points, repeats)
    return {s: [{"length": n} | r for n, r in zip(lengths, rows[i * len(lengths) : (i + 1) * len(lengths)])] for i, s in enumerate(SYSTEMS)}


@dataclass
class InferSetup:
    systems: Systems
    tokenizer: object
    texts: list[str]
    tokens: int
    head: dict
    tagger_default: int


def load_tagger(folder: Path, dev, batch_size: int, stride: int, precision: str, tmp: Path):
    """The Tagger side: `folder` in a torch precision, or exported to ONNX (`onnx-fp32`, `onnx-int8`) and run by ONNX Runtime."""
    from arner.inference import Tagger
    from arner.inference.onnx import export_onnx

    if precision in ONNX_PRECISIONS:
        export = tmp / f"{folder.name}-{precision}"
        export_onnx(folder, export, "int8" if precision == "onnx-int8" else "none")
        return Tagger.from_pretrained(export, device="cpu", batch_size=batch_size, stride=stride)
    return Tagger.from_pretrained(folder, device=str(dev), batch_size=batch_size, stride=stride, precision=precision)


def prepare(model: str, cfg, docs, tokens: int, device: str, seed: int, tmp: Path, precision: str, host_only: bool) -> InferSetup:
    """A random classifier in `tmp`, loaded by both sides, and the articles repeated up to `tokens`.

    `host_only` swaps both sides' model for `FixedLogits`, so the runs time only the code around the model.
    """
    from transformers import AutoTokenizer, pipeline

    from arner.inference import Tagger, resolve_device

    dev = resolve_device(device)
    tagger_default = inspect.signature(Tagger.from_pretrained).parameters["batch_size"].default
    base = build_model(model, [d.text for d in docs], cfg, tmp / "base", seed)
    folder, head = classifier_folder(base, tmp / "model", docs, seed)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    texts = [d.text for d in repeat_documents(docs, tokenizer, tokens, seed)]
    tagger = load_tagger(folder, dev, tagger_default, cfg.stride, precision, tmp)
    pipe = pipeline("token-classification", model=str(folder), aggregation_strategy="first", stride=cfg.stride, device=dev)
    head["parameters"] = sum(p.numel() for p in pipe.model.parameters())
    if host_only:
        tagger.model = pipe.model = FixedLogits(pipe.model, head["entity_word_share"]).to(dev)
    return InferSetup(Systems(tagger, pipe), tokenizer, texts, sum(token_counts(tokenizer, texts)), head, tagger_default)


# issue 17's goals: the Tagger against the pipeline, each at its best batch size; host-only tokens/s
GOALS = {"cpu": 3.0, "gpu": 10.0}
HOST_ONLY_GOAL = 1_000_000


def infer_targets(device: str, ratio_best: float, ratio_default: float, host_only: bool, tokens_per_second: float) -> list[dict]:
    if host_only:
        value = round(tokens_per_second, 1)
        return [{"target": f"host-only tokens/s >= {HOST_ONLY_GOAL:,}", "value": value, "reached": value >= HOST_ONLY_GOAL}]
    where = "cpu" if device == "cpu" else "gpu"
    goal = GOALS[where]
    return [
        {
            "target": f"infer documents/s >= {goal:g} x pipeline at its best batch size ({where.upper()})",
            "value": round(ratio_best, 3),
            "reached": ratio_best >= goal,
        },
        {
            "target": f"infer documents/s >= {goal:g} x pipeline at its default batching",
            "value": round(ratio_default, 3),
            "reached": ratio_default >= goal,
        },
    ]


def parameter_dtype(model) -> str:
    """The dtype of the model's first parameter (an int8 model's embeddings stay float32); none for ONNX Runtime."""
    first = next(iter(model.parameters()), None)
    return str(first.dtype) if first is not None else "none (ONNX Runtime)"


def infer_report(model: str, s: InferSetup, sweep: dict, by_length: dict, run: dict) -> dict:
    """The report's JSON; `run` holds the bench's own settings (name, command, tokens, repeats, load)."""
    tagger, pipe = s.systems.tagger, s.systems.pipe
    best = best_of(sweep)
    default = {"tagger": next(r for r in sweep["tagger"] if r["batch_size"] == s.tagger_default), "pipeline": sweep["pipeline"][0]}
    ratio_default = default["tagger"]["documents_per_second"] / default["pipeline"]["documents_per_second"]
    ratio_best = best["tagger"]["documents_per_second"] / best["pipeline"]["documents_per_second"]
    header = report_header("infer", model, run)
    device = header["device"]
    return {
        **header,
        "model": {"name": model, **s.head},
        "host_only": run["host_only"],
        "precision": tagger.precision,
        "dtype": {"tagger": parameter_dtype(tagger.model), "pipeline": parameter_dtype(pipe.model)},
        "window": {"max_length": tagger.max_length, "stride": tagger.stride, "pipeline_model_max_length": pipe.tokenizer.model_max_length},
        "data": {
            "documents": len(s.texts),
            "tokens_target": run["tokens"],
            "subword_tokens": s.tokens,
            "mean_document_tokens": round(s.tokens / len(s.texts), 1),
        },
        "tagger_default": default["tagger"],
        "tagger_best": best["tagger"],
        "pipeline_default": default["pipeline"],
        "pipeline_best": best["pipeline"],
        "ratio_default": round(ratio_default, 3),
        "ratio_best": round(ratio_best, 3),
        "repeats": run["repeats"],
        "load_average": run["load_average"],
        "batch_sweep": sweep,
        "length_sweep": by_length,
        "targets": infer_targets(device, ratio_best, ratio_default, run["host_only"], best["tagger"]["tokens_per_second"]),
    }


@with_threads
def bench_infer(
    model: str = "tiny",
    config: Path | None = None,
    tokens: int = 50_000,
    batch_sizes: tuple[int, ...] = (1, 4, 16, 64),
    lengths: tuple[int, ...] = (64, 256, 1024, 4096),
    length_tokens: int | None = None,
    device: str = "auto",
    annotations: Path = Path("annotations"),
    out: Path = Path("reports/bench"),
    name: str | None = None,
    seed: int = 42,
    repeats: int = 1,
    precision: str = "auto",
    host_only: bool = False,
    command: str = "",
) -> dict:
    """Sweep both sides over batch sizes and document lengths; write `<out>/<device>/<name>.{json,md,png}`.

    `precision` is the Tagger's (the pipeline runs at its default); `host_only` runs both on `FixedLogits`.
    """
    # the pipeline sets this on its first call when unset; set it first so both sides tokenize alike throughout
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cfg = load_bench_config(model, config)
    docs = corpus.load(annotations)
    with tempfile.TemporaryDirectory(prefix="arner-bench-") as tmp:
        s = prepare(model, cfg, docs, tokens, device, seed, Path(tmp), precision, host_only)
        load_start = os.getloadavg()
        sweep = batch_sweep(s.systems, s.texts, s.tokens, batch_sizes, repeats, s.tagger_default)
        by_length = length_sweep(s.systems, docs, s.tokenizer, best_of(sweep), lengths, length_tokens or tokens, seed, repeats)
    name = name or "-".join(["infer", model] + ([precision] if precision != "auto" else []) + (["host-only"] if host_only else []))
    run = {"name": name, "command": command, "tokens": tokens, "repeats": repeats, "host_only": host_only}
    report = infer_report(model, s, sweep, by_length, run | {"load_average": {"start": load_start, "end": os.getloadavg()}})
    plot(report, Path(out) / report["device"] / f"{report['name']}.png")
    write_report(report, out, infer_markdown(report))
    return report
