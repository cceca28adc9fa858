"""`arner bench`: our training loop and Tagger against the Hugging Face defaults."""
