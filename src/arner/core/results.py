"""Shaping entities for their users: a score threshold, and the dicts of the transformers pipeline.

`pipeline_dict` gives what `transformers.pipeline("token-classification", aggregation_strategy=...)`
returns for one entity (`entity_group`, `score`, `word`, `start`, `end`, in that order), so code
written for the pipeline reads arner's entities unchanged. Entities are anything with `start`,
`end`, `label`, `text` and `score` (`arner.inference.Entity`); this module needs neither torch nor
transformers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

THRESHOLD = 0.0  # keep every entity
PIPELINE_KEYS = ("entity_group", "score", "word", "start", "end")


class Scored(Protocol):
    start: int
    end: int
    label: str
    text: str
    score: float


E = TypeVar("E", bound=Scored)


def check_threshold(value: object, name: str = "threshold") -> float:
    """`value` as a score threshold in [0, 1]; anything else is a one-line `ValueError` naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    if math.isnan(value) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")
    return float(value)


def above(entities: Iterable[E], threshold: float) -> list[E]:
    """The entities whose score is at least `threshold` (0 keeps all)."""
    return [e for e in entities if e.score >= threshold]


def pipeline_dict(entity: Scored) -> dict:
    """One entity as the pipeline's aggregated dict: label as `entity_group`, a float `score`,
    `word` the exact text (`text[start:end]`), code-point offsets `start`, `end`."""
    return {"entity_group": entity.label, "score": float(entity.score), "word": entity.text, "start": entity.start, "end": entity.end}


def pipeline_dicts(entities: Sequence[Scored]) -> list[dict]:
    """One text's entities as the pipeline returns them for that text."""
    return [pipeline_dict(e) for e in entities]


def pipeline_jsonl(entities: Iterable[Sequence[Scored]]) -> str:
    """`arner predict --format pipeline`: one line per text, in input order, each the JSON list the pipeline gives for it."""
    return "".join(json.dumps(pipeline_dicts(doc), ensure_ascii=False) + "\n" for doc in entities)
