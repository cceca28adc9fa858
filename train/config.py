"""Run configs: YAML files validated on load, with `--set key=value` overrides.

Every key has a type and a default here; an unknown key, a wrong type or an impossible
value is an error that names the key and the file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from arner.core.public import ExternalCorpus


class ConfigError(ValueError):
    pass


SCRATCH = "scratch"


class Section:
    """What every config section offers: a plain dict (for arner.json) and a changed copy."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclass
class LoopConfig(Section):
    """Optimization settings common to fine-tuning and pretraining."""

    epochs: int = 10
    max_steps: int = 0  # stop after this many optimizer steps, the schedule planned for them (0: run every epoch)
    batch_size: int = 8
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    seed: int = 42
    mixed_precision: str = "auto"  # auto: bf16 on GPUs that have it, else fp16; fp32 (no) on CPU
    torch_compile: bool = False
    group_by_length: bool = True
    pad_to_multiple_of: int = 8
    logging_steps: int = 10
    early_stopping_patience: int = 0  # epochs without held-out improvement; 0 = off
    keep_checkpoints: int = 1
    progress_bar: bool = True

    def checks(self) -> list[tuple[bool, str, str]]:
        return [
            (self.epochs >= 1, "epochs", "must be >= 1"),
            (self.max_steps >= 0, "max_steps", "must be >= 0 (0: no cap)"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            (self.learning_rate > 0, "learning_rate", "must be > 0"),
            (self.weight_decay >= 0, "weight_decay", "must be >= 0"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)"),
            (self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps", "must be >= 1"),
            (self.max_grad_norm > 0, "max_grad_norm", "must be > 0"),
            (self.mixed_precision in ("auto", "no", "fp16", "bf16"), "mixed_precision", "must be auto, no, fp16 or bf16"),
            (self.pad_to_multiple_of >= 1, "pad_to_multiple_of", "must be >= 1"),
            (self.logging_steps >= 1, "logging_steps", "must be >= 1"),
            (self.early_stopping_patience >= 0, "early_stopping_patience", "must be >= 0"),
            (self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1"),
        ]


@dataclass
class BertShape(Section):
    """The shape of a BERT built from random weights (the tiny model; pretraining from scratch)."""

    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 256
    max_position_embeddings: int = 256
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1


@dataclass
class TinyModel(BertShape):
    """The offline BERT of `model: tiny`: a shape plus the WordPiece vocabulary learned from the training articles."""

    vocab_size: int = 3000
    min_frequency: int = 1


@dataclass
class TrainConfig(LoopConfig):
    model: str = "tiny"  # "tiny", a hub id, or a local Hugging Face directory
    tiny: TinyModel = field(default_factory=TinyModel)
    annotations: str = "annotations"
    max_length: int = 256
    stride: int = 32
    label_all_subwords: bool = False
    eval_batch_size: int = 32
    load_best_model_at_end: bool = False  # True picks the epoch best on the held-out article (optimistic for CV)
    trim_proclitics: bool = True
    external_root: str = "../shared/external"  # where extra_train / external_test paths start
    extra_train: list[ExternalCorpus] = field(default_factory=list)  # public corpora added to training
    train_on_articles: bool = True  # False: train on extra_train alone (every article is then unseen)
    external_test: list[ExternalCorpus] = field(default_factory=list)  # public corpora scored beside the articles

    def checks(self) -> list[tuple[bool, str, str]]:
        return super().checks() + [
            (self.max_length >= 16, "max_length", "must be >= 16"),
            (0 <= self.stride < self.max_length // 2, "stride", "must be >= 0 and less than max_length / 2"),
            (self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1"),
            (
                self.tiny.hidden_size % self.tiny.num_attention_heads == 0,
                "tiny.hidden_size",
                "must be divisible by tiny.num_attention_heads",
            ),
            (self.tiny.vocab_size >= 100, "tiny.vocab_size", "must be >= 100"),
            (
                self.tiny.max_position_embeddings >= self.max_length or self.model != "tiny",
                "tiny.max_position_embeddings",
                "must be >= max_length",
            ),
            (bool(self.model), "model", "must not be empty"),
            (self.train_on_articles or bool(self.extra_train), "train_on_articles", "can be false only with extra_train corpora"),
            *((bool(e.files), f"extra_train[{i}].files", "must list at least one file") for i, e in enumerate(self.extra_train)),
            *((bool(e.files), f"external_test[{i}].files", "must list at least one file") for i, e in enumerate(self.external_test)),
        ]


@dataclass
class TokenizerShape(Section):
    """The WordPiece vocabulary learned from the text (`model: scratch` only)."""

    vocab_size: int = 8000
    min_frequency: int = 2
    max_chars: int = 50_000_000  # learned from the first this many characters of the inputs, in order


@dataclass
class TextInput(Section):
    """One text input: a path, and optionally a file of 0-based unit indices to leave out."""

    path: str = ""
    exclude: str = ""  # CoNLL: sentence indices (as arner.core.public counts them); text: line indices; .jsonl: line indices


@dataclass
class PretrainConfig(LoopConfig):
    model: str = SCRATCH  # "scratch", a hub id, or a local Hugging Face directory to continue from
    tokenizer: TokenizerShape = field(default_factory=TokenizerShape)
    bert: BertShape = field(default_factory=BertShape)
    text: list[TextInput] = field(default_factory=list)  # inputs used when the command gives no --text
    max_length: int = 128  # subwords per packed row, [CLS] and [SEP] included
    mlm_probability: float = 0.15
    mask_replace_prob: float = 0.8  # of the masked subwords: replaced by [MASK]
    random_replace_prob: float = 0.1  # replaced by a random subword (the rest are kept)
    whole_word_masking: bool = False
    max_tokens: int = 0  # stop reading the inputs once this many subwords fill the rows (0: read everything)
    heldout_sequences: int = 0  # rows left out of training, spread over the corpus; their MLM loss is logged each epoch
    eval_batch_size: int = 32
    group_by_length: bool = False  # packed rows all have the same length

    def checks(self) -> list[tuple[bool, str, str]]:
        scratch = self.model == SCRATCH
        b, t = self.bert, self.tokenizer
        return super().checks() + [
            (bool(self.model), "model", "must not be empty"),
            (self.model != "tiny", "model", "must be scratch (the tiny shape is the bert section), a hub id or a folder"),
            (self.max_length >= 16, "max_length", "must be >= 16"),
            (not scratch or b.max_position_embeddings >= self.max_length, "bert.max_position_embeddings", "must be >= max_length"),
            (0 < self.mlm_probability < 1, "mlm_probability", "must be in (0, 1)"),
            (0 <= self.mask_replace_prob <= 1, "mask_replace_prob", "must be in [0, 1]"),
            (0 <= self.random_replace_prob <= 1 - self.mask_replace_prob, "random_replace_prob", "must be in [0, 1 - mask_replace_prob]"),
            (self.max_tokens >= 0, "max_tokens", "must be >= 0 (0: no cap)"),
            (self.heldout_sequences >= 0, "heldout_sequences", "must be >= 0"),
            (self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1"),
            (t.vocab_size >= 100, "tokenizer.vocab_size", "must be >= 100"),
            (t.min_frequency >= 1, "tokenizer.min_frequency", "must be >= 1"),
            (t.max_chars >= 1, "tokenizer.max_chars", "must be >= 1"),
            *(
                (getattr(b, k) >= 1, f"bert.{k}", "must be >= 1")
                for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
            ),
            (
                b.num_attention_heads < 1 or b.hidden_size % b.num_attention_heads == 0,
                "bert.hidden_size",
                "must be divisible by bert.num_attention_heads",
            ),
            (0 <= b.hidden_dropout_prob < 1, "bert.hidden_dropout_prob", "must be in [0, 1)"),
            (0 <= b.attention_probs_dropout_prob < 1, "bert.attention_probs_dropout_prob", "must be in [0, 1)"),
            *((bool(x.path), f"text[{i}].path", "must not be empty") for i, x in enumerate(self.text)),
        ]


def validate(config, where: str) -> None:
    """Raise ConfigError for the first failed check of `config.checks()`, naming the key."""
    for ok, key, message in config.checks():
        if not ok:
            raise ConfigError(f"{where}: {key} {message} (got {_get(config, key)!r})")


def _get(obj, dotted: str):
    for part in dotted.split("."):
        name, _, index = part.partition("[")
        obj = getattr(obj, name)
        if index:
            obj = obj[int(index.rstrip("]"))]
    return obj


def _coerce(value, typ, key: str, where: str):
    """Check `value` against the field type (ints are accepted for floats)."""
    if typing.get_origin(typ) is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} must be a list, got {value!r}")
        (item,) = typing.get_args(typ)
        return [_coerce(v, item, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be a mapping, got {value!r}")
        return _build(typ, value, where, prefix=f"{key}.")
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is float and isinstance(value, str):  # YAML 1.1 reads 2e-5 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if typ is int and isinstance(value, bool) or not isinstance(value, typ):
        raise ConfigError(f"{where}: {key} must be {typ.__name__}, got {value!r}")
    return value


def _build(cls, data: dict, where: str, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        typ = hints[name]
        if isinstance(typ, types.UnionType):
            typ = next(t for t in typing.get_args(typ) if t is not type(None))
        kwargs[name] = _coerce(value, typ, prefix + name, where)
    return cls(**kwargs)


def _set(data: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        data = data.setdefault(p, {})
        if not isinstance(data, dict):
            raise ConfigError(f"--set {dotted}: {p} is not a mapping")
    data[leaf] = value


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = (), cls: type = TrainConfig):
    """Read a YAML config (or the defaults when `path` is None) and apply `key=value` overrides."""
    where = str(path) if path else "defaults"
    data: dict = {}
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"{where}: config file not found") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{where}: bad YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: the top level must be a mapping")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        _set(data, key.strip(), yaml.safe_load(raw) if raw.strip() else "")
    config = _build(cls, data, where)
    validate(config, where)
    return config
