"""Character-exact entities from raw text with a token-classification model.

`Tagger` windows each text (alignment.py), runs the model over length-sorted batches,
takes each word's label from its first subword in the window where that subword sits
furthest from an edge, and decodes the IOB2 word tags to spans (conventions.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from arner.core import defaults
from arner.core.alignment import EncodedDocument, encode_documents, window_owners
from arner.core.conventions import PROCLITICS, Span, Word, tags_to_word_ranges, words
from arner.core.results import THRESHOLD, above, check_threshold, pipeline_dict, pipeline_dicts
from arner.inference.precision import apply_precision, check_precision, load_dtype

LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class ModelLoadError(OSError):
    """A model path or hub id that cannot be loaded as a token classifier."""


@dataclass(frozen=True)
class Entity:
    start: int
    end: int
    label: str
    text: str
    score: float

    def to_json(self) -> dict:
        return {"start": self.start, "end": self.end, "label": self.label, "text": self.text, "score": self.score}

    def span(self) -> Span:
        return Span(self.start, self.end, self.label, self.text)

    def to_pipeline(self) -> dict:
        """The dict `transformers.pipeline("token-classification", aggregation_strategy=...)` gives for this entity."""
        return pipeline_dict(self)


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device a `--device` value means; a `ValueError` naming it when this machine has no such device.

    torch would otherwise fail only when the model is moved there, with an error that names neither
    the option nor the fix.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        found = torch.device(device)
    except RuntimeError as e:  # a string torch does not parse
        raise ValueError(f"--device {device}: {e}") from None
    if found.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {device}: no CUDA device is available here (use --device cpu or auto)")
        if found.index is not None and found.index >= count:
            raise ValueError(f"--device {device}: there are only {count} CUDA device(s) (cuda:0 to cuda:{count - 1})")
    elif found.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: MPS is not available here (use --device cpu or auto)")
    return found


class Tagger:
    """Callable on one text (-> list of Entity) or a list of texts (-> list of lists).

    `threshold` (0 to 1, default 0: keep all) drops entities scored below it, in every call
    unless the call gives its own.
    """

    def __init__(
        self,
        model,
        tokenizer,
        device: str | torch.device = "cpu",
        batch_size: int = defaults.BATCH_SIZE,
        stride: int = defaults.STRIDE,
        max_length: int | None = None,
        trim_proclitics: bool = True,
        threshold: float = THRESHOLD,
        precision: str | None = None,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = resolve_device(device)
        self.batch_size = batch_size
        limit = min(
            int(getattr(model.config, "max_position_embeddings", 512)), int(getattr(tokenizer, "model_max_length", 512) or 512), 512
        )
        self.max_length = min(max_length or limit, limit)
        self.stride = max(0, min(stride, self.max_length // 4))
        self.trim_proclitics = trim_proclitics
        self.threshold = check_threshold(threshold)
        self.id2label = {int(k): v for k, v in model.config.id2label.items()}
        self.labels = [self.id2label[i] for i in range(len(self.id2label))]
        self._units: dict[str, bool] = {}
        # what the model runs in: from_pretrained names it; an ONNX model carries its own; else the weights' dtype
        self.precision = (
            precision
            or getattr(model, "precision", None)
            or str(next(iter(model.parameters()), torch.empty(0)).dtype).removeprefix("torch.")
        )

    def _known_unit(self, piece: str) -> bool:
        """Whether the tokenizer keeps `piece` as one token (cached: entities are few)."""
        if piece not in self._units:
            self._units[piece] = len(self.tokenizer(piece, add_special_tokens=False)["input_ids"]) == 1
        return self._units[piece]

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str = "auto", batch_size: int = defaults.BATCH_SIZE, precision: str = "auto", **kwargs
    ) -> Tagger:
        """Load a model folder (or hub id) written by `arner train`, any token classifier, or an `arner export --format onnx` folder.

        `precision` (arner.inference.precision): auto, fp32, bf16, fp16 or int8; an ONNX folder runs as exported.
        """
        from arner.inference.onnx import OnnxTokenClassifier, is_onnx_folder

        if str(path).startswith((".", "/", "~")) and not Path(path).expanduser().is_dir():  # a folder, not a hub id
            raise ModelLoadError(f"{path}: no such model folder")
        if is_onnx_folder(path):
            dev = resolve_device("cpu" if device == "auto" else device)
            if dev.type != "cpu" or precision not in ("auto", "fp32"):
                raise ValueError(f"{path} is an ONNX export: it runs on the CPU as exported (--device cpu, --precision auto)")
            return cls(OnnxTokenClassifier(path), _load_tokenizer(path), dev, batch_size, **kwargs)
        dev = resolve_device(device)
        concrete = check_precision(precision, dev)  # an fp16 folder (the shipped encoder) runs in fp32 on a CPU by default
        try:
            model = _load_classifier(path, load_dtype(concrete))
        except (OSError, ValueError, KeyError) as e:
            raise ModelLoadError(f"{path}: cannot load a token-classification model: {e}") from None
        return cls(apply_precision(model.to(dev), concrete), _load_tokenizer(path), dev, batch_size, precision=concrete, **kwargs)

    def __call__(self, texts: str | Sequence[str], threshold: float | None = None) -> list[Entity] | list[list[Entity]]:
        if isinstance(texts, str):
            return self.predict([texts], threshold)[0]
        return self.predict(list(texts), threshold)

    def predict(self, texts: Sequence[str], threshold: float | None = None) -> list[list[Entity]]:
        """Entities for each text, offsets into that exact string; those scored below `threshold`
        (default: the tagger's) left out."""
        keep = self.threshold if threshold is None else check_threshold(threshold)
        doc_words, encoded = self._encode(texts)
        tags = self._word_predictions(encoded)
        return [above(self._decode(t, ws, enc, p), keep) for t, ws, enc, p in zip(texts, doc_words, encoded, tags)]

    def pipeline_dicts(self, texts: str | Sequence[str], threshold: float | None = None) -> list[dict] | list[list[dict]]:
        """What `transformers.pipeline("token-classification", aggregation_strategy=...)` returns, for
        code written for it: one text gives a list of `{entity_group, score, word, start, end}`,
        a list of texts one such list per text. The entities are `predict`'s (proclitics trimmed,
        `word` the exact `text[start:end]`)."""
        if isinstance(texts, str):
            return pipeline_dicts(self.predict([texts], threshold)[0])
        return [pipeline_dicts(doc) for doc in self.predict(list(texts), threshold)]

    def spans(self, texts: Sequence[str]) -> list[list[Span]]:
        """`predict` as plain spans (no scores), the form the scorers compare with gold spans."""
        return [[e.span() for e in doc] for doc in self.predict(texts)]

    def word_tags(self, text: str) -> list[str]:
        """The IOB2 tag of each word of `text` (the spec's word view), before span decoding."""
        _, encoded = self._encode([text])
        labels, _ = self._word_predictions(encoded)[0]
        return [self.labels[k] for k in labels]

    def _encode(self, texts: Sequence[str]) -> tuple[list[list[Word]], list[EncodedDocument]]:
        """Each text's words and windows, lone surrogates read as U+FFFD (same length, so offsets still hold)."""
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is {type(t).__name__}, expected str")
        clean = [LONE_SURROGATE.sub("\ufffd", t) for t in texts]
        doc_words = [words(t) for t in clean]
        return doc_words, encode_documents(self.tokenizer, clean, doc_words, self.max_length, self.stride)

    @torch.inference_mode()
    def _word_predictions(self, encoded: list[EncodedDocument]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per document, each word's label id and probability, read from its owner window."""
        # which (window, position) each word reads, grouped by window
        wanted: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        results = []
        for d, enc in enumerate(encoded):
            first = np.asarray(enc.word_first_token, dtype=np.int64)
            labels = np.zeros(len(first), dtype=np.int64)  # O where a word has no token
            probs = np.ones(len(first), dtype=np.float32)
            results.append((labels, probs))
            if not len(first) or not enc.windows:
                continue
            owners = window_owners(len(enc.input_ids), enc.windows)
            has = np.flatnonzero(first >= 0)
            win = owners[first[has]]
            for w in np.unique(win):
                sel = has[win == w]
                window = enc.windows[w]
                wanted[(d, int(w))] = (sel, first[sel] - window.start + window.prefix)
        items = sorted(wanted, key=lambda dw: len(encoded[dw[0]].windows[dw[1]].input_ids))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        lengths = [len(encoded[d].windows[w].input_ids) for d, w in items]
        for batch in (items[a:b] for a, b in padded_batches(lengths, self.batch_size)):
            seqs = [encoded[d].windows[w].input_ids for d, w in batch]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for r, s in enumerate(seqs):
                ids[r, : len(s)] = torch.as_tensor(s)
                mask[r, : len(s)] = 1
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            # only the positions words read: gathered where the logits are, so softmax, argmax and the copy back
            # touch one row per word, not every subword, window overlap and pad
            picks = [wanted[key] for key in batch]
            rows = np.repeat(np.arange(len(batch)), [len(pos) for _, pos in picks])
            cols = np.concatenate([pos for _, pos in picks])
            best_k, best_p = best_labels(logits, rows, cols)
            at = 0
            for key, (sel, _) in zip(batch, picks):
                labels, probs = results[key[0]]
                labels[sel] = best_k[at : at + len(sel)]
                probs[sel] = best_p[at : at + len(sel)]
                at += len(sel)
        return results

    def _decode(self, text: str, ws: list[Word], enc: EncodedDocument, pred: tuple[np.ndarray, np.ndarray]) -> list[Entity]:
        labels, probs = pred
        tags = [self.labels[k] for k in labels.tolist()]
        for i, tag in enumerate(tags):  # an entity never runs across a line break: I- after one starts anew
            if i and tag[0] == "I" and "\n" in text[ws[i - 1].end : ws[i].start]:
                tags[i] = "B" + tag[1:]
        entities = []
        scores = probs.tolist()  # Python floats: a mean of a few words costs less than a numpy call
        for first, last, label in tags_to_word_ranges(tags):
            start, end = ws[first].start, ws[last - 1].end
            if self.trim_proclitics:
                start = proclitic_subword_end(text, enc, first, ws[first], self._known_unit)
            score = sum(scores[first:last]) / (last - first)
            entities.append(Entity(start, end, label, text[start:end], round(score, 6)))
        return entities


MAX_PADDING = 0.1  # a batch of windows may be at most this share padding


def padded_batches(lengths: Sequence[int], batch_size: int, max_padding: float = MAX_PADDING) -> list[tuple[int, int]]:
    """`[start, end)` ranges cutting windows sorted by length into batches of at most `batch_size`,
    a batch closed early where adding the next (longer) window would make it more than `max_padding` padding.

    Length-sorted batches of a fixed count still pad an article's short tail window to the next
    one's full length; this keeps the positions the model runs close to the tokens it reads.
    """
    ranges, start, total = [], 0, 0
    for i, length in enumerate(lengths):
        size = i - start + 1
        if i > start and (size > batch_size or size * length > (total + length) * (1 + max_padding)):
            ranges.append((start, i))
            start, total = i, 0
        total += length
    if lengths:
        ranges.append((start, len(lengths)))
    return ranges


def best_labels(logits: torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best label id at each (row, col) of `logits` and its softmax probability, as numpy arrays.

    On a GPU the pick, softmax and argmax run there and only the answers come back. On a CPU numpy
    does it: torch's thread pool makes such small ops slow, and erratic on a busy machine.
    """
    if logits.device.type != "cpu":
        index = torch.as_tensor(rows).to(logits.device), torch.as_tensor(cols).to(logits.device)
        best_p, best_k = logits[index].float().softmax(-1).max(-1)
        return best_k.cpu().numpy(), best_p.cpu().numpy()
    picked = logits.float().numpy()[rows, cols]
    best_k = picked.argmax(-1)
    # the softmax of the best label: 1 / sum(exp(x - max)), with no division of the others
    best_p = 1.0 / np.exp(picked - picked.max(-1, keepdims=True)).sum(-1)
    return best_k, best_p.astype(np.float32)


def _load_classifier(path: str | Path, dtype: torch.dtype):
    """The folder's (or hub id's) token classifier, weights in `dtype`."""
    from transformers import AutoModelForTokenClassification

    return AutoModelForTokenClassification.from_pretrained(str(path), dtype=dtype)


def _load_tokenizer(path: str | Path):
    """The folder's fast tokenizer (character offsets are needed); ModelLoadError naming the folder otherwise."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError, KeyError) as e:
        raise ModelLoadError(f"{path}: cannot load the tokenizer: {e}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{path}: the tokenizer is not a fast tokenizer (character offsets are needed)")
    return tokenizer


def proclitic_subword_end(text: str, enc: EncodedDocument, word_index: int, word: Word, known_unit: Callable[[str], bool]) -> int:
    """Where a name starts once attached proclitics (و ف ب ل ك) are left out, as the spec wants.

    Only the model's own subwords decide: the word's first subword is made of proclitics only
    (`و` + `##يتكوف`), or, when the word is one token, what follows the proclitics is itself a
    single token of the vocabulary (`known_unit("أميركا")` for `وأميركا`). Otherwise the
    word start is kept.
    """
    t = enc.word_first_token[word_index]
    if t < 0:
        return word.start
    a, b = enc.offsets[t]
    if a == word.start and a < b < word.end and b - a <= 3 and all(c in PROCLITICS for c in text[a:b]):
        return b
    if a == word.start and b >= word.end:
        for k in (1, 2):
            head, rest = text[word.start : word.start + k], text[word.start + k : word.end]
            if len(rest) < 2 or any(c not in PROCLITICS for c in head):
                break
            if known_unit(rest):
                return word.start + k
    return word.start
