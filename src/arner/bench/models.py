"""The bench models: `tiny` (configs/tiny.yaml) or `bert-base` (AraBERT v0.2's exact shape), random weights.

Throughput does not depend on the weights, so nothing is downloaded: `bert-base` gets a WordPiece
tokenizer trained on the articles and a randomly initialised BertModel of AraBERT v0.2's shape.
"""

from __future__ import annotations

from pathlib import Path

import torch

from arner.core import corpus
from arner.core.conventions import ID2TAG, TAG2ID

# The run config of each model, looked up from the current directory (the repository root).
MODELS = {"tiny": "configs/tiny.yaml", "bert-base": "configs/arabert-v02.yaml"}
# aubmindlab/bert-base-arabertv02 config.json
ARABERT_V02 = dict(
    vocab_size=64000,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=512,
    type_vocab_size=2,
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    layer_norm_eps=1e-12,
    initializer_range=0.02,
)


def load_bench_config(model: str, config: Path | None, overrides: list[str] = ()):
    """The run config of `model`: `config`, or its default config under ./configs/."""
    from arner.train.config import load_config

    if model not in MODELS:
        raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {model!r}")
    path = Path(config or MODELS[model])
    if config is None and not path.is_file():
        raise ValueError(f"{path} not found under the current directory {Path.cwd()}: run from the repository root or pass --config")
    return load_config(path, list(overrides))


def build_model(model: str, texts: list[str], cfg, out: Path, seed: int) -> Path:
    """A random base model folder (BertModel + tokenizer, model_max_length = cfg.max_length)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from arner.train.model import build_tiny, train_wordpiece

    if model == "tiny":
        build_tiny(texts, cfg.tiny, out, seed)
        tokenizer = AutoTokenizer.from_pretrained(str(out))
    else:
        tokenizer = train_wordpiece(texts, ARABERT_V02["vocab_size"])
        torch.manual_seed(seed)
        BertModel(BertConfig(**ARABERT_V02, pad_token_id=tokenizer.pad_token_id)).save_pretrained(str(out))
    tokenizer.model_max_length = cfg.max_length
    tokenizer.save_pretrained(str(out))
    return out


def classifier_folder(base: Path, out: Path, docs: list[corpus.Document], seed: int) -> tuple[Path, dict]:
    """`base` with a random token-classification head over our tags, saved as a model folder.

    A random head tags 6 words in 7 as entities; post-processing cost grows with the number of
    entities, so the O logit gets the bias that makes the share of non-O tokens on the articles
    equal the share of words inside spans in the annotations.
    """
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from arner.core.conventions import word_tags, words

    torch.manual_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(str(base), num_labels=len(TAG2ID), id2label=dict(ID2TAG), label2id=dict(TAG2ID))
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    tags = [t for d in docs for t in word_tags(words(d.text), d.spans)]
    rate = sum(t != "O" for t in tags) / len(tags)
    enc = tokenizer([d.text for d in docs], truncation=True, max_length=tokenizer.model_max_length, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model.eval()(**enc).logits
    o = TAG2ID["O"]
    others = torch.cat([logits[..., :o], logits[..., o + 1 :]], -1).max(-1).values
    margin = (others - logits[..., o])[enc["attention_mask"].bool()]  # a token is non-O iff margin > bias
    bias = float(torch.quantile(margin.float(), 1 - rate))
    with torch.no_grad():
        model.classifier.bias[o] += bias
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out, {"o_bias": round(bias, 4), "entity_word_share": round(rate, 4)}
