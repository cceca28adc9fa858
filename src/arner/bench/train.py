"""`arner bench train`: our training loop against the plain Hugging Face `Trainer`.

`arner.train.finetune.train` (its own `log.jsonl` gives tokens/s and seconds per epoch) runs against
the `Trainer` as the official token-classification example configures it by default (fp32,
`DataCollatorForTokenClassification` dynamic padding, random sampling), on the same windows
(`window_examples`) and batch size. The first epoch of each is a warm-up and not counted.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from arner.bench.data import repeat_documents, token_counts
from arner.bench.machine import PeakMemory, peak_tflops, report_header, sync, timed, with_threads
from arner.bench.models import ARABERT_V02, build_model, load_bench_config
from arner.bench.report import train_markdown, write_report
from arner.core import corpus
from arner.core.conventions import ID2TAG, TAG2ID


def flops_per_token(model: torch.nn.Module, seq_len: float) -> float:
    """Training FLOPs per token: 6 x non-embedding parameters + 12 x layers x hidden x sequence length.

    6N: a multiply-add (2 FLOPs) per weight in the forward and twice that in the backward. The
    attention term is the PaLM paper's (appendix B): QK^T and AV, forward and backward.
    """
    embedding = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    params = sum(p.numel() for p in model.parameters())
    c = model.config
    return 6 * (params - embedding) + 12 * c.num_hidden_layers * c.hidden_size * seq_len


@dataclass
class TrainData:
    """What both loops train on, and the figures the report derives from it."""

    cfg: object
    base: Path
    tokenizer: object
    documents: int
    subword_tokens: int
    features: list[dict]
    lengths: list[int]
    seq_len: float  # token-weighted: the length each token attends over
    flops: float
    parameters: int


def prepare(model: str, config: Path | None, tokens: int, epochs: int, batch_size: int | None, docs, seed: int, tmp: Path) -> TrainData:
    """A random base model in `tmp`, the articles repeated up to `tokens`, and their windows."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from arner.train.data import window_examples

    base = build_model(model, [d.text for d in docs], load_bench_config(model, config), tmp / "base", seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    corpus.save(repeat_documents(docs, tokenizer, tokens, seed), tmp / "data")
    overrides = [f"model={base}", f"annotations={tmp / 'data'}", f"epochs={epochs}", f"seed={seed}", "progress_bar=false"]
    cfg = load_bench_config(model, config, overrides + ([f"batch_size={batch_size}"] if batch_size else []))
    data = corpus.load(cfg.annotations)
    features = [ex for d in data for ex in window_examples(tokenizer, d, cfg.max_length, cfg.stride, cfg.label_all_subwords)]
    lengths = [len(f["input_ids"]) for f in features]
    seq_len = sum(n * n for n in lengths) / sum(lengths)
    probe = AutoModelForTokenClassification.from_pretrained(str(base), num_labels=len(TAG2ID))
    return TrainData(
        cfg=cfg,
        base=base,
        tokenizer=tokenizer,
        documents=len(data),
        subword_tokens=sum(token_counts(tokenizer, [d.text for d in data])),
        features=features,
        lengths=lengths,
        seq_len=seq_len,
        flops=flops_per_token(probe, seq_len),
        parameters=sum(p.numel() for p in probe.parameters()),
    )


def run_ours(cfg, out: Path) -> dict:
    from accelerate.state import AcceleratorState

    from arner.eval.training import train
    from arner.train.loop import mixed_precision, read_log

    AcceleratorState._reset_state(reset_partial_state=True)  # the previous side's Accelerator must not leak in
    with PeakMemory() as mem:
        wall, _ = timed(train, cfg, out)
    epochs = read_log(out, "epoch")
    return {
        "epoch_seconds": [r["seconds"] for r in epochs],
        "epoch_tokens": [round(r["tokens_per_second"] * r["seconds"]) for r in epochs],
        "wall_seconds": wall,
        "memory": mem.to_json(),
        "precision": {"no": "fp32"}.get(mixed_precision(cfg), mixed_precision(cfg)),
        "length_grouping": cfg.group_by_length,
        "pad_to_multiple_of": cfg.pad_to_multiple_of,
    }


def epoch_timer():
    """A `TrainerCallback` recording each epoch's seconds and steps (defined here: transformers loads lazily)."""
    from transformers import TrainerCallback

    class EpochTimer(TrainerCallback):
        def __init__(self):
            self.begin, self.first_step, self.seconds, self.steps = 0.0, 0, [], []

        def on_epoch_begin(self, args, state, control, **kwargs):
            sync()
            self.begin, self.first_step = time.perf_counter(), state.global_step

        def on_epoch_end(self, args, state, control, **kwargs):
            sync()
            self.seconds.append(time.perf_counter() - self.begin)
            self.steps.append(state.global_step - self.first_step)

    return EpochTimer()


class PaddedCounter:
    """The example's collator, counting the tokens (padding included) the model sees."""

    def __init__(self, tokenizer):
        from transformers import DataCollatorForTokenClassification

        self.collator = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=None)  # run_ner: 8 only with fp16
        self.tokens = 0

    def __call__(self, batch: list[dict]) -> dict:
        out = self.collator(batch)
        self.tokens += out["input_ids"].numel()
        return out


def run_trainer(base: Path, tokenizer, features: list[dict], cfg, out: Path) -> dict:
    """The plain `Trainer`, as examples/pytorch/token-classification/run_ner.py sets it up by default."""
    import datasets
    from accelerate.state import AcceleratorState
    from transformers import AutoModelForTokenClassification, Trainer, TrainingArguments

    collate, timer = PaddedCounter(tokenizer), epoch_timer()
    AcceleratorState._reset_state(reset_partial_state=True)
    with PeakMemory() as mem:
        torch.manual_seed(cfg.seed)
        model = AutoModelForTokenClassification.from_pretrained(
            str(base), num_labels=len(TAG2ID), id2label=dict(ID2TAG), label2id=dict(TAG2ID)
        )
        args = TrainingArguments(
            output_dir=str(out),
            per_device_train_batch_size=cfg.batch_size,
            num_train_epochs=cfg.epochs,
            learning_rate=cfg.learning_rate,
            seed=cfg.seed,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
        )
        data = datasets.Dataset.from_dict({"input_ids": [f["input_ids"] for f in features], "labels": [f["labels"] for f in features]})
        trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collate, callbacks=[timer])
        wall, _ = timed(trainer.train)
    return {
        "epoch_seconds": timer.seconds,
        "epoch_steps": timer.steps,
        "wall_seconds": wall,
        "memory": mem.to_json(),
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "padded_tokens_all_epochs": collate.tokens,
        "optimizer": str(args.optim.value if hasattr(args.optim, "value") else args.optim),
        "attention": model.config._attn_implementation,
    }


def our_padded_tokens(lengths: list[int], cfg, epochs: range) -> int:
    """Tokens (padding included) our loop feeds the model in `epochs`, from its own batch sampler."""
    from arner.train.batches import epoch_batches

    m, total = cfg.pad_to_multiple_of, 0
    for e in epochs:
        batches = epoch_batches(lengths, cfg.batch_size, cfg.seed, e, cfg.group_by_length)
        total += sum(-(-max(lengths[i] for i in b) // m) * m * len(b) for b in batches)
    return total


def summarize(seconds: float, tokens: int, sequences: int, steps: int, padded: int, flops: float, peak: float | None, memory: dict) -> dict:
    tps = tokens / seconds
    row = {
        "seconds": round(seconds, 4),
        "tokens_per_second": round(tps, 1),
        "sequences_per_second": round(sequences / seconds, 3),
        "step_seconds": round(seconds / steps, 5),
        "padding_fraction": round(1 - tokens / padded, 4) if padded else None,
        "model_tflops_per_second": round(tps * flops / 1e12, 4),
        "mfu": round(tps * flops / (peak * 1e12), 4) if peak else None,
        "peak_memory_mb": memory["peak_cuda_mb"] if memory["peak_cuda_mb"] is not None else memory["peak_rss_mb"],
    }
    return row | {"memory": memory}


def steady_seconds(run: dict) -> float:
    """Seconds of epochs 2.. (epoch 1 is the warm-up)."""
    return sum(run["epoch_seconds"][1:])


def side_rows(runs: list[tuple[dict, dict]], d: TrainData, epochs: int) -> tuple[dict, dict]:
    """The report's row for each side, from its best repeat."""
    ours = min((o for o, _ in runs), key=steady_seconds)
    hf = min((h for _, h in runs), key=steady_seconds)
    n, peak = epochs - 1, peak_tflops()
    tokens, sequences, steps = sum(d.lengths) * n, len(d.features) * n, -(-len(d.features) // d.cfg.batch_size) * n
    ours_padded = our_padded_tokens(d.lengths, d.cfg, range(1, epochs))
    hf_padded = hf["padded_tokens_all_epochs"] * n // epochs  # random batches: the mean over all epochs
    ours_row = summarize(steady_seconds(ours), tokens, sequences, steps, ours_padded, d.flops, peak, ours["memory"])
    hf_row = summarize(steady_seconds(hf), tokens, sequences, sum(hf["epoch_steps"][1:]), hf_padded, d.flops, peak, hf["memory"])
    ours_keys = ("precision", "length_grouping", "pad_to_multiple_of", "epoch_seconds", "epoch_tokens", "wall_seconds")
    hf_keys = ("precision", "optimizer", "attention", "epoch_seconds", "epoch_steps", "wall_seconds")
    return ours_row | {k: ours[k] for k in ours_keys}, hf_row | {k: hf[k] for k in hf_keys}


def train_targets(model: str, device: str, max_length: int, ratio: float, mfu: float | None) -> list[dict]:
    if device == "cpu":
        return [{"target": "train tokens/s >= 1.0 x Trainer (CPU)", "value": round(ratio, 3), "reached": ratio >= 1.0}]
    targets = [{"target": "train tokens/s >= 2 x Trainer (GPU)", "value": round(ratio, 3), "reached": ratio >= 2.0}]
    if model == "bert-base" and max_length == 512:
        reached = None if mfu is None else mfu >= 0.35
        targets.append({"target": "MFU >= 35% (BERT-base, max length 512, bf16)", "value": mfu, "reached": reached})
    return targets


def train_report(model: str, d: TrainData, runs: list[tuple[dict, dict]], run: dict) -> dict:
    """The report's JSON; `run` holds the bench's own settings (name, command, tokens, epochs, repeats, load)."""
    cfg, epochs = d.cfg, run["epochs"]
    ours, hf = side_rows(runs, d, epochs)
    ratio = ours["tokens_per_second"] / hf["tokens_per_second"]
    header = report_header("train", model, run)
    device = header["device"]
    tokens_epoch, n = sum(d.lengths), epochs - 1
    config_keys = ("max_length", "stride", "batch_size", "epochs", "group_by_length", "pad_to_multiple_of", "seed")
    return {
        **header,
        "model": {"name": model, "parameters": d.parameters, "shape": ARABERT_V02 if model == "bert-base" else cfg.tiny.to_dict()},
        "config": {k: getattr(cfg, k) for k in config_keys},
        "data": {
            "documents": d.documents,
            "tokens_target": run["tokens"],
            "subword_tokens": d.subword_tokens,
            "windows": len(d.features),
            "window_tokens_per_epoch": tokens_epoch,
            "mean_window_length": round(tokens_epoch / len(d.features), 1),
            "token_weighted_window_length": round(d.seq_len, 1),
            "steps_per_epoch": -(-len(d.features) // cfg.batch_size),
        },
        "measured_epochs": f"2-{epochs} (epoch 1 is a warm-up)",
        "repeats": run["repeats"],
        "repeat_tokens_per_second": [
            {"ours": round(tokens_epoch * n / steady_seconds(o), 1), "trainer": round(tokens_epoch * n / steady_seconds(h), 1)}
            for o, h in runs
        ],
        "load_average": run["load_average"],
        "flops_per_token": d.flops,
        "peak_bf16_tflops": peak_tflops(),
        "ours": ours,
        "trainer": hf,
        "ratio_tokens_per_second": round(ratio, 3),
        "targets": train_targets(model, device, cfg.max_length, ratio, ours["mfu"]),
    }


@with_threads
def bench_train(
    model: str = "tiny",
    config: Path | None = None,
    tokens: int = 50_000,
    epochs: int = 3,
    batch_size: int | None = None,
    repeats: int = 1,
    annotations: Path = Path("annotations"),
    out: Path = Path("reports/bench"),
    name: str | None = None,
    seed: int = 42,
    command: str = "",
) -> dict:
    """Run both loops `repeats` times on the same data and write `<out>/<device>/<name>.{json,md}`."""
    if epochs < 2:
        raise ValueError("--epochs must be >= 2: the first epoch is a warm-up")
    if repeats < 1:
        raise ValueError("--repeats must be >= 1")
    load_bench_config(model, config)  # a bad --model or a missing config fails before any work
    docs = corpus.load(annotations)
    with tempfile.TemporaryDirectory(prefix="arner-bench-") as tmp:
        tmp = Path(tmp)
        d = prepare(model, config, tokens, epochs, batch_size, docs, seed, tmp)
        load_start = os.getloadavg()
        runs = [
            (run_ours(d.cfg, tmp / "ours"), run_trainer(d.base, d.tokenizer, d.features, d.cfg, tmp / "trainer")) for _ in range(repeats)
        ]
        load_end = os.getloadavg()
    run = {"name": name, "command": command, "tokens": tokens, "epochs": epochs, "repeats": repeats}
    report = train_report(model, d, runs, run | {"load_average": {"start": load_start, "end": load_end}})
    write_report(report, out, train_markdown(report))
    return report
