"""Where the Tagger's time goes, stage by stage: words, tokenization and windows, the model, decoding.

    python scripts/profile_infer.py --model runs/tiny --out reports/inference
    python scripts/profile_infer.py --model runs/tiny --host-only --out reports/inference

Tags the five articles repeated `--repeat` times and times each stage of `Tagger.predict` separately
(best of `--rounds`). `--host-only` swaps the model for the benches' `FixedLogits` (logits read from a
table), so what is left is the code around the model. Writes profile-<name>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from arner.bench.infer import FixedLogits
from arner.core import atomic, corpus
from arner.core.conventions import words
from arner.core.tables import table
from arner.inference import Tagger


def stages(tagger: Tagger, texts: list[str]) -> dict[str, float]:
    """Seconds of each stage of one `predict` call, run step by step as `predict` runs them."""
    seconds = {}
    t0 = time.perf_counter()
    for t in texts:
        words(t)
    seconds["words (regex split)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    doc_words, encoded = tagger._encode(texts)
    seconds["tokenization and windows (includes words again)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    predictions = tagger._word_predictions(encoded)
    seconds["model and first-subword labels"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for text, ws, enc, pred in zip(texts, doc_words, encoded, predictions):
        tagger._decode(text, ws, enc, pred)
    seconds["decoding to entities"] = time.perf_counter() - t0
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/tiny")
    parser.add_argument("--out", default="reports/inference")
    parser.add_argument("--repeat", type=int, default=20, help="the five articles, this many times over")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--host-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tagger = Tagger.from_pretrained(args.model, device="cpu")
    texts = [d.text for d in corpus.load("annotations")] * args.repeat
    if args.host_only:
        tagger.model = FixedLogits(tagger.model, entity_share=0.224)
    tagger.predict(texts[:5])  # warm-up
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for stage, s in stages(tagger, texts).items():
            best[stage] = min(best.get(stage, s), s)
    tokens = sum(len(e.input_ids) for e in tagger._encode(texts)[1])
    total = sum(v for k, v in best.items() if k != "words (regex split)")
    name = f"profile-{Path(args.model).name}" + ("-host-only" if args.host_only else "")
    command = f"python scripts/profile_infer.py --model {args.model} --out {args.out} --repeat {args.repeat} --rounds {args.rounds} "
    command += f"--threads {args.threads}" + (" --host-only" if args.host_only else "")
    result = {
        "command": command,
        "texts": len(texts),
        "tokens": tokens,
        "seconds": {k: round(v, 4) for k, v in best.items()},
        "tokens_per_second": round(tokens / total, 1),
    }
    stem = Path(args.out) / name
    atomic.write_text(stem.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    rows = [(k, f"{v:.3f}", f"{v / total:.0%}" if k != "words (regex split)" else "(inside the next)") for k, v in best.items()]
    text = (
        f"# Where the Tagger's time goes: `{args.model}`{' (host only)' if args.host_only else ''}\n\n`{command}`\n\n"
        f"{len(texts)} texts, {tokens:,} subwords; best of {args.rounds} rounds per stage; {result['tokens_per_second']:,.0f} tokens/s "
        f"over the three stages of `predict`.\n\n" + "\n".join(table(["stage", "seconds", "share"], rows, "lrr")) + "\n"
    )
    atomic.write_text(stem.with_suffix(".md"), text)
    print(text)


if __name__ == "__main__":
    main()
