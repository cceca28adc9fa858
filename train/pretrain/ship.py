"""Shipping the project's encoder: an `arner pretrain` ELECTRA run folder → `models/<name>/`, fp16, with a model card.

The shipped folder is what `configs/encoder.yaml` (and so the quickstart) fine-tunes and what the
next pretraining run continues from: the discriminator (a standard `ElectraForPreTraining` folder), the generator in
`generator/` (its own weights only), the tokenizer, `arner.json` (the run's record, with the
cumulative tokens and steps) and `README.md` (the model card). Everything is written to a temporary
folder, checked against the size limit (the folder travels with every call to a lent GPU machine),
then renamed into place: a failed ship leaves the previous encoder as it was. The project keeps one
encoder: shipping refuses a second folder beside another one under `models/`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from arner.core import atomic
from arner.train.pretrain.card import encoder_card

LIMIT_BYTES = 30_000_000  # the whole folder; see the module docstring

# Probes written for the card (not taken from any corpus): a masked word for the generator to fill,
# and a sentence with one word swapped (original, swapped) for the discriminator to find.
FILL_PROBES = [
    "وصل وزير الخارجية الروسي إلى [MASK] يوم الاثنين في زيارة رسمية",
    "عقد مجلس الأمن الدولي جلسة طارئة لبحث الأزمة في [MASK]",
    "قال المتحدث باسم [MASK] الأمريكية إن المحادثات كانت بناءة",
]
SWAP_PROBES = [
    ("التقى الرئيس الروسي نظيره الأمريكي في العاصمة السعودية", "نظيره", "البرتقال"),
    ("أعلنت وزارة الخارجية أن الوزير سيزور القاهرة الأسبوع المقبل", "سيزور", "سيأكل"),
]


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def fingerprints(folder: Path) -> dict[str, str]:
    """sha256 of every file in `folder` (relative path → hex), the card's own excluded."""
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*"))
        if f.is_file() and f.name != "README.md"
    }


def fill_mask(model, tokenizer, sentence: str, top: int = 5) -> list[str]:
    """The generator's `top` subwords for the (single) [MASK] of `sentence`."""
    batch = tokenizer(sentence, return_tensors="pt")
    position = int((batch["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0])
    with torch.no_grad():
        hidden = model.generator.electra(**batch)[0][0, position]
        logits = model.generator.generator_lm_head(model.generator.generator_predictions(hidden))
    return tokenizer.convert_ids_to_tokens(logits.topk(top).indices.tolist())


def word_replaced_probabilities(model, tokenizer, words: list[str]) -> list[float]:
    """For each word, the discriminator's highest probability over its subwords that it was replaced."""
    batch = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        scores = torch.sigmoid(model.discriminator(**batch).logits[0].float()).tolist()
    best = [0.0] * len(words)
    for position, word in enumerate(batch.word_ids(0)):
        if word is not None:
            best[word] = max(best[word], scores[position])
    return best


def probes(model, tokenizer) -> dict:
    """What the card shows the encoder does: fill-mask by the generator, replaced-word detection by the discriminator."""
    model.eval()
    fills = [{"text": s, "top": fill_mask(model, tokenizer, s.replace("[MASK]", tokenizer.mask_token))} for s in FILL_PROBES]
    swaps = []
    for sentence, word, swapped in SWAP_PROBES:
        words = sentence.split()
        at = words.index(word)
        scores = word_replaced_probabilities(model, tokenizer, words[:at] + [swapped] + words[at + 1 :])
        others = scores[:at] + scores[at + 1 :]
        swaps.append(
            {
                "text": sentence,
                "swapped": f"{word} → {swapped}",
                "p_replaced_swapped_word": round(scores[at], 3),
                "p_replaced_other_words_mean": round(sum(others) / len(others), 3),
                "most_suspect_word": (words[:at] + [swapped] + words[at + 1 :])[max(range(len(scores)), key=scores.__getitem__)],
            }
        )
    return {"fill_mask": fills, "replaced_token": swaps}


def check_single(target: Path) -> None:
    """The project keeps one encoder: refuse to ship beside another folder under the same parent."""
    parent = target.parent
    if not parent.is_dir():
        return
    others = sorted(p.name for p in parent.iterdir() if p.is_dir() and p.name != target.name and not p.name.startswith("."))
    if others:
        raise ValueError(
            f"{parent}: already holds {', '.join(others)}; the project ships one encoder (remove it first, or ship to its name)"
        )


def ship(run: str | Path, target: str | Path, command: str, limit: int = LIMIT_BYTES) -> dict:
    """Write `run`'s encoder to `target` in fp16 with its card; returns the shipped record (also in arner.json)."""
    from transformers import AutoTokenizer

    from arner.train.config import PretrainConfig
    from arner.train.pretrain.electra import load_electra, save_electra

    run, target = Path(run), atomic.check_target(target)
    meta_path = run / "arner.json"
    if not meta_path.is_file():
        raise ValueError(f"{run}: no arner.json (not a finished `arner pretrain` run)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("config", {}).get("objective") != "electra":
        raise ValueError(f"{run}: objective {meta.get('config', {}).get('objective', 'mlm')!r}; only an ELECTRA run is shipped")
    check_single(target)
    config = PretrainConfig.model_validate(meta["config"])
    model = load_electra(config, str(run), str(meta_path))
    tokenizer = AutoTokenizer.from_pretrained(str(run))
    found = probes(model, tokenizer)
    with atomic.directory(target) as tmp:
        save_electra(model, tmp, torch.float16)
        tokenizer.save_pretrained(str(tmp))
        shipped = {"from_run": str(run), "command": command, "dtype": "float16", "probes": found}
        (tmp / "arner.json").write_text(json.dumps({**meta, "shipped": shipped}, indent=2, ensure_ascii=False), encoding="utf-8")
        prints = fingerprints(tmp)
        (tmp / "README.md").write_text(encoder_card(target.name, meta, found, prints, command, model), encoding="utf-8")
        size = folder_bytes(tmp)
        if size > limit:
            raise ValueError(f"{target}: {size:,} bytes, over the {limit:,}-byte limit of the shipped encoder (nothing was replaced)")
    return {**shipped, "bytes": size, "files": prints}
