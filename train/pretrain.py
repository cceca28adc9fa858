"""`arner pretrain`: masked-language-model pretraining of a BERT on raw text (the loop is `loop.fit`).

From scratch (`model: scratch`), a WordPiece vocabulary is learned from the text first
(`model.train_wordpiece`) and a `BertForMaskedLM` is built from the config's `bert` shape; from
a checkpoint (a local folder or a hub id, resolved like `arner train`'s `model:`), its tokenizer
is kept and its weights continue training (domain-adaptive pretraining).

The inputs are streamed: plain text (one unit a line), `.jsonl` (`text` field of each record)
and the token column of CoNLL files (one unit a sentence), each optionally gzipped. Units are
tokenized in chunks and packed, a `[SEP]` after each, into `[CLS] ... [SEP]` rows of exactly
`max_length` subwords (only the very last row can be shorter), appended to a file under
`OUTPUT/work/` that training reads through a numpy memmap, so a corpus larger than memory works.
The packed data and the learned tokenizer are cached there under a key of the inputs and
settings, so a resumed run reads exactly the same rows.

Masking is dynamic (a new mask every time a row is drawn): `DataCollatorForLanguageModeling`,
or with `whole_word_masking` a collator that picks whole words (a word is a subword and the
`##` continuations after it) and masks all their subwords. The MLM head runs on the masked
positions only, which saves most of the output-layer cost; the loss is the same.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import json
import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from arner.core import atomic
from arner.core.corpus import AnnotationError, Problem
from arner.core.public import SKIP_TOKENS
from arner.train.config import SCRATCH, ConfigError, PretrainConfig, TextInput
from arner.train.loop import fit, make_accelerator, prepare_output, publish

CHUNK_UNITS = 1000  # units tokenized per call while packing


# ---------------------------------------------------------------- reading text


def input_kind(path: str | Path) -> str:
    """conll, jsonl or text, from the file name (a trailing .gz is read through gzip)."""
    name = str(path).lower().removesuffix(".gz")
    if name.endswith(".conll"):
        return "conll"
    if name.endswith(".jsonl"):
        return "jsonl"
    return "text"


def _open(path: Path):
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its end) of a UTF-8 file, gzipped or not."""
    n = 0
    try:
        with _open(path) as f:
            for n, line in enumerate(f, 1):
                yield n, line.rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise AnnotationError([Problem(str(path), f"not UTF-8 ({e.reason})", n + 1)]) from None
    except (OSError, EOFError) as e:  # a truncated or corrupt .gz
        raise AnnotationError([Problem(str(path), f"cannot be read: {e}", n + 1)]) from None


def read_units(path: str | Path) -> Iterator[tuple[int, str]]:
    """(unit index, text) of one input, streamed: text lines, `.jsonl` records' `text`, CoNLL sentences' tokens.

    Indices count every line of a text or `.jsonl` file (blank ones too) and every sentence of a
    CoNLL file as `arner.core.public.read_conll` does (`-DOCSTART-` and `$#$` lines skipped), so an
    `exclude` file written for `arner.core.public` leaves out the same sentences here.
    """
    path = Path(path)
    kind = input_kind(path)
    if kind == "text":
        for n, line in _lines(path):
            yield n - 1, line
    elif kind == "jsonl":
        for n, line in _lines(path):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise AnnotationError([Problem(str(path), f"not valid JSON: {e.msg}", n)]) from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise AnnotationError([Problem(str(path), 'expected a JSON object with a string "text" field', n)])
            yield n - 1, record["text"]
    else:
        tokens: list[str] = []
        index = 0
        for _, line in _lines(path):
            fields = line.split()
            if not fields:
                if tokens:
                    yield index, " ".join(tokens)
                    index += 1
                tokens = []
            elif fields[0] not in SKIP_TOKENS:
                tokens.append(fields[0])
        if tokens:
            yield index, " ".join(tokens)


def _excluded(source: TextInput) -> set[int]:
    if not source.exclude:
        return set()
    path = Path(source.exclude)
    if not path.is_file():
        raise AnnotationError([Problem(str(path), f"exclude file of {source.path} not found")])
    out = set()
    for n, line in _lines(path):
        for x in line.split():
            if not x.isdigit():
                raise AnnotationError([Problem(str(path), f"expected 0-based unit indices, got {x!r}", n)])
            out.add(int(x))
    return out


def iter_texts(source: TextInput, counts: dict | None = None) -> Iterator[str]:
    """The non-blank units of one input, minus its excluded ones; `counts` gets units and chars read."""
    drop = _excluded(source)
    for index, unit in read_units(source.path):
        if index in drop or not unit.strip():
            continue
        if counts is not None:
            counts["units"] = counts.get("units", 0) + 1
            counts["chars"] = counts.get("chars", 0) + len(unit)
        yield unit


def as_inputs(texts: Sequence[str | TextInput | Path]) -> list[TextInput]:
    return [t if isinstance(t, TextInput) else TextInput(path=str(t)) for t in texts]


def check_inputs(inputs: Sequence[TextInput], where: str) -> None:
    if not inputs:
        raise ConfigError(f"{where}: no text to pretrain on: give --text PATH... or list `text:` in the config")
    problems = [Problem(p, "text input not found") for x in inputs for p in (x.path, x.exclude) if p and not Path(p).is_file()]
    if problems:
        raise AnnotationError(problems)


def all_texts(inputs: Sequence[TextInput], stats: list[dict] | None = None) -> Iterator[str]:
    """Every unit of every input, in order (per-input counts appended to `stats`)."""
    for source in inputs:
        counts = {"path": source.path, "exclude": source.exclude or None, "units": 0, "chars": 0}
        if stats is not None:
            stats.append(counts)
        yield from iter_texts(source, counts)


def _batched(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


# ---------------------------------------------------------------- packing


def pack(units: Iterable[str], tokenizer, max_length: int, out: Path, max_tokens: int = 0, log=None, extra: dict | None = None) -> dict:
    """Tokenize `units` in chunks and write `[CLS] body [SEP]` rows of `max_length` to `out/tokens.bin`.

    The body is the concatenation of every unit's subwords followed by `[SEP]`; every row is
    full except possibly the last. With `max_tokens`, reading stops once ceil(max_tokens / body)
    full rows are written. Writes `tokens.bin` (rows x max_length, row-major, padded with
    `[PAD]`), `lengths.npy` and `manifest.json` (plus the `extra` entries, taken once the units are read); returns the manifest.
    """
    body = max_length - 2
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max else np.int32
    limit = math.ceil(max_tokens / body) if max_tokens else None
    out.mkdir(parents=True, exist_ok=True)
    rows, text_tokens, pending = 0, 0, np.empty(0, dtype=np.int64)
    lengths: list[int] = []
    capped = False
    started = time.perf_counter()

    def write(f, block: np.ndarray, n: int) -> None:
        full = np.empty((n, max_length), dtype=dtype)
        full[:, 0], full[:, -1] = cls_id, sep_id
        full[:, 1:-1] = block.reshape(n, body)
        full.tofile(f)
        lengths.extend([max_length] * n)

    with (out / "tokens.bin").open("wb") as f:
        for chunk in _batched(units, CHUNK_UNITS):
            encoded = tokenizer(chunk, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False)["input_ids"]
            pieces = [pending]
            for ids in encoded:
                if ids:
                    pieces += [np.asarray(ids, dtype=np.int64), np.asarray([sep_id], dtype=np.int64)]
                    text_tokens += len(ids)
            pending = np.concatenate(pieces)
            n = len(pending) // body
            if limit is not None:
                n = min(n, limit - rows)
            if n:
                write(f, pending[: n * body], n)
                rows += n
                pending = pending[n * body :]
            if limit is not None and rows >= limit:
                capped = True
                break
            if log and rows and rows % 10000 < n:
                log(f"packed {rows:,} rows ({time.perf_counter() - started:.0f} s)")
        if not capped:
            if len(pending) and pending[-1] == sep_id:
                pending = pending[:-1]
            if len(pending):
                last = np.full(max_length, pad_id, dtype=dtype)
                last[0], last[1 : 1 + len(pending)], last[1 + len(pending)] = cls_id, pending, sep_id
                last.tofile(f)
                lengths.append(len(pending) + 2)
                rows += 1
    np.save(out / "lengths.npy", np.asarray(lengths, dtype=np.int32))
    manifest = {
        "rows": rows,
        "max_length": max_length,
        "dtype": np.dtype(dtype).name,
        "tokens": int(sum(lengths)),
        "text_tokens_read": text_tokens,
        "capped": capped,
        "seconds": round(time.perf_counter() - started, 1),
        **(extra or {}),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return manifest


class PackedRows(torch.utils.data.Dataset):
    """Map-style view of packed rows (a numpy memmap), optionally a subset of them."""

    def __init__(self, folder: Path, special_ids: Sequence[int], indices: np.ndarray | None = None):
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        self.all_lengths = np.load(folder / "lengths.npy")
        shape = (manifest["rows"], manifest["max_length"])
        self.tokens = np.memmap(folder / "tokens.bin", dtype=manifest["dtype"], mode="r", shape=shape) if manifest["rows"] else None
        self.indices = np.arange(manifest["rows"]) if indices is None else np.asarray(indices)
        self.special = np.asarray(sorted(set(special_ids)), dtype=np.int64)

    @property
    def lengths(self) -> list[int]:
        return self.all_lengths[self.indices].tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        row = int(self.indices[i])
        ids = np.asarray(self.tokens[row, : self.all_lengths[row]], dtype=np.int64)
        return {"input_ids": ids.tolist(), "special_tokens_mask": np.isin(ids, self.special).astype(np.int64).tolist()}


def split_heldout(rows: int, heldout: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) row indices: `heldout` rows spread evenly over the corpus."""
    if heldout and heldout >= rows:
        raise ConfigError(f"heldout_sequences ({heldout}) must be less than the packed rows ({rows}): give more text or hold out fewer")
    held = np.unique(np.linspace(0, rows - 1, heldout).round().astype(np.int64)) if heldout else np.empty(0, dtype=np.int64)
    return np.setdiff1d(np.arange(rows), held), held


# ---------------------------------------------------------------- masking and the model


def make_collator(tokenizer, config: PretrainConfig, seed: int | None = None):
    """The MLM collator: token-level (`DataCollatorForLanguageModeling`) or whole-word."""
    from transformers import DataCollatorForLanguageModeling

    cls = whole_word_collator_class() if config.whole_word_masking else DataCollatorForLanguageModeling
    return cls(
        tokenizer,
        mlm_probability=config.mlm_probability,
        mask_replace_prob=config.mask_replace_prob,
        random_replace_prob=config.random_replace_prob,
        pad_to_multiple_of=config.pad_to_multiple_of,
        seed=seed,
    )


@functools.cache
def whole_word_collator_class():
    """`DataCollatorForLanguageModeling` that masks whole words, found by the `##` continuation prefix.

    Each word is picked with probability `mlm_probability` and all its subwords are then masked
    (each replaced by [MASK], by a random subword or kept, as `mask_replace_prob` and
    `random_replace_prob` say). Works on packed rows, which have no word ids: a subword starting
    with `##` continues the word before it, unless a special token comes between.
    """
    from transformers import DataCollatorForLanguageModeling

    class WholeWordMaskCollator(DataCollatorForLanguageModeling):
        def __post_init__(self):
            super().__post_init__()
            vocab = self.tokenizer.get_vocab()
            self.continuation = torch.zeros(max(len(self.tokenizer), max(vocab.values()) + 1), dtype=torch.bool)
            self.continuation[[i for t, i in vocab.items() if t.startswith("##")]] = True

        def word_ids(self, inputs: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
            """Per position, 1 + the index of its word in the row (special tokens are words of their own)."""
            after_special = torch.ones_like(special)
            after_special[:, 1:] = special[:, :-1]
            starts = ~self.continuation[inputs] | special | after_special
            return starts.long().cumsum(dim=1)

        def torch_mask_tokens(self, inputs, special_tokens_mask=None, offset_mapping=None):
            labels = inputs.clone()
            if special_tokens_mask is None:
                special_tokens_mask = torch.tensor(
                    [self.tokenizer.get_special_tokens_mask(v, already_has_special_tokens=True) for v in labels.tolist()]
                )
            special = special_tokens_mask.bool()
            word = self.word_ids(inputs, special)
            picked = torch.bernoulli(torch.full((inputs.shape[0], inputs.shape[1] + 1), self.mlm_probability), generator=self.generator)
            masked = picked.bool().gather(1, word) & ~special
            labels[~masked] = -100
            replaced = torch.bernoulli(torch.full(labels.shape, self.mask_replace_prob), generator=self.generator).bool() & masked
            inputs[replaced] = self.tokenizer.mask_token_id
            rest = 1 - self.mask_replace_prob
            if rest > 0 and self.random_replace_prob > 0:
                p = self.random_replace_prob / rest
                swap = torch.bernoulli(torch.full(labels.shape, p), generator=self.generator).bool() & masked & ~replaced
                words = torch.randint(len(self.tokenizer), labels.shape, dtype=torch.long, generator=self.generator)
                inputs[swap] = words[swap]
            return inputs, labels

    return WholeWordMaskCollator


class MaskedPositionsMLM(torch.nn.Module):
    """Wraps a `*ForMaskedLM`: the encoder runs on all positions, the MLM head on the masked ones only.

    The loss is the same mean cross-entropy over masked positions as the wrapped model's own;
    the output layer (hidden x vocabulary, most of a small model's cost) runs on about
    `mlm_probability` of the positions. A model whose head is not a single module beside its
    encoder is run whole.
    """

    def __init__(self, mlm):
        super().__init__()
        self.mlm = mlm
        base = mlm.base_model
        heads = [name for name, child in mlm.named_children() if child is not base]
        self.head_name = heads[0] if len(heads) == 1 else None

    def forward(self, input_ids, attention_mask=None, labels=None, **kwargs):
        from transformers.modeling_outputs import MaskedLMOutput

        if self.head_name is None or labels is None:
            return self.mlm(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        hidden = self.mlm.base_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)[0]
        picked = labels != -100
        logits = getattr(self.mlm, self.head_name)(hidden[picked])
        loss = torch.nn.functional.cross_entropy(logits.float(), labels[picked], reduction="sum") / picked.sum().clamp(min=1)
        return MaskedLMOutput(loss=loss, logits=logits)


def heldout_loss(model: MaskedPositionsMLM, data: PackedRows, collator, batch_size: int, device) -> dict:
    """Mean MLM loss on the held-out rows, with the same masks every time (the collator is seeded)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            batch = collator([data[i] for i in range(start, min(start + batch_size, len(data)))])
            batch = {k: v.to(device) for k, v in batch.items()}
            n = int((batch["labels"] != -100).sum())
            total += float(model(**batch).loss) * n
            count += n
    model.train(was_training)
    loss = total / max(count, 1)
    return {"mlm_loss": loss, "perplexity": math.exp(min(loss, 50)), "masked_tokens": count}


# ---------------------------------------------------------------- work folder


def _stat(path: str) -> list:
    st = Path(path).stat()
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def _key(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _cached_build(folder: Path, inputs: Sequence[TextInput], settings: dict, make, resume: bool, what: str) -> bool:
    """Reuse `folder` when its key (of the inputs' files and `settings`) is the same, else build it with `make(tmp)`.

    Returns whether it was reused. Resuming a run whose folder was built from other inputs or `what` is an error.
    """
    key = _key({"inputs": [[_stat(x.path), x.exclude and _stat(x.exclude)] for x in inputs], **settings})
    marker = folder / "key.txt"
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == key:
        return True
    if resume and folder.is_dir():
        raise ConfigError(f"{folder}: the text inputs or {what} changed since the run being resumed; run without --resume")
    with atomic.directory(folder) as tmp:
        make(tmp)
        (tmp / "key.txt").write_text(key, encoding="utf-8")
    return False


def tokenizer_fingerprint(tokenizer) -> str:
    return _key(sorted(tokenizer.get_vocab().items()))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_tokenizer(config: PretrainConfig, inputs: Sequence[TextInput], work: Path, resume: bool, base: str | None) -> str:
    """Where the tokenizer loads from: the checkpoint's, or a WordPiece learned from the text (cached in `work`)."""
    if base is not None:
        return base
    from arner.train.model import train_wordpiece

    folder = work / "tokenizer"

    def make(tmp: Path) -> None:
        texts, chars = [], 0
        for unit in all_texts(inputs):
            texts.append(unit)
            chars += len(unit)
            if chars >= config.tokenizer.max_chars:
                break
        _log(f"learning a {config.tokenizer.vocab_size}-subword WordPiece vocabulary from {len(texts):,} units ({chars:,} characters)")
        tokenizer = train_wordpiece(texts, config.tokenizer.vocab_size, config.tokenizer.min_frequency)
        tokenizer.save_pretrained(str(tmp))

    _cached_build(folder, inputs, {"tokenizer": dataclasses.asdict(config.tokenizer)}, make, resume, "tokenizer settings")
    return str(folder)


def prepare_data(config: PretrainConfig, inputs: Sequence[TextInput], tokenizer, work: Path, resume: bool) -> Path:
    """The packed rows in `work/data` (reused when the inputs, tokenizer and settings are the same)."""
    folder = work / "data"

    def make(tmp: Path) -> None:
        stats: list[dict] = []
        manifest = pack(all_texts(inputs, stats), tokenizer, config.max_length, tmp, config.max_tokens, log=_log, extra={"inputs": stats})
        _log(f"packed {manifest['rows']:,} rows of {config.max_length} ({manifest['tokens']:,} tokens) in {manifest['seconds']} s")

    settings = {"tokenizer": tokenizer_fingerprint(tokenizer), "max_length": config.max_length, "max_tokens": config.max_tokens}
    if _cached_build(folder, inputs, settings, make, resume, "settings"):
        _log(f"reusing the packed rows in {folder}")
    return folder


# ---------------------------------------------------------------- the command


def build_scratch(config: PretrainConfig, tokenizer):
    from transformers import BertForMaskedLM

    from arner.train.model import bert_config

    torch.manual_seed(config.seed)
    return BertForMaskedLM(bert_config(config.bert, len(tokenizer), tokenizer.pad_token_id))


def resolve_base(config: PretrainConfig, where: str, work: Path) -> str | None:
    """None for scratch; else a loadable folder or hub id (a hub id not to be had fails at once, as in `arner train`)."""
    if config.model == SCRATCH:
        return None
    from arner.train.model import resolve

    return resolve(config, where, [], work)  # only reads config.model for anything but "tiny"


def pretrain(
    config: PretrainConfig,
    texts: Sequence[str | TextInput | Path] | None,
    output: str | Path,
    resume: bool = False,
    config_path: str = "config",
) -> dict:
    """Pretrain, write a Hugging Face model folder (MLM head included) at `output`, return the metrics."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    started = time.perf_counter()
    logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)  # "Removed shared tensor" at each checkpoint: the tied MLM decoder
    output = Path(output)
    work = output / "work"
    base = resolve_base(config, config_path, work)  # first: a model that cannot be had fails at once
    inputs = as_inputs(texts) if texts else list(config.text)
    check_inputs(inputs, config_path)
    accelerator = make_accelerator(config)
    prepare_output(accelerator, output, resume)
    if accelerator.is_main_process:
        tokenizer_dir = prepare_tokenizer(config, inputs, work, resume, base)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        data_dir = prepare_data(config, inputs, tokenizer, work, resume)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        tokenizer_dir, data_dir = base or str(work / "tokenizer"), work / "data"
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if tokenizer.mask_token is None or tokenizer.cls_token is None or tokenizer.sep_token is None:
        raise ConfigError(f"{config_path}: the tokenizer of {config.model!r} has no [MASK], [CLS] or [SEP] token")
    if config.whole_word_masking and accelerator.is_main_process and not any(t.startswith("##") for t in tokenizer.get_vocab()):
        _log("warning: whole_word_masking finds words by the ## prefix of WordPiece, which this tokenizer lacks: every subword is a word")
    if base is None:
        mlm = build_scratch(config, tokenizer)
    else:
        mlm = AutoModelForMaskedLM.from_pretrained(base, attn_implementation="sdpa")
        if config.max_length > mlm.config.max_position_embeddings:
            raise ConfigError(f"{config_path}: max_length {config.max_length} > the model's {mlm.config.max_position_embeddings} positions")
    model = MaskedPositionsMLM(mlm)

    special = tokenizer.all_special_ids
    manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    train_rows, held_rows = split_heldout(manifest["rows"], config.heldout_sequences)
    if not len(train_rows):
        raise ConfigError(f"{config_path}: the text inputs gave no tokens to train on")
    train_data = PackedRows(data_dir, special, train_rows)
    held_data = PackedRows(data_dir, special, held_rows)
    collator = make_collator(tokenizer, config)

    def evaluate(m):
        return heldout_loss(m, held_data, make_collator(tokenizer, config, seed=config.seed), config.eval_batch_size, accelerator.device)

    train_lengths = train_data.lengths
    model, state = fit(
        accelerator,
        model,
        train_data,
        collator,
        config,
        output,
        resume,
        evaluate=evaluate if len(held_data) else None,
        desc="pretrain",
        lengths=train_lengths,
    )
    history = state["history"]
    tokens_per_epoch = int(sum(train_lengths))
    final = {
        "epochs_run": state["epoch"],
        "global_step": state["global_step"],
        "sequences": len(train_data),
        "heldout_sequences": len(held_data),
        "tokens_per_epoch": tokens_per_epoch,
        "tokens_seen": sum(r.get("tokens", tokens_per_epoch) for r in history),
        "first_loss": history[0]["loss"] if history else None,
        "final_loss": history[-1]["loss"] if history else None,
        "train_seconds": round(sum(r.get("seconds", 0.0) for r in history), 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    if history and "heldout" in history[-1]:
        final["first_heldout"] = history[0]["heldout"]
        final["heldout"] = history[-1]["heldout"]
    if accelerator.is_main_process:
        mlm = model.mlm
        meta = {
            "task": "masked-language-model pretraining (arner pretrain)",
            "config": config.to_dict(),
            "base_model": config.model if base is not None else "scratch (WordPiece learned from the text + random BertConfig)",
            "inputs": manifest.get("inputs", []),
            "data": {k: v for k, v in manifest.items() if k != "inputs"},
            "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
            "processes": accelerator.num_processes,
            "torch_threads": torch.get_num_threads(),
            "metrics": final,
        }
        publish(mlm, tokenizer, output, meta, config.max_length)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return final
