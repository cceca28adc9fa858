"""Evaluation harness (arner.eval)."""
