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

import annotated_types as at
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from arner.core.public import ExternalCorpus


class ConfigError(ValueError):
    pass


SCRATCH = "scratch"
MAX_POSITIONS = 512  # the encoders used here (BERT, XLM-R) have 512 positions
MAX_SIZE = 1_000_000  # any model size or vocabulary beyond this is a typo, not a model


def _yaml_float(value: Any) -> Any:
    """YAML 1.1 reads 2e-5 (no dot) as a string: take the number it spells ("abc" is left to be refused)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


# Strict types: an int key refuses 2.5, 2.0, True and "3"; a bool key refuses 1 and "yes"; a str key refuses 3.
# A float key takes ints and numeric strings; allow_inf_nan=False refuses NaN and inf (also spelled as strings).
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
Float = Annotated[float, BeforeValidator(_yaml_float), Strict()]
NonNegative = Annotated[int, Strict(), Field(ge=0)]
Count = Annotated[int, Strict(), Field(ge=1)]
Size = Annotated[int, Strict(), Field(ge=1, le=MAX_SIZE)]
Fraction = Annotated[Float, Field(ge=0, lt=1)]  # dropouts, warmup
Positions = Annotated[int, Strict(), Field(ge=16, le=MAX_POSITIONS)]
NonEmpty = Annotated[str, Strict(), Field(min_length=1)]


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
    keep_checkpoints: Count = 1
    progress_bar: Bool = True


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
    """A rule across keys, as a pydantic error that `_describe` turns into `key message (got value)`."""
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
            for i, entry in enumerate(getattr(self, section)):
                _rule(bool(entry.files), f"{section}[{i}].files", "must list at least one file", entry.files)
        return self


class TokenizerShape(Section):
    """The WordPiece vocabulary learned from the text (`model: scratch` only)."""

    vocab_size: Annotated[int, Strict(), Field(ge=100, le=MAX_SIZE)] = 8000
    min_frequency: Count = 2
    max_chars: Count = 50_000_000  # learned from the first this many characters of the inputs, in order


class TextInput(Section):
    """One text input: a path, and optionally a file of 0-based unit indices to leave out."""

    path: Annotated[str, Strict(), Field(min_length=1, validate_default=True)] = ""
    exclude: Str = ""  # CoNLL: sentence indices (as arner.core.public counts them); text: line indices; .jsonl: line indices

    def __init__(self, path: str = "", exclude: str = "", **data: Any) -> None:
        # Positional like the dataclass it replaced: TextInput("a.txt", "drop.txt").
        super().__init__(path=path, exclude=exclude, **data)


class PretrainConfig(LoopConfig):
    model: NonEmpty = SCRATCH  # "scratch", a hub id, or a local Hugging Face directory to continue from
    tokenizer: TokenizerShape = Field(default_factory=TokenizerShape)
    bert: BertShape = Field(default_factory=BertShape)
    text: list[TextInput] = Field(default_factory=list)  # inputs used when the command gives no --text
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


# ---------------------------------------------------------------- errors: pydantic's list -> one line

_KINDS = {
    "int_type": "must be int",
    "int_parsing": "must be int",
    "int_from_float": "must be int",
    "bool_type": "must be bool",
    "bool_parsing": "must be bool",
    "float_type": "must be float",
    "float_parsing": "must be float",
    "finite_number": "must be a finite number",
    "string_type": "must be str",
    "string_too_short": "must not be empty",
    "list_type": "must be a list",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "missing": "is required",
}
_BOUNDS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: Any) -> str:
    """The value as the message shows it: its repr, cut short (a value may be a long list)."""
    return _clip(repr(value), 60)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class a field holds, directly or as list items."""
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _field(cls: type[BaseModel], loc: tuple) -> Any:
    """The FieldInfo that `loc` (a pydantic error location) points at, or None."""
    holder, info = cls, None
    for part in loc:
        if isinstance(part, int):
            continue
        if info is not None:
            holder = _model_in(info.annotation)
        info = holder.model_fields.get(part) if holder else None
        if info is None:
            return None
    return info


def _known(cls: type[BaseModel], loc: tuple) -> str:
    """The keys of the section at `loc`, for an unknown-key message."""
    info = _field(cls, loc) if loc else None
    holder = _model_in(info.annotation) if info else cls if not loc else None
    return ", ".join(sorted(holder.model_fields)) if holder else "?"


def _range(info: Any, ctx: dict) -> str:
    """`must be in [0, 1)` from the field's bounds; `must be >= 1` when it has one."""
    bounds = (m for m in (info.metadata if info else []) if isinstance(m, (at.Gt, at.Ge, at.Lt, at.Le)))
    marks = {type(m).__name__: getattr(m, type(m).__name__.lower()) for m in bounds} or {k.title(): v for k, v in ctx.items()}
    low = f"[{marks['Ge']}" if "Ge" in marks else f"({marks['Gt']}" if "Gt" in marks else None
    high = f"{marks['Le']}]" if "Le" in marks else f"{marks['Lt']})" if "Lt" in marks else None
    if low and high:
        return f"must be in {low}, {high}"
    if low:
        return f"must be {'>=' if low[0] == '[' else '>'} {low[1:]}"
    return f"must be {'<=' if high[-1] == ']' else '<'} {high[:-1]}"


def _message(error: dict, cls: type[BaseModel]) -> tuple[str, str]:
    """(dotted key, `key what (got value)`) for one pydantic error."""
    loc, kind, ctx = error["loc"], error["type"], error.get("ctx") or {}
    if kind == "config_rule":
        key = ".".join(filter(None, (_dotted(loc), ctx["key"])))
        return key, f"{key} {ctx['message']} (got {_short(ctx['got'])})"
    key = _dotted(loc)
    if kind == "extra_forbidden":
        return key, f"unknown key {key} (known: {_known(cls, loc[:-1])})"
    if kind == "invalid_key":
        return key, f"keys must be text (got {_short(error['input'])})"
    if kind in _BOUNDS:
        what = _range(_field(cls, loc), ctx)
    elif kind == "literal_error":
        what = f"must be one of {ctx.get('expected', '?')}"
    else:
        what = _KINDS.get(kind, str(error.get("msg", kind)).lower())
    return key, f"{key} {what}" if kind == "missing" else f"{key} {what} (got {_short(error['input'])})"


def _describe(error: ValidationError, cls: type[BaseModel], overrides: typing.Sequence[tuple[str, str]] = (), limit: int = 5) -> str:
    """All of pydantic's errors on one line, `; `-joined, each naming the `--set` it came from."""
    parts = []
    for key, text in (_message(e, cls) for e in error.errors(include_url=False)):
        source = next((item for k, item in reversed(overrides) if key == k or key.startswith((f"{k}.", f"{k}["))), None)
        parts.append(f"{text}, from --set {_clip(source, 80)}" if source else text)
    more = f"; and {len(parts) - limit} more" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


def _validate(cls: type[Section], data: Any, where: str, overrides: typing.Sequence[tuple[str, str]] = ()):
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{where}: {_describe(e, cls, overrides)}") from None


# ---------------------------------------------------------------- YAML


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases (alias bombs) and duplicate keys (YAML keeps the last silently)."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            what = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
            place = f"line {event.start_mark.line + 1}, column {event.start_mark.column + 1}"
            raise yaml.composer.ComposerError(None, None, f"{what}{event.anchor} at {place}: a config may not use anchors or aliases")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = (key_node.tag, key_node.value)
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r} at line {line} (first at line {seen[key]})"
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _yaml_problem(e: yaml.YAMLError) -> str:
    """PyYAML's message (several lines, with a snippet) as one short line with the line number."""
    if isinstance(e, yaml.MarkedYAMLError):
        text = " ".join(filter(None, (e.context, e.problem)))
        mark = e.problem_mark or e.context_mark
        if mark:
            text += f" at line {mark.line + 1}, column {mark.column + 1}"
    else:
        text = str(e)
    return _clip(" ".join(text.split()), 300)


def _parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: bad YAML: {_yaml_problem(e)}") from None


def _read_yaml(path: Path, where: str) -> dict:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{where}: is a directory, not a config file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{where}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot read the config: {e.strerror or e}") from None
    data = _parse_yaml(text, where)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the top level must be a mapping (got {type(data).__name__})")
    return data


def _apply(data: dict, item: str) -> str:
    """Apply one `--set dotted.key=value` to `data`; returns the key."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or not all(key.split(".")):
        raise ConfigError(f"--set {item!r}: expected key=value")
    value = _parse_yaml(raw, f"--set {_clip(item, 80)}") if raw.strip() else ""
    *parents, leaf = key.split(".")
    for p in parents:
        data = data.setdefault(p, {})
        if not isinstance(data, dict):
            raise ConfigError(f"--set {_clip(item, 80)}: {p} is not a mapping")
    data[leaf] = value
    return key


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = (), cls: type = TrainConfig):
    """Read a YAML config (or the defaults when `path` is None) and apply `key=value` overrides."""
    where = str(path) if path else "defaults"
    data = _read_yaml(Path(path), where) if path else {}
    applied = [(_apply(data, item), item) for item in overrides]
    return _validate(cls, data, where, applied)
