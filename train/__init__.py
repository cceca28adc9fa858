"""Fine-tuning (arner.train): see issue 3."""
