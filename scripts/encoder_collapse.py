"""How alike an encoder's last-layer vectors are across the positions of a text: a collapsed encoder
(every position nearly the same vector) carries no token identity for fine-tuning to use.

    python scripts/encoder_collapse.py MODEL_DIR [MODEL_DIR ...] [--text FILE]
    python scripts/encoder_collapse.py --random-copy models/arner-electra-ar OUT_DIR   # the control: same shape, random weights

Prints, per model, the mean cosine similarity between the last-layer vectors of distinct positions
of the first article (1.0: all the same direction) and the share of variance on the first principal
component. Read on an article only as input text; no labels are used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from arner.train.pretrain.electra import position_cosine


def collapse(model_dir: str, text: str) -> dict:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    batch = tokenizer(text, return_tensors="pt", truncation=True, max_length=128)
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state[0, 1:-1]
    centered = hidden - hidden.mean(0)
    s = torch.linalg.svdvals(centered)
    cosine = position_cosine(hidden[None], torch.ones(1, len(hidden)))
    return {"mean_cosine": round(cosine, 3), "first_component_share": round(float(s[0] ** 2 / (s**2).sum()), 3), "positions": len(hidden)}


def random_copy(model_dir: str, out: str, seed: int = 0) -> None:
    """A folder with `model_dir`'s config and tokenizer and random weights (the same initialization as pretraining's)."""
    from transformers import AutoConfig, AutoModelForPreTraining, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    config.dtype = "float32"
    torch.manual_seed(seed)
    AutoModelForPreTraining.from_config(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*")
    parser.add_argument("--text", type=Path, default=sorted(Path("annotations/articles").glob("*.txt"))[0])
    parser.add_argument("--random-copy", nargs=2, metavar=("MODEL_DIR", "OUT_DIR"))
    args = parser.parse_args()
    if args.random_copy:
        random_copy(*args.random_copy)
    text = args.text.read_text(encoding="utf-8")
    for m in args.models:
        print(m, collapse(m, text))


if __name__ == "__main__":
    main()
