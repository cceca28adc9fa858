"""Inference: raw text in, character-exact entities out (`Tagger`)."""

from arner.inference.tagger import Entity, ModelLoadError, Tagger, resolve_device

__all__ = ["Entity", "ModelLoadError", "Tagger", "resolve_device"]
