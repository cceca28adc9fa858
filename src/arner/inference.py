"""Character-exact entities from raw text with a token-classification model.

`Tagger` windows each text (alignment.py), runs the model over length-sorted batches,
takes each word's label from its first subword in the window where that subword sits
furthest from an edge, and decodes IOB2 word tags to spans (conventions.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from arner.alignment import EncodedDocument, best_window, encode_document
from arner.conventions import PROCLITICS, Span, tags_to_word_ranges, words


@dataclass(frozen=True)
class Entity:
    start: int
    end: int
    label: str
    text: str
    score: float

    def to_json(self) -> dict:
        return asdict(self)

    def span(self) -> Span:
        return Span(self.start, self.end, self.label, self.text)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Tagger:
    """Callable on one text (-> list of Entity) or a list of texts (-> list of lists)."""

    def __init__(
        self,
        model,
        tokenizer,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        stride: int = 64,
        max_length: int | None = None,
        trim_proclitics: bool = True,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = torch.device(device) if isinstance(device, str) else device
        self.batch_size = batch_size
        self.max_length = max_length or min(int(getattr(model.config, "max_position_embeddings", 512)), 512)
        self.stride = min(stride, self.max_length // 4)
        self.trim_proclitics = trim_proclitics
        self.id2label = {int(k): v for k, v in model.config.id2label.items()}

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "auto", batch_size: int = 16, **kwargs) -> Tagger:
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        dev = resolve_device(device)
        dtype = torch.bfloat16 if dev.type == "cuda" and torch.cuda.is_bf16_supported() else None
        model = AutoModelForTokenClassification.from_pretrained(str(path), dtype=dtype).to(dev)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        return cls(model, tokenizer, dev, batch_size, **kwargs)

    def __call__(self, texts: str | Sequence[str]) -> list[Entity] | list[list[Entity]]:
        if isinstance(texts, str):
            return self.predict([texts])[0]
        return self.predict(list(texts))

    def predict(self, texts: list[str]) -> list[list[Entity]]:
        docs = [words(t) for t in texts]
        encoded = [encode_document(self.tokenizer, t, ws, self.max_length, self.stride) for t, ws in zip(texts, docs)]
        probs = self._window_probs(encoded)
        return [self._decode(t, ws, enc, p) for t, ws, enc, p in zip(texts, docs, encoded, probs)]

    @torch.inference_mode()
    def _window_probs(self, encoded: list[EncodedDocument]) -> list[list[torch.Tensor]]:
        """Softmax over labels for every window of every document (CPU float tensors)."""
        items = [(d, w) for d, enc in enumerate(encoded) for w in range(len(enc.windows))]
        items.sort(key=lambda dw: len(encoded[dw[0]].windows[dw[1]].input_ids))
        out: list[list] = [[None] * len(enc.windows) for enc in encoded]
        pad = self.tokenizer.pad_token_id or 0
        for i in range(0, len(items), self.batch_size):
            batch = items[i : i + self.batch_size]
            seqs = [encoded[d].windows[w].input_ids for d, w in batch]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for r, s in enumerate(seqs):
                ids[r, : len(s)] = torch.tensor(s)
                mask[r, : len(s)] = 1
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            probs = logits.float().softmax(-1).cpu()
            for r, (d, w) in enumerate(batch):
                out[d][w] = probs[r, : len(seqs[r])]
        return out

    def word_predictions(self, enc: EncodedDocument, probs: list[torch.Tensor]) -> list[tuple[str, float]]:
        """Per word: (tag, probability) from its first subword in its best window."""
        preds = []
        for t in enc.word_first_token:
            if t < 0:
                preds.append(("O", 1.0))
                continue
            w = best_window(t, enc.windows)
            window = enc.windows[w]
            p = probs[w][window.prefix + t - window.start]
            k = int(p.argmax())
            preds.append((self.id2label[k], float(p[k])))
        return preds

    def _decode(self, text: str, ws, enc: EncodedDocument, probs) -> list[Entity]:
        preds = self.word_predictions(enc, probs)
        entities = []
        for first, last, label in tags_to_word_ranges([tag for tag, _ in preds]):
            start, end = ws[first].start, ws[last - 1].end
            if self.trim_proclitics:
                start = proclitic_subword_end(text, enc, first, ws[first])
            score = sum(p for _, p in preds[first:last]) / (last - first)
            entities.append(Entity(start, end, label, text[start:end], round(score, 6)))
        return entities


def proclitic_subword_end(text: str, enc: EncodedDocument, word_index: int, word) -> int:
    """Where a name starts once a first subword made only of proclitics (و ف ب ل ك) is left out.

    Only the model's own subword split is trusted: `و` + `##يتكوف` trims, `وويتكوف` as one
    token does not. Returns the word start when there is nothing to trim.
    """
    t = enc.word_first_token[word_index]
    if t < 0:
        return word.start
    a, b = enc.offsets[t]
    if a == word.start and a < b < word.end and b - a <= 3 and all(c in PROCLITICS for c in text[a:b]):
        return b
    return word.start
