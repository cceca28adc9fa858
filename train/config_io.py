"""Reading run configs: strict YAML, and pydantic's validation errors as one line naming the key.

The YAML reader refuses duplicate keys (YAML silently keeps the last) and anchors/aliases (a few
hundred bytes of aliases expand to millions of values). The models themselves are in config.py.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import annotated_types as at
import yaml
from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    pass


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


def dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: Any) -> str:
    """The value as the message shows it: its repr, cut short (a value may be a long list)."""
    return clip(repr(value), 60)


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
        key = ".".join(filter(None, (dotted(loc), ctx["key"])))
        return key, f"{key} {ctx['message']} (got {_short(ctx['got'])})"
    key = dotted(loc)
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


def describe(error: ValidationError, cls: type[BaseModel], overrides: typing.Sequence[tuple[str, str]] = (), limit: int = 5) -> str:
    """All of pydantic's errors on one line, `; `-joined, each naming the `--set` it came from."""
    parts = []
    for key, text in (_message(e, cls) for e in error.errors(include_url=False)):
        source = next((item for k, item in reversed(overrides) if key == k or key.startswith((f"{k}.", f"{k}["))), None)
        parts.append(f"{text}, from --set {clip(source, 80)}" if source else text)
    more = f"; and {len(parts) - limit} more" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


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
    return clip(" ".join(text.split()), 300)


def parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: bad YAML: {_yaml_problem(e)}") from None


def read_yaml(path: Path, where: str) -> dict:
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
    data = parse_yaml(text, where)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the top level must be a mapping (got {type(data).__name__})")
    return data
