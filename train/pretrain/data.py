"""The data of `arner pretrain`: the tokenizer learned from the text (scratch) and the packed rows.

The rows are built with `datasets` as in transformers' `run_mlm_no_trainer.py`: a `Dataset` of
the text units (`Dataset.from_generator` over the inputs), a batched `map` that tokenizes them,
and a batched `map` that groups the subwords into rows. Unlike that script's `group_texts`, the
subwords left at the end of a batch are carried into the next batch instead of dropped, so every
row is `[CLS] ... [SEP]` of exactly `max_length` subwords (a `[SEP]` after each unit) but the very
last. Each step is written to Arrow files on disk a chunk at a time, so a corpus larger than memory works.

The work folder (`OUTPUT/work/`):

- `datasets/`: datasets' own cache: the units (keyed by `from_generator`'s arguments, which hold
  each input's path, size and mtime) and their subwords (keyed by those and the tokenizer's vocabulary);
- `tokenizer/`: the WordPiece learned from the text (scratch only);
- `data/`: `rows.arrow` (the packed rows) and `manifest.json` (what was read and packed).

`tokenizer/` and `data/` carry a `key.txt` of the inputs (path, size, mtime) and the settings that
made them: a rerun with the same key reuses them, and `--resume` refuses a key that changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from arner.core import atomic
from arner.core.corpus import AnnotationError
from arner.train.config import ConfigError, PretrainConfig, TextInput
from arner.train.pretrain.text import all_texts, input_stamps, iter_texts

if TYPE_CHECKING:
    from datasets import Dataset

CHUNK_UNITS = 1000  # units per batch of the tokenize and group maps
SHARD_UNITS = 10_000  # units per cached tokenize map (see tokenize_units)
ROWS = "rows.arrow"
ROWS_FORMAT = "datasets-1"  # in the data key: a work folder packed by an older arner is rebuilt, not misread


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _key(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def tokenizer_fingerprint(tokenizer) -> str:
    return _key(sorted(tokenizer.get_vocab().items()))


def cached_build(folder: Path, inputs: Sequence[TextInput], settings: dict, make: Callable[[Path], None], resume: bool, what: str) -> bool:
    """Reuse `folder` when its key (of the inputs' files and `settings`) is the same, else build it with `make(tmp)`.

    Returns whether it was reused. Resuming a run whose folder was built from other inputs or `what` is an error.
    """
    key = _key({"inputs": input_stamps(inputs), **settings})
    marker = folder / "key.txt"
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == key:
        return True
    if resume and folder.is_dir():
        raise ConfigError(f"{folder}: the text inputs or {what} changed since the run being resumed; run without --resume")
    with atomic.directory(folder) as tmp:
        make(tmp)
        (tmp / "key.txt").write_text(key, encoding="utf-8")
    return False


# ---------------------------------------------------------------- the tokenizer


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
        log(f"learning a {config.tokenizer.vocab_size}-subword WordPiece vocabulary from {len(texts):,} units ({chars:,} characters)")
        tokenizer = train_wordpiece(texts, config.tokenizer.vocab_size, config.tokenizer.min_frequency, config.tokenizer.alphabet_min_count)
        tokenizer.save_pretrained(str(tmp))

    cached_build(folder, inputs, {"tokenizer": config.tokenizer.to_dict()}, make, resume, "tokenizer settings")
    return str(folder)


# ---------------------------------------------------------------- units, subwords, rows


def unit_records(sources: list[dict]) -> Iterator[dict]:
    """The generator of the units dataset: each unit with the index of its input.

    Module-level so that datasets hashes it the same in every process; `sources` holds each
    input's stamp (path, size, mtime), so a changed file gives another cache entry.
    """
    for s in sources:
        for text in iter_texts(TextInput(path=s["path"], exclude=s["exclude"])):
            yield {"text": text, "source": s["index"]}


def units_dataset(inputs: Sequence[TextInput], cache_dir: Path) -> Dataset:
    from datasets import Dataset, Features, Value
    from datasets.exceptions import DatasetGenerationError

    stamps = input_stamps(inputs)
    sources = [{"index": i, "path": x.path, "exclude": x.exclude, "stamp": s} for i, (x, s) in enumerate(zip(inputs, stamps))]
    features = Features({"text": Value("string"), "source": Value("int32")})
    try:
        return Dataset.from_generator(unit_records, gen_kwargs={"sources": sources}, features=features, cache_dir=str(cache_dir))
    except DatasetGenerationError as e:  # datasets wraps what the generator raised: a bad input line names its file and line
        if isinstance(e.__cause__, AnnotationError):
            raise e.__cause__ from None
        raise


def tokenize_units(units: Dataset, tokenizer, key: str, capacity: int | None = None) -> Dataset:
    """The units' subwords (no special tokens), their count and the units' characters.

    Tokenized in shards of `SHARD_UNITS` contiguous units, each a cached `map` whose fingerprint is
    `key` (of the inputs and the vocabulary) and its first unit: datasets would otherwise hash the
    tokenizer object, and a run with another `max_tokens` or `max_length` reuses the shards. With
    `capacity` (the subwords the rows can hold under `max_tokens`), tokenizing stops after the shard
    that overflows it, so a cap on a large corpus tokenizes about what it keeps.
    """
    from datasets import concatenate_datasets

    def tokenize(batch: dict) -> dict:
        ids = tokenizer(batch["text"], add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        return {"input_ids": ids, "length": [len(x) for x in ids], "chars": [len(t) for t in batch["text"]]}

    shards, stream = [], 0
    for start in range(0, len(units), SHARD_UNITS):
        end = min(start + SHARD_UNITS, len(units))
        shard = units.select(range(start, end)).map(
            tokenize,
            batched=True,
            batch_size=CHUNK_UNITS,
            remove_columns=["text"],
            new_fingerprint=f"{key}-{start}",
            desc=f"tokenizing units {start:,}-{end:,}",
        )
        shards.append(shard)
        length = np.asarray(shard["length"])
        stream += int(np.where(length > 0, length + 1, 0).sum())  # each non-empty unit's subwords and its [SEP]
        if capacity is not None and stream - 1 > capacity:
            break
    return concatenate_datasets(shards)


class GroupTexts:
    """The group-texts step: a batch of tokenized units in, the `[CLS] body [SEP]` rows it completes out.

    The body is the stream of every unit's subwords, each followed by `[SEP]`. `Dataset.map` calls
    this on the batches in order in one process, so the subwords past the last full row of a batch
    (`pending`) start the next batch's first row; the batch holding the last unit also writes what is
    left as a shorter row. With `limit`, rows stop at that many (the rest of the units are passed over).
    """

    def __init__(self, max_length: int, cls_id: int, sep_id: int, units: int, limit: int | None = None):
        self.max_length, self.cls_id, self.sep_id, self.units, self.limit = max_length, cls_id, sep_id, units, limit
        self.pending = np.empty(0, dtype=np.int64)
        self.rows = 0

    def __call__(self, batch: dict, indices: list[int]) -> dict:
        body = self.max_length - 2
        sep = np.asarray([self.sep_id], dtype=np.int64)
        pieces = [self.pending]
        for ids in batch["input_ids"]:
            if ids:
                pieces += [np.asarray(ids, dtype=np.int64), sep]
        stream = np.concatenate(pieces)
        n = len(stream) // body
        if self.limit is not None:
            n = min(n, self.limit - self.rows)
        full = np.empty((n, self.max_length), dtype=np.int64)
        full[:, 0], full[:, -1] = self.cls_id, self.sep_id
        full[:, 1:-1] = stream[: n * body].reshape(n, body)
        out = list(full)
        self.rows += n
        self.pending = stream[n * body :] if self.limit is None or self.rows < self.limit else stream[:0]
        if indices[-1] == self.units - 1:
            tail = self.pending[:-1] if len(self.pending) and self.pending[-1] == self.sep_id else self.pending
            if len(tail):
                out.append(np.concatenate([[self.cls_id], tail, [self.sep_id]]))
                self.rows += 1
        return {"input_ids": out}


def count_read(tokens: Dataset, inputs: Sequence[TextInput], budget: int | None) -> dict:
    """Per input, the units (and their characters) whose subwords went into the rows, and their subwords.

    `budget` is the number of body subwords the rows hold when `max_tokens` capped them (None: not
    capped, every unit went in). Read in chunks of columns of numbers, never the subwords themselves.
    """
    n = len(inputs)
    units, chars = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.float64)
    stream = text_tokens = 0
    for batch in tokens.select_columns(["source", "length", "chars"]).with_format("numpy").iter(batch_size=100_000):
        source, length = batch["source"], batch["length"]
        step = np.where(length > 0, length + 1, 0)  # a unit's subwords and its [SEP]; an empty unit adds nothing
        start = stream + np.cumsum(step) - step
        keep = start < budget if budget is not None else np.ones(len(step), dtype=bool)
        units += np.bincount(source[keep], minlength=n)
        chars += np.bincount(source[keep], weights=batch["chars"][keep], minlength=n)
        text_tokens += int(length[keep].sum())
        stream += int(step.sum())
    stats = [{"path": x.path, "exclude": x.exclude or None, "units": int(u), "chars": int(c)} for x, u, c in zip(inputs, units, chars)]
    capped = budget is not None and stream - 1 > budget  # the stream's last [SEP] is never in a row
    return {"inputs": stats, "text_tokens_read": text_tokens, "capped": capped}


def row_lengths(rows: Dataset, max_length: int) -> list[int]:
    """The length of every row: `max_length`, but the last row's, which can be shorter."""
    lengths = [max_length] * len(rows)
    if lengths:
        lengths[-1] = len(rows[len(rows) - 1]["input_ids"])
    return lengths


def build_rows(config: PretrainConfig, inputs: Sequence[TextInput], tokenizer, work: Path, out: Path, where: str) -> dict:
    """Write the packed rows of `inputs` to `out/rows.arrow`; return the manifest (also written to `out/manifest.json`)."""
    import datasets

    started = time.perf_counter()
    if next(all_texts(inputs), None) is None:  # datasets cannot make a dataset of no units
        raise ConfigError(f"{where}: the text inputs have no text (every unit is blank or excluded)")
    units = units_dataset(inputs, work / "datasets")
    body = config.max_length - 2
    limit = math.ceil(config.max_tokens / body) if config.max_tokens else None
    tokens = tokenize_units(units, tokenizer, _key([input_stamps(inputs), tokenizer_fingerprint(tokenizer)]), limit and limit * body)
    dtype = "uint16" if len(tokenizer) <= np.iinfo(np.uint16).max else "int32"
    rows = tokens.map(
        GroupTexts(config.max_length, tokenizer.cls_token_id, tokenizer.sep_token_id, len(tokens), limit),
        batched=True,
        batch_size=CHUNK_UNITS,
        with_indices=True,
        remove_columns=tokens.column_names,
        features=datasets.Features({"input_ids": datasets.Sequence(datasets.Value(dtype))}),
        cache_file_name=str(out / ROWS),
        load_from_cache_file=False,
        desc="packing",
    )
    manifest = {
        "rows": len(rows),
        "max_length": config.max_length,
        "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
        "dtype": dtype,
        "tokens": sum(row_lengths(rows, config.max_length)),
        **count_read(tokens, inputs, limit * body if limit else None),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return manifest


def load_rows(folder: Path) -> tuple[Dataset, dict]:
    """The packed rows in `folder` (read from disk as needed) and their manifest."""
    from datasets import Dataset

    return Dataset.from_file(str(folder / ROWS)), json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def check_packed(folder: Path, tokenizer, max_length: int, where: str) -> Path:
    """A folder of packed rows given as `packed_rows`: there, made by this tokenizer, rows of `max_length`."""
    manifest_path = folder / "manifest.json"
    if not (folder / ROWS).is_file() or not manifest_path.is_file():
        raise ConfigError(f"{where}: packed_rows {folder} has no {ROWS} and manifest.json (make it with `arner pretrain --prepare-only`)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("tokenizer_fingerprint") != tokenizer_fingerprint(tokenizer):
        raise ConfigError(f"{where}: packed_rows {folder} was packed by another tokenizer than the model's")
    if manifest.get("max_length") != max_length:
        raise ConfigError(f"{where}: packed_rows {folder} holds rows of {manifest.get('max_length')} subwords, max_length is {max_length}")
    return folder


def prepare_data(config: PretrainConfig, inputs: Sequence[TextInput], tokenizer, work: Path, resume: bool, where: str) -> Path:
    """The folder of the packed rows, `work/data` (reused when the inputs, tokenizer and settings are the same)."""
    folder = work / "data"

    def make(tmp: Path) -> None:
        m = build_rows(config, inputs, tokenizer, work, tmp, where)
        log(f"packed {m['rows']:,} rows of {config.max_length} ({m['tokens']:,} tokens) in {m['seconds']} s")

    if not config.progress_bar:
        from datasets import disable_progress_bars

        disable_progress_bars()
    settings = {
        "rows": ROWS_FORMAT,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "max_length": config.max_length,
        "max_tokens": config.max_tokens,
    }
    if cached_build(folder, inputs, settings, make, resume, "settings"):
        log(f"reusing the packed rows in {folder}")
    return folder


def split_heldout(rows: int, heldout: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) row indices: `heldout` rows spread evenly over the corpus."""
    if heldout and heldout >= rows:
        raise ConfigError(f"heldout_sequences ({heldout}) must be less than the packed rows ({rows}): give more text or hold out fewer")
    held = np.unique(np.linspace(0, rows - 1, heldout).round().astype(np.int64)) if heldout else np.empty(0, dtype=np.int64)
    return np.setdiff1d(np.arange(rows), held), held
