"""`arner bench train|infer`: our training loop and `Tagger` against Hugging Face defaults.

Each bench runs both sides in one process, on the same model folder and the same data (the
annotated articles, whole, repeated and shuffled up to a target number of subword tokens), and
writes `<out>/<device>/<name>.json` (machine, library versions, the exact command, every figure)
and `<name>.md`; the inference bench also writes `<name>.png`.

- train: `arner.train.finetune.train` (its own `log.jsonl` gives tokens/s and seconds per epoch) against
  the plain `Trainer` as the official token-classification example configures it by default (fp32,
  `DataCollatorForTokenClassification` dynamic padding, random sampling), same windows
  (`window_examples`), same batch size. The first epoch of each is a warm-up and not counted.
- infer: `Tagger` against `pipeline("token-classification", aggregation_strategy="first", stride=...)`
  at its default batching (1) and at its best batch size, on full articles.

Models: `tiny` (configs/tiny.yaml, `build_tiny`) or `bert-base` (AraBERT v0.2's exact shape, random
weights, a WordPiece tokenizer trained on the articles; throughput does not depend on the weights).
Targets are read from the reports, never asserted.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import platform
import random
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from arner.core import atomic, corpus
from arner.core.conventions import ID2TAG, TAG2ID
from arner.core.machine import versions

REPO = Path(__file__).resolve().parents[2]
MODELS = {"tiny": "tiny.yaml", "bert-base": "arabert-v02.yaml"}
# aubmindlab/bert-base-arabertv02 config.json
ARABERT_V02 = dict(
    vocab_size=64000,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=512,
    type_vocab_size=2,
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    layer_norm_eps=1e-12,
    initializer_range=0.02,
)
# Peak dense bf16 tensor TFLOP/s (NVIDIA datasheets), for MFU.
PEAK_BF16_TFLOPS = {"h100": 989.0, "h100-pcie": 756.0, "h200": 989.0, "a100": 312.0}


# -- machine, device, memory, timing ---------------------------------------------------------


def short_gpu_name(name: str) -> str:
    """`NVIDIA H100 80GB HBM3` -> `h100`, `NVIDIA A100-SXM4-80GB` -> `a100`, `NVIDIA H100 PCIe` -> `h100-pcie`."""
    name = name.lower().replace("nvidia", "")
    m = re.search(r"\b([a-z]+\d+[a-z]*)\b", name)
    short = m.group(1) if m else re.sub(r"[^a-z0-9]+", "-", name).strip("-")
    return f"{short}-pcie" if short == "h100" and "pcie" in name else short


def device_name() -> str:
    """`cpu`, or the short GPU name, for the report folder and the peak FLOP/s table."""
    return short_gpu_name(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "cpu"


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1) if hasattr(os, "sysconf") else None,
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


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _rss_peak_mb() -> float | None:
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

    def to_json(self) -> dict:
        return {
            "peak_rss_mb": round(self.rss_mb, 1),
            "peak_cuda_mb": self.cuda_mb and round(self.cuda_mb, 1),
            "rss_peak_reset": self.rss_reset,
        }


def with_threads(fn):
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


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    sync()
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    sync()
    return time.perf_counter() - t0, result


# -- models and data -------------------------------------------------------------------------


def load_bench_config(model: str, config: Path | None, overrides: list[str] = ()):
    """The run config of `model` (configs/tiny.yaml or configs/arabert-v02.yaml unless `config` is given)."""
    from arner.train.config import load_config

    if model not in MODELS:
        raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {model!r}")
    path = config or REPO / "configs" / MODELS[model]
    base = ["max_length=512", "stride=128", "batch_size=16"] if model == "bert-base" and not path.exists() else []
    return load_config(path if path.exists() else None, [*base, *overrides])


def build_model(model: str, texts: list[str], cfg, out: Path, seed: int) -> Path:
    """A random base model folder (BertModel + tokenizer, model_max_length = cfg.max_length)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from arner.train.model import build_tiny, train_wordpiece

    if model == "tiny":
        build_tiny(texts, cfg.tiny, out, seed)
        tokenizer = AutoTokenizer.from_pretrained(str(out))
    else:
        tokenizer = train_wordpiece(texts, ARABERT_V02["vocab_size"])
        torch.manual_seed(seed)
        BertModel(BertConfig(**ARABERT_V02, pad_token_id=tokenizer.pad_token_id)).save_pretrained(str(out))
    tokenizer.model_max_length = cfg.max_length
    tokenizer.save_pretrained(str(out))
    return out


def classifier_folder(base: Path, out: Path, docs: list[corpus.Document], seed: int) -> tuple[Path, dict]:
    """`base` with a random token-classification head over our tags, saved as a model folder.

    A random head tags 6 words in 7 as entities; post-processing cost grows with the number of
    entities, so the O logit gets the bias that makes the share of non-O tokens on the articles
    equal the share of words inside spans in the annotations.
    """
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from arner.core.conventions import word_tags, words

    torch.manual_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(str(base), num_labels=len(TAG2ID), id2label=dict(ID2TAG), label2id=dict(TAG2ID))
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    tags = [t for d in docs for t in word_tags(words(d.text), d.spans)]
    rate = sum(t != "O" for t in tags) / len(tags)
    enc = tokenizer([d.text for d in docs], truncation=True, max_length=tokenizer.model_max_length, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model.eval()(**enc).logits
    o = TAG2ID["O"]
    others = torch.cat([logits[..., :o], logits[..., o + 1 :]], -1).max(-1).values
    margin = (others - logits[..., o])[enc["attention_mask"].bool()]  # a token is non-O iff margin > bias
    bias = float(torch.quantile(margin.float(), 1 - rate))
    with torch.no_grad():
        model.classifier.bias[o] += bias
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out, {"o_bias": round(bias, 4), "entity_word_share": round(rate, 4)}


def token_counts(tokenizer, texts: list[str]) -> list[int]:
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def repeat_documents(docs: list[corpus.Document], tokenizer, target_tokens: int, seed: int) -> list[corpus.Document]:
    """Whole articles in shuffled rounds (each round every article once) until `target_tokens` subwords."""
    size = dict(zip([d.doc for d in docs], token_counts(tokenizer, [d.text for d in docs])))
    rng = random.Random(seed)
    out, total = [], 0
    while total < target_tokens or not out:
        order = list(docs)
        rng.shuffle(order)
        for d in order:
            out.append(replace(d, doc=f"{d.doc}-r{len(out):05d}"))
            total += size[d.doc]
            if total >= target_tokens:
                break
    return out


def cut_texts(texts: list[str], tokenizer, length: int, total_tokens: int) -> list[str]:
    """Texts of about `length` subwords, cut at word starts from the articles run together."""
    stream = "\n\n".join(texts)
    offsets = tokenizer(stream, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    out, i = [], 0
    while i < len(offsets) and (not out or len(out) * length < total_tokens):
        j = min(i + length, len(offsets))
        while j < len(offsets) and offsets[j][0] == offsets[j - 1][1] and stream[offsets[j][0] - 1].isalnum():
            j += 1  # do not cut inside a word
        end = offsets[j][0] if j < len(offsets) else len(stream)
        out.append(stream[offsets[i][0] : end].strip())
        i = j
    return out


def flops_per_token(model, seq_len: float) -> float:
    """6 x non-embedding parameters + 12 x layers x hidden x sequence length (training, per token)."""
    embedding = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    params = sum(p.numel() for p in model.parameters())
    c = model.config
    return 6 * (params - embedding) + 12 * c.num_hidden_layers * c.hidden_size * seq_len


def peak_tflops() -> float | None:
    return PEAK_BF16_TFLOPS.get(device_name()) if torch.cuda.is_available() else None


# -- training --------------------------------------------------------------------------------


def run_ours(cfg, out: Path) -> dict:
    from accelerate.state import AcceleratorState

    from arner.eval.training import train
    from arner.train.loop import mixed_precision, read_log

    AcceleratorState._reset_state(reset_partial_state=True)
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


def run_trainer(base: Path, tokenizer, features: list[dict], cfg, out: Path) -> dict:
    """The plain `Trainer`, as examples/pytorch/token-classification/run_ner.py sets it up by default."""
    import datasets
    from accelerate.state import AcceleratorState
    from transformers import (
        AutoModelForTokenClassification,
        DataCollatorForTokenClassification,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    class EpochTimer(TrainerCallback):
        def __init__(self):
            self.begin, self.seconds, self.steps = 0.0, [], []

        def on_epoch_begin(self, args, state, control, **kwargs):
            sync()
            self.begin, self.first_step = time.perf_counter(), state.global_step

        def on_epoch_end(self, args, state, control, **kwargs):
            sync()
            self.seconds.append(time.perf_counter() - self.begin)
            self.steps.append(state.global_step - self.first_step)

    collator = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=None)  # run_ner: 8 only with fp16
    padded = [0]

    def collate(batch):  # counts the padded tokens the model sees; otherwise the example's collator
        out = collator(batch)
        padded[0] += out["input_ids"].numel()
        return out

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
        timer = EpochTimer()
        data = datasets.Dataset.from_dict({"input_ids": [f["input_ids"] for f in features], "labels": [f["labels"] for f in features]})
        trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collate, callbacks=[timer])
        wall, _ = timed(trainer.train)
    return {
        "epoch_seconds": timer.seconds,
        "epoch_steps": timer.steps,
        "wall_seconds": wall,
        "memory": mem.to_json(),
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "padded_tokens_all_epochs": padded[0],
        "optimizer": str(args.optim.value if hasattr(args.optim, "value") else args.optim),
        "attention": model.config._attn_implementation,
    }


def our_padded_tokens(lengths: list[int], cfg, epochs: range) -> int:
    """Tokens (padding included) our loop feeds the model in `epochs`, from its own batch sampler."""
    from arner.train.loop import EpochBatches

    sampler = EpochBatches(lengths, cfg.batch_size, cfg.seed, cfg.group_by_length)
    total = 0
    for e in epochs:
        sampler.set_epoch(e)
        m = cfg.pad_to_multiple_of
        total += sum(-(-max(lengths[i] for i in b) // m) * m * len(b) for b in sampler.batches())
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
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from arner.train.data import window_examples

    if epochs < 2:
        raise ValueError("--epochs must be >= 2: the first epoch is a warm-up")
    if repeats < 1:
        raise ValueError("--repeats must be >= 1")
    docs = corpus.load(annotations)
    base_cfg = load_bench_config(model, config)
    with tempfile.TemporaryDirectory(prefix="arner-bench-") as tmp:
        tmp = Path(tmp)
        base = build_model(model, [d.text for d in docs], base_cfg, tmp / "base", seed)
        tokenizer = AutoTokenizer.from_pretrained(str(base))
        corpus.save(repeat_documents(docs, tokenizer, tokens, seed), tmp / "data")
        overrides = [f"model={base}", f"annotations={tmp / 'data'}", f"epochs={epochs}", f"seed={seed}", "progress_bar=false"]
        cfg = load_bench_config(model, config, overrides + ([f"batch_size={batch_size}"] if batch_size else []))
        data = corpus.load(cfg.annotations)
        features = [ex for d in data for ex in window_examples(tokenizer, d, cfg.max_length, cfg.stride, cfg.label_all_subwords)]
        lengths = [len(f["input_ids"]) for f in features]
        seq_len = sum(n * n for n in lengths) / sum(lengths)  # token-weighted: the length each token attends over
        probe = AutoModelForTokenClassification.from_pretrained(str(base), num_labels=len(TAG2ID))
        flops, n_params = flops_per_token(probe, seq_len), sum(p.numel() for p in probe.parameters())
        del probe
        load_start = os.getloadavg()
        runs = [(run_ours(cfg, tmp / "ours"), run_trainer(base, tokenizer, features, cfg, tmp / "trainer")) for _ in range(repeats)]
        load_end = os.getloadavg()

    def seconds(run: dict) -> float:  # epochs 2.. (epoch 1 is the warm-up)
        return sum(run["epoch_seconds"][1:])

    ours = min((o for o, _ in runs), key=seconds)  # each side's best repeat
    hf = min((h for _, h in runs), key=seconds)
    steady = range(1, epochs)
    n, tokens_epoch, steps_epoch = len(steady), sum(lengths), -(-len(features) // cfg.batch_size)
    peak = peak_tflops()
    ours_padded = our_padded_tokens(lengths, cfg, steady)
    hf_padded = hf["padded_tokens_all_epochs"] * n // epochs  # random batches: the mean over all epochs
    ours_row = summarize(seconds(ours), tokens_epoch * n, len(features) * n, steps_epoch * n, ours_padded, flops, peak, ours["memory"])
    hf_row = summarize(seconds(hf), tokens_epoch * n, len(features) * n, sum(hf["epoch_steps"][1:]), hf_padded, flops, peak, hf["memory"])
    ratio = ours_row["tokens_per_second"] / hf_row["tokens_per_second"]
    device = device_name()
    targets = [{"target": "train tokens/s >= 1.0 x Trainer (CPU)", "value": round(ratio, 3), "reached": ratio >= 1.0}]
    if device != "cpu":
        targets = [{"target": "train tokens/s >= 2 x Trainer (GPU)", "value": round(ratio, 3), "reached": ratio >= 2.0}]
        if model == "bert-base" and cfg.max_length == 512:
            mfu = ours_row["mfu"]
            targets.append(
                {"target": "MFU >= 35% (BERT-base, max length 512, bf16)", "value": mfu, "reached": None if mfu is None else mfu >= 0.35}
            )
    report = {
        "bench": "train",
        "name": name or f"train-{model}",
        "command": command,
        "device": device,
        "machine": machine(),
        "versions": versions(),
        "model": {"name": model, "parameters": n_params, "shape": ARABERT_V02 if model == "bert-base" else vars(cfg.tiny)},
        "config": {
            k: getattr(cfg, k) for k in ("max_length", "stride", "batch_size", "epochs", "group_by_length", "pad_to_multiple_of", "seed")
        },
        "data": {
            "documents": len(data),
            "tokens_target": tokens,
            "subword_tokens": sum(token_counts(tokenizer, [d.text for d in data])),
            "windows": len(features),
            "window_tokens_per_epoch": tokens_epoch,
            "mean_window_length": round(tokens_epoch / len(features), 1),
            "token_weighted_window_length": round(seq_len, 1),
            "steps_per_epoch": steps_epoch,
        },
        "measured_epochs": f"2-{epochs} (epoch 1 is a warm-up)",
        "repeats": repeats,
        "repeat_tokens_per_second": [
            {"ours": round(tokens_epoch * n / seconds(o), 1), "trainer": round(tokens_epoch * n / seconds(h), 1)} for o, h in runs
        ],
        "load_average": {"start": load_start, "end": load_end},
        "flops_per_token": flops,
        "peak_bf16_tflops": peak,
        "ours": ours_row
        | {k: ours[k] for k in ("precision", "length_grouping", "pad_to_multiple_of", "epoch_seconds", "epoch_tokens", "wall_seconds")},
        "trainer": hf_row | {k: hf[k] for k in ("precision", "optimizer", "attention", "epoch_seconds", "epoch_steps", "wall_seconds")},
        "ratio_tokens_per_second": round(ratio, 3),
        "targets": targets,
    }
    write_report(report, out, train_markdown(report))
    return report


# -- inference -------------------------------------------------------------------------------


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


def count_entities(result) -> int:
    return sum(len(r) for r in result)


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
    command: str = "",
) -> dict:
    from transformers import AutoTokenizer, pipeline

    from arner.inference import Tagger, resolve_device

    # the pipeline sets this on its first call when unset; set it first so both sides tokenize alike throughout
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    docs = corpus.load(annotations)
    cfg = load_bench_config(model, config)
    dev = resolve_device(device)
    tagger_default = inspect.signature(Tagger.from_pretrained).parameters["batch_size"].default
    with tempfile.TemporaryDirectory(prefix="arner-bench-") as tmp:
        tmp = Path(tmp)
        base = build_model(model, [d.text for d in docs], cfg, tmp / "base", seed)
        folder, head = classifier_folder(base, tmp / "model", docs, seed)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        texts = [d.text for d in repeat_documents(docs, tokenizer, tokens, seed)]
        n_tokens = sum(token_counts(tokenizer, texts))
        tagger = Tagger.from_pretrained(folder, device=str(dev), batch_size=tagger_default, stride=cfg.stride)
        pipe = pipeline("token-classification", model=str(folder), aggregation_strategy="first", stride=cfg.stride, device=dev)
        dtypes = {"tagger": str(next(tagger.model.parameters()).dtype), "pipeline": str(next(pipe.model.parameters()).dtype)}

        def run_tagger(ts, b):
            tagger.batch_size = b
            return tagger.predict(ts)

        def run_pipe(ts, b):
            return pipe(ts, batch_size=b)

        systems = {"tagger": run_tagger, "pipeline": run_pipe}
        forward = {"tagger": ForwardTimer(tagger.model), "pipeline": ForwardTimer(pipe.model)}

        def measure(points: list[tuple[str, list[str], int, int]]) -> list[dict]:
            """Each (system, texts, batch size, tokens) point; with repeats, whole rounds over all points
            (so a burst of load elsewhere does not hit every try of one point), keeping each point's best."""
            seconds, in_model, positions = [float("inf")] * len(points), [0.0] * len(points), [0] * len(points)
            found, memory = [0] * len(points), [0.0] * len(points)
            for _ in range(repeats):
                for k, (system, ts, b, _n) in enumerate(points):
                    systems[system](ts[: max(1, min(len(ts) // 4, b))], b)  # warm-up at this batch size (kernels, allocator)
                    forward[system].seconds, forward[system].positions = 0.0, 0
                    with PeakMemory() as mem:
                        t, result = timed(systems[system], ts, b)
                    if t < seconds[k]:
                        seconds[k], in_model[k], positions[k] = t, forward[system].seconds, forward[system].positions
                    found[k] = count_entities(result)
                    memory[k] = max(memory[k], mem.cuda_mb if mem.cuda_mb is not None else mem.rss_mb)
            return [
                {
                    "batch_size": b,
                    "documents": len(ts),
                    "seconds": round(t, 4),
                    "documents_per_second": round(len(ts) / t, 3),
                    "tokens_per_second": round(n / t, 1),
                    "entities_per_document": round(e / len(ts), 2),
                    "peak_memory_mb": round(m, 1),
                    "model_forward_share": round(f / t, 4),
                    "model_positions_per_token": round(q / n, 3),
                }
                for (_s, ts, b, n), t, f, q, e, m in zip(points, seconds, in_model, positions, found, memory)
            ]

        load_start = os.getloadavg()
        sizes = sorted(set(batch_sizes) | {1, tagger_default})
        rows = measure([(s, texts, b, n_tokens) for s in systems for b in sizes])
        sweep = {s: rows[i * len(sizes) : (i + 1) * len(sizes)] for i, s in enumerate(systems)}
        best = {s: max(rows, key=lambda r: r["documents_per_second"]) for s, rows in sweep.items()}
        default = {"tagger": next(r for r in sweep["tagger"] if r["batch_size"] == tagger_default), "pipeline": sweep["pipeline"][0]}

        stream = [d.text for d in repeat_documents(docs, tokenizer, max(length_tokens or tokens, 2 * max(lengths)), seed + 1)]
        cuts = [cut_texts(stream, tokenizer, L, length_tokens or tokens) for L in lengths]
        points = [(s, ts, best[s]["batch_size"], sum(token_counts(tokenizer, ts))) for s in systems for ts in cuts]
        rows = measure(points)
        by_length = {
            s: [{"length": L} | r for L, r in zip(lengths, rows[i * len(lengths) : (i + 1) * len(lengths)])] for i, s in enumerate(systems)
        }

    load_end = os.getloadavg()
    ratio_default = default["tagger"]["documents_per_second"] / default["pipeline"]["documents_per_second"]
    ratio_best = best["tagger"]["documents_per_second"] / best["pipeline"]["documents_per_second"]
    dname = device_name()
    goal = 2.0 if dname == "cpu" else 5.0
    report = {
        "bench": "infer",
        "name": name or f"infer-{model}",
        "command": command,
        "device": dname,
        "machine": machine(),
        "versions": versions(),
        "model": {"name": model, "parameters": sum(p.numel() for p in tagger.model.parameters()), **head},
        "dtype": dtypes,
        "window": {"max_length": tagger.max_length, "stride": tagger.stride, "pipeline_model_max_length": pipe.tokenizer.model_max_length},
        "data": {
            "documents": len(texts),
            "tokens_target": tokens,
            "subword_tokens": n_tokens,
            "mean_document_tokens": round(n_tokens / len(texts), 1),
        },
        "tagger_default": default["tagger"],
        "tagger_best": best["tagger"],
        "pipeline_default": default["pipeline"],
        "pipeline_best": best["pipeline"],
        "ratio_default": round(ratio_default, 3),
        "ratio_best": round(ratio_best, 3),
        "repeats": repeats,
        "load_average": {"start": load_start, "end": load_end},
        "batch_sweep": sweep,
        "length_sweep": by_length,
        "targets": [
            {
                "target": f"infer documents/s >= {goal:g} x pipeline at its best batch size ({'CPU' if dname == 'cpu' else 'GPU'})",
                "value": round(ratio_best, 3),
                "reached": ratio_best >= goal,
            },
            {
                "target": f"infer documents/s >= {goal:g} x pipeline at its default batching",
                "value": round(ratio_default, 3),
                "reached": ratio_default >= goal,
            },
        ],
    }
    folder_out = Path(out) / dname
    plot(report, folder_out / f"{report['name']}.png")
    write_report(report, out, infer_markdown(report))
    return report


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for system, style in (("tagger", "o-"), ("pipeline", "s--")):
        rows = report["batch_sweep"][system]
        a.plot([r["batch_size"] for r in rows], [r["tokens_per_second"] for r in rows], style, label=system)
        rows = report["length_sweep"][system]
        b.plot(
            [r["length"] for r in rows], [r["documents_per_second"] for r in rows], style, label=f"{system} (batch {rows[0]['batch_size']})"
        )
    a.set(xscale="log", xlabel="batch size (windows)", ylabel="tokens/s", title="throughput vs batch size (full articles)")
    b.set(xscale="log", yscale="log", xlabel="document length (subwords)", ylabel="documents/s", title="throughput vs document length")
    for ax, key, sweep in ((a, "batch_size", "batch_sweep"), (b, "length", "length_sweep")):
        ticks = [r[key] for r in report[sweep]["tagger"]]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    a.set_ylim(bottom=0)
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"arner Tagger vs transformers pipeline: {report['model']['name']} on {report['device']}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def command_line(bench: str, options: dict) -> str:
    """The `arner bench ...` command that reproduces a run (every option spelled out)."""
    import shlex

    parts = ["arner", "bench", bench]
    for key, value in options.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        parts += [f"--{key.replace('_', '-')}", str(value)]
    return shlex.join(parts)


# -- reports ---------------------------------------------------------------------------------


def write_report(report: dict, out: Path, markdown: str) -> None:
    folder = Path(out) / report["device"]
    atomic.write_text(folder / f"{report['name']}.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    atomic.write_text(folder / f"{report['name']}.md", markdown)


def _header(report: dict, title: str) -> list[str]:
    m, v = report["machine"], report["versions"]
    hw = f"{m['cpu']}, {m['cpu_cores']} cores ({m['torch_threads']} torch threads), {m['memory_gb']} GiB"
    if m["gpu"]:
        hw += f"; GPU {m['gpu']} ({m['gpu_memory_gb']} GiB, CUDA {m['cuda']})"
    return [
        f"# {title}",
        "",
        f"`{report['command']}`",
        "",
        f"Machine: {hw}. Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".",
        "",
        f"Load average (1 min) at start and end: {report['load_average']['start'][0]:.2f}, {report['load_average']['end'][0]:.2f} "
        f"(anything else running on the machine slows both sides); best of {report['repeats']} repeat(s) per figure.",
        "",
    ]


def _targets(report: dict) -> list[str]:
    lines = ["## Targets", ""]
    for t in report["targets"]:
        state = "not measurable here" if t["reached"] is None else "**reached**" if t["reached"] else "**missed**"
        lines.append(f"- {t['target']}: {t['value']} → {state}")
    return lines + [""]


def train_markdown(r: dict) -> str:
    d, o, h = r["data"], r["ours"], r["trainer"]

    def row(label, x):
        mfu = f"{x['mfu']:.1%}" if x["mfu"] is not None else "n/a (CPU)" if r["device"] == "cpu" else "n/a (unknown peak)"
        return (
            f"| {label} | {x['precision']} | {x['tokens_per_second']:,.0f} | {x['sequences_per_second']:.2f} "
            f"| {x['step_seconds'] * 1000:,.1f} | {x['padding_fraction']:.1%} | {x['peak_memory_mb']:,.0f} | {mfu} |"
        )

    mem = "CUDA max allocated" if r["device"] != "cpu" else "peak RSS of the process during that side's run"
    lines = _header(r, f"Training throughput: {r['model']['name']} on {r['device']}") + [
        f"Model `{r['model']['name']}` ({r['model']['parameters']:,} parameters, random weights). Data: {d['documents']} whole articles "
        f"(the five annotated ones, repeated and shuffled; {d['subword_tokens']:,} subwords) → {d['windows']} windows of at most "
        f"{r['config']['max_length']} subwords (stride {r['config']['stride']}), mean {d['mean_window_length']}, batch size "
        f"{r['config']['batch_size']}, {d['steps_per_epoch']} steps per epoch. Measured: epochs {r['measured_epochs']}.",
        "",
        "| loop | precision | real tokens/s | sequences/s | step ms | padding | peak memory MB | MFU |",
        "|---|---|---|---|---|---|---|---|",
        row("arner (`arner.train.finetune.train`)", o),
        row("HF `Trainer` (run_ner.py defaults)", h),
        "",
        f"**Ratio (tokens/s, arner / Trainer): {r['ratio_tokens_per_second']:.2f}x.** Each repeat (arner / Trainer tokens/s): "
        + ", ".join(f"{x['ours']:,.0f} / {x['trainer']:,.0f}" for x in r["repeat_tokens_per_second"])
        + ".",
        "",
        f"Real tokens exclude padding (special tokens included). Peak memory: {mem}. FLOPs per token "
        f"{r['flops_per_token'] / 1e6:,.1f} MFLOP (6 x non-embedding parameters + 12 x layers x hidden x "
        f"{d['token_weighted_window_length']}, the token-weighted window length). Trainer: optimizer {h['optimizer']}, "
        f"attention {h['attention']}, random sampling, `DataCollatorForTokenClassification` without padding to a multiple. "
        f"arner: length-grouped batches {o['length_grouping']}, padding to a multiple of {o['pad_to_multiple_of']}.",
        "",
        "Where the difference can come from (measured): precision "
        f"{o['precision']} vs {h['precision']}; padding {o['padding_fraction']:.1%} vs {h['padding_fraction']:.1%} of the tokens "
        "fed to the model; the arithmetic per real token is otherwise the same model and the same windows.",
        "",
    ]
    return "\n".join(lines + _targets(r))


def infer_markdown(r: dict) -> str:
    d, m, tb, pb = r["data"], r["model"], r["tagger_best"], r["pipeline_best"]

    def row(label, x):
        return (
            f"| {label} | {x['batch_size']} | {x['documents_per_second']:,.2f} | {x['tokens_per_second']:,.0f} "
            f"| {x['model_forward_share']:.0%} | {x['entities_per_document']} | {x['peak_memory_mb']:,.0f} |"
        )

    def table(sweep: str, first: str, key: str) -> list[str]:
        lines = [f"| {first} | documents | Tagger docs/s | pipeline docs/s | ratio |", "|---|---|---|---|---|"]
        for t, p in zip(r[sweep]["tagger"], r[sweep]["pipeline"]):
            a, b = t["documents_per_second"], p["documents_per_second"]
            lines.append(f"| {t[key]} | {t['documents']} | {a:,.2f} | {b:,.2f} | {a / b:.2f} |")
        return lines

    sweep, by_len = table("batch_sweep", "batch size", "batch_size"), table("length_sweep", "length (subwords)", "length")
    lines = _header(r, f"Inference throughput: {r['model']['name']} on {r['device']}") + [
        f"Model `{m['name']}` ({m['parameters']:,} parameters, random weights; O logit {m['o_bias']:+.3f} so that "
        f"{m['entity_word_share']:.1%} of tokens are tagged as entities, the share of words inside spans in the annotations). "
        f"Texts: {d['documents']} whole articles ({d['subword_tokens']:,} subwords, mean {d['mean_document_tokens']}), "
        f"windows of {r['window']['max_length']} subwords with stride {r['window']['stride']} on both sides. "
        f"dtype: Tagger {r['dtype']['tagger']}, "
        f"pipeline {r['dtype']['pipeline']}.",
        "",
        "| system | batch size | documents/s | tokens/s | time in model forward | entities/doc | peak memory MB |",
        "|---|---|---|---|---|---|---|",
        row("Tagger, default batch size", r["tagger_default"]),
        row("Tagger, best batch size", r["tagger_best"]),
        row("pipeline, default batching", r["pipeline_default"]),
        row("pipeline, best batch size", r["pipeline_best"]),
        "",
        f"**Ratio (documents/s, Tagger / pipeline): {r['ratio_default']:.2f}x at default settings, "
        f"{r['ratio_best']:.2f}x each at its best batch size.**",
        "",
        "Throughput against batch size (all texts):",
        "",
        *sweep,
        "",
        "Throughput against document length (each at its best batch size):",
        "",
        *by_len,
        "",
        f"![throughput]({r['name']}.png)",
        "",
        "Tagger tokenizes all texts in one call, sorts the windows of all texts by length into batches and decodes words "
        "vectorized; the pipeline tokenizes each text on its own, batches consecutive windows in text order (no sorting by length) "
        "and aggregates words in Python. "
        "Entities per document differ because the pipeline's words include punctuation. "
        f"At its best batch size the pipeline spends {pb['model_forward_share']:.0%} of its time in the model's forward, so faster code "
        f"outside the model can make the Tagger at most {1 / max(pb['model_forward_share'], 1e-9):.1f}x faster; beyond that the gain "
        "must come from running the model on fewer positions or faster (precision). Positions run through the model per document "
        f"token (special tokens, window overlap, padding): Tagger {tb['model_positions_per_token']:.2f}, pipeline "
        f"{pb['model_positions_per_token']:.2f} (each at its best batch size).",
        "",
    ]
    return "\n".join(lines + _targets(r))
