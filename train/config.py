"""Run configs: YAML files read into pydantic models, with `--set key=value` overrides.

Every key has a type, a default and its allowed range here, and everything is checked on load,
before any work: an unknown key, a wrong type, NaN or inf, an impossible size or two keys that
contradict each other is one line of ConfigError naming the file, the dotted key and the value.
The YAML reader refuses duplicate keys (YAML silently keeps the last) and anchors/aliases (a few
hundred bytes of aliases expand to millions of values).
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from arner.core.public import ExternalCorpus, yaml_number
from arner.train.config_io import ConfigError, clip, describe, dotted, parse_yaml, read_yaml

SCRATCH = "scratch"
MAX_POSITIONS = 512  # the encoders used here (BERT, XLM-R) have 512 positions
MAX_SIZE = 1_000_000  # any model size or vocabulary beyond this is a typo, not a model


# Strict types: an int key refuses 2.5, 2.0, True and "3"; a bool key refuses 1 and "yes"; a str key refuses 3.
# A float key takes ints and numeric strings; allow_inf_nan=False refuses NaN and inf (also spelled as strings).
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
Float = Annotated[float, BeforeValidator(yaml_number), Strict()]
NonNegative = Annotated[int, Strict(), Field(ge=0)]
Count = Annotated[int, Strict(), Field(ge=1)]
Size = Annotated[int, Strict(), Field(ge=1, le=MAX_SIZE)]
Fraction = Annotated[Float, Field(ge=0, lt=1)]  # dropouts, warmup
Positions = Annotated[int, Strict(), Field(ge=16, le=MAX_POSITIONS)]
NonEmpty = Annotated[str, Strict(), Field(min_length=1)]
# `report_to: tensorboard` reads as `[tensorboard]`, as the transformers Trainer takes it; the one tracker that works offline
Trackers = Annotated[list[Literal["tensorboard"]], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


class Section(BaseModel):
    """What every config section offers: a plain dict (for arner.json) and a checked copy."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=False)

    def to_dict(self) -> dict:
        return self.model_dump()

    def replace(self, **changes: Any):
        """A copy with `changes`, checked like a loaded config.

        Not model_copy(update=...): it skips every check and drops an unknown key silently.
        """
        return _validate(type(self), {**self.model_dump(), **changes}, f"{type(self).__name__}.replace")


class LoopConfig(Section):
    """Optimization settings common to fine-tuning and pretraining."""

    epochs: Count = 10
    max_steps: NonNegative = 0  # stop after this many optimizer steps, the schedule planned for them (0: run every epoch)
    batch_size: Count = 8
    learning_rate: Annotated[Float, Field(gt=0, le=1)] = 5e-5
    weight_decay: Annotated[Float, Field(ge=0)] = 0.01
    warmup_ratio: Fraction = 0.1
    gradient_accumulation_steps: Count = 1
    max_grad_norm: Annotated[Float, Field(gt=0)] = 1.0
    seed: Annotated[int, Strict(), Field(ge=0, le=2**32 - 1)] = 42  # numpy refuses seeds outside [0, 2**32)
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"  # auto: bf16 on GPUs that have it, else fp16; fp32 (no) on CPU
    torch_compile: Bool = False
    group_by_length: Bool = True
    pad_to_multiple_of: Annotated[int, Strict(), Field(ge=1, le=MAX_POSITIONS)] = 8
    logging_steps: Count = 10
    early_stopping_patience: NonNegative = 0  # epochs without held-out improvement; 0 = off
    keep_checkpoints: Count = 1  # epoch checkpoints kept while the run goes on (the newest ones)
    # a finished run removes OUTPUT/checkpoints so that the folder ships as is; an interrupted one keeps them for --resume
    keep_checkpoints_after_training: Bool = False
    report_to: Trackers = Field(default_factory=list)  # experiment trackers beside log.jsonl: [tensorboard] writes OUTPUT/logs/
    progress_bar: Bool = True

    @model_validator(mode="after")
    def _trackers_once(self) -> LoopConfig:
        _rule(len(set(self.report_to)) == len(self.report_to), "report_to", "names a tracker twice", self.report_to)
        return self


class BertShape(Section):
    """The shape of a BERT built from random weights (the tiny model; pretraining from scratch)."""

    hidden_size: Size = 128
    num_hidden_layers: Size = 2
    num_attention_heads: Size = 2
    intermediate_size: Size = 256
    max_position_embeddings: Size = 256
    hidden_dropout_prob: Fraction = 0.1
    attention_probs_dropout_prob: Fraction = 0.1


class TinyModel(BertShape):
    """The offline BERT of `model: tiny`: a shape plus the WordPiece vocabulary learned from the training articles."""

    vocab_size: Annotated[int, Strict(), Field(ge=100, le=MAX_SIZE)] = 3000
    min_frequency: Count = 1


def _rule(ok: bool, key: str, message: str, got: Any) -> None:
    """A rule across keys, as a pydantic error that `config_io.describe` turns into `key message (got value)`."""
    if not ok:
        raise PydanticCustomError("config_rule", "{key} {message}", {"key": key, "message": message, "got": got})


def _shape_rules(shape: BertShape, name: str) -> None:
    heads = f"must be divisible by {name}.num_attention_heads ({shape.num_attention_heads})"
    _rule(shape.hidden_size % shape.num_attention_heads == 0, f"{name}.hidden_size", heads, shape.hidden_size)


class TrainConfig(LoopConfig):
    model: NonEmpty = "tiny"  # "tiny", a hub id, or a local Hugging Face directory
    tiny: TinyModel = Field(default_factory=TinyModel)
    annotations: Str = "annotations"
    max_length: Positions = 256
    stride: NonNegative = 32
    label_all_subwords: Bool = False
    eval_batch_size: Count = 32
    load_best_model_at_end: Bool = False  # True picks the epoch best on the held-out article (optimistic for CV)
    trim_proclitics: Bool = True
    external_root: Str = "../shared/external"  # where extra_train / external_test paths start
    extra_train: list[ExternalCorpus] = Field(default_factory=list)  # public corpora added to training
    train_on_articles: Bool = True  # False: train on extra_train alone (every article is then unseen)
    external_test: list[ExternalCorpus] = Field(default_factory=list)  # public corpora scored beside the articles

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        half = self.max_length // 2
        _rule(self.stride < half, "stride", f"must be less than max_length / 2 ({half})", self.stride)
        _shape_rules(self.tiny, "tiny")
        positions = self.tiny.max_position_embeddings
        _rule(
            self.model != "tiny" or positions >= self.max_length,
            "tiny.max_position_embeddings",
            f"must be >= max_length ({self.max_length})",
            positions,
        )
        _rule(self.train_on_articles or bool(self.extra_train), "train_on_articles", "can be false only with extra_train corpora", False)
        for section in ("extra_train", "external_test"):
            names: set[str] = set()
            for i, entry in enumerate(getattr(self, section)):
                _rule(bool(entry.files), f"{section}[{i}].files", "must list at least one file", entry.files)
                name = entry.key
                _rule(name not in names, f"{section}[{i}].name", f"is used twice in {section} (give each corpus its own name)", name)
                names.add(name)
        for i, entry in enumerate(self.external_test):  # weight samples training documents: on a test corpus it would mean nothing
            _rule(entry.weight == 1.0, f"external_test[{i}].weight", "applies to extra_train corpora only", entry.weight)
        return self


class TokenizerShape(Section):
    """The WordPiece vocabulary learned from the text (`model: scratch` only)."""

    vocab_size: Annotated[int, Strict(), Field(ge=100, le=MAX_SIZE)] = 8000
    min_frequency: Count = 2
    max_chars: Count = 50_000_000  # learned from the first this many characters of the inputs, in order
    alphabet_min_count: Count = 1  # characters rarer than this get no subword of their own (their words become [UNK])


class TextInput(Section):
    """One text input: a path, and optionally a file of 0-based unit indices to leave out."""

    path: Annotated[str, Strict(), Field(min_length=1, validate_default=True)] = ""
    exclude: Str = ""  # CoNLL: sentence indices (as arner.core.public counts them); text: line indices; .jsonl: line indices

    def __init__(self, path: str = "", exclude: str = "", **data: Any) -> None:
        # Positional like the dataclass it replaced: TextInput("a.txt", "drop.txt").
        super().__init__(path=path, exclude=exclude, **data)


class ElectraShape(Section):
    """Replaced-token detection (`objective: electra`): the generator beside the discriminator (`bert` section).

    As in ELECTRA (Clark et al., 2020): the two share their embeddings, factorized to `embedding_size`
    and projected to each one's hidden size; the generator is the discriminator's shape scaled by
    `generator_size` (its heads, rounded to whole heads of the same width, set its hidden size; the
    feed-forward keeps the discriminator's ratio to hidden; the same depth), and the loss is the
    generator's MLM loss plus `discriminator_weight` times the discriminator's.
    """

    embedding_size: Size = 128
    generator_size: Annotated[Float, Field(gt=0, le=1)] = 0.25
    discriminator_weight: Annotated[Float, Field(gt=0, le=1000)] = 50.0
    temperature: Annotated[Float, Field(gt=0, le=10)] = 1.0  # of the generator's samples


class PretrainConfig(LoopConfig):
    model: NonEmpty = SCRATCH  # "scratch", a hub id, or a local Hugging Face directory to continue from
    objective: Literal["mlm", "electra"] = "mlm"  # masked LM (BERT), or replaced-token detection (ELECTRA)
    tokenizer: TokenizerShape = Field(default_factory=TokenizerShape)
    bert: BertShape = Field(default_factory=BertShape)
    electra: ElectraShape = Field(default_factory=ElectraShape)
    text: list[TextInput] = Field(default_factory=list)  # inputs used when the command gives no --text
    packed_rows: Str = ""  # instead of text: a folder of rows packed by `arner pretrain --prepare-only` (its OUTPUT/work/data)
    max_length: Positions = 128  # subwords per packed row, [CLS] and [SEP] included
    mlm_probability: Annotated[Float, Field(gt=0, lt=1)] = 0.15
    mask_replace_prob: Annotated[Float, Field(ge=0, le=1)] = 0.8  # of the masked subwords: replaced by [MASK]
    random_replace_prob: Annotated[Float, Field(ge=0, le=1)] = 0.1  # replaced by a random subword (the rest are kept)
    whole_word_masking: Bool = False
    max_tokens: NonNegative = 0  # stop reading the inputs once this many subwords fill the rows (0: read everything)
    heldout_sequences: NonNegative = 0  # rows left out of training, spread over the corpus; their MLM loss is logged each epoch
    eval_batch_size: Count = 32
    group_by_length: Bool = False  # packed rows all have the same length

    @model_validator(mode="after")
    def _consistent(self) -> PretrainConfig:
        scratch_only = "must be scratch (the tiny shape is the bert section), a hub id or a folder"
        _rule(self.model != "tiny", "model", scratch_only, self.model)
        _rule(
            not self.packed_rows or self.model != SCRATCH,
            "packed_rows",
            "needs the model whose tokenizer packed them (model: a folder or hub id, not scratch)",
            self.packed_rows,
        )
        positions = self.bert.max_position_embeddings
        _rule(
            self.model != SCRATCH or positions >= self.max_length,
            "bert.max_position_embeddings",
            f"must be >= max_length ({self.max_length})",
            positions,
        )
        room = 1 - self.mask_replace_prob
        _rule(
            self.random_replace_prob <= room,
            "random_replace_prob",
            f"must be <= 1 - mask_replace_prob ({room:g})",
            self.random_replace_prob,
        )
        _shape_rules(self.bert, "bert")
        return self


def _validate(cls: type[Section], data: Any, where: str, overrides: typing.Sequence[tuple[str, str]] = ()):
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{where}: {describe(e, cls, overrides)}") from None


def _step(data: dict | list, part: str, item: str) -> tuple[dict | list, str | int]:
    """The container and key `part` names in `data`: a mapping's key, or a list's index (`extra_train.0.max_words`)."""
    where = f"--set {clip(item, 80)}"
    if isinstance(data, list):
        if not part.isdigit() or int(part) >= len(data):
            raise ConfigError(f"{where}: {part} is not an index of a list of {len(data)} entries")
        return data, int(part)
    return data, part


def _apply(data: dict, item: str) -> str:
    """Apply one `--set dotted.key=value` to `data` (a number indexes a list); returns the key as errors name it."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or not all(key.split(".")):
        raise ConfigError(f"--set {item!r}: expected key=value")
    value = parse_yaml(raw, f"--set {clip(item, 80)}") if raw.strip() else ""
    *parents, leaf = key.split(".")
    for p in parents:
        holder, k = _step(data, p, item)
        if isinstance(holder, dict):
            holder.setdefault(k, {})
        data = holder[k]
        if not isinstance(data, (dict, list)):
            raise ConfigError(f"--set {clip(item, 80)}: {p} is not a mapping")
    holder, k = _step(data, leaf, item)
    holder[k] = value
    return dotted(tuple(int(p) if p.isdigit() and i else p for i, p in enumerate(key.split("."))))


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = (), cls: type = TrainConfig):
    """Read a YAML config (or the defaults when `path` is None) and apply `key=value` overrides."""
    where = str(path) if path else "defaults"
    data = read_yaml(Path(path), where) if path else {}
    applied = [(_apply(data, item), item) for item in overrides]
    return _validate(cls, data, where, applied)
