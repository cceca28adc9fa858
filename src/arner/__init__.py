"""arner: Arabic news NER (ACTOR, PLACE, DATE) — dataset, fine-tuning, evaluation, inference."""

__version__ = "0.1.0"
