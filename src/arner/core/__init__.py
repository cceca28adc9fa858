"""The core: spans, words and labels; documents and corpora; windows; file formats. Imports nothing else of arner."""
