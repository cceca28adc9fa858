"""arner: Arabic news NER (ACTOR, PLACE, DATE) — dataset, fine-tuning, evaluation, inference."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`from arner import Tagger` without importing torch for the annotation tools."""
    if name in ("Tagger", "Entity"):
        from arner import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'arner' has no attribute {name!r}")
