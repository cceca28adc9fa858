"""Do the faster precisions give the same answers? Each against fp32, leave-one-article-out.

    python scripts/precision_check.py --config configs/tiny.yaml --out reports/inference
    python scripts/precision_check.py --config configs/encoder.yaml --out reports/inference

Trains one model per fold (article K held out), then tags the held-out article with the Tagger in
each precision: fp32 (the reference), torch dynamic int8, bf16 where the CPU has it, and ONNX
Runtime fp32 and int8 (`arner export --format onnx [--quantize int8]`). Reports per precision the
word-tag agreement with fp32 over the five held-out articles, the pooled strict span F1 and its
difference from fp32 (issue 17's bar: agreement >= 99.5%, F1 within 0.005). Writes
precision-<config>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from arner.bench.infer import load_tagger
from arner.core import atomic, corpus
from arner.core.defaults import BATCH_SIZE, STRIDE
from arner.core.tables import table
from arner.eval.spanscore import span_scores
from arner.eval.training import train
from arner.inference.precision import cpu_has_bf16
from arner.train.config import load_config

AGREEMENT_BAR, F1_BAR = 0.995, 0.005


def precisions() -> list[str]:
    return ["fp32", "int8"] + (["bf16"] if cpu_has_bf16() else []) + ["onnx-fp32", "onnx-int8"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/tiny.yaml")
    parser.add_argument("--out", default="reports/inference")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.config, ["progress_bar=false"])
    documents = corpus.load(config.annotations)
    names = precisions()
    tags: dict[str, list[list[str]]] = {p: [] for p in names}
    spans: dict[str, list[list]] = {p: [] for p in names}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for k, doc in enumerate(documents):
            train(config, work / f"fold-{k}", fold=k)
            for p in names:
                tagger = load_tagger(work / f"fold-{k}", "cpu", BATCH_SIZE, STRIDE, p, work)
                tags[p].append(tagger.word_tags(doc.text))
                spans[p].append([e.span() for e in tagger(doc.text)])
    gold = [d.spans for d in documents]
    reference_f1 = span_scores(gold, spans["fp32"])["strict"]["micro"]["f1"]
    rows = {}
    for p in names:
        pairs = [(a, b) for x, y in zip(tags[p], tags["fp32"]) for a, b in zip(x, y, strict=True)]
        f1 = span_scores(gold, spans[p])["strict"]["micro"]["f1"]
        agreement = sum(a == b for a, b in pairs) / len(pairs)
        rows[p] = {
            "word_tag_agreement": round(agreement, 5),
            "words": len(pairs),
            "strict_f1": round(f1, 4),
            "f1_minus_fp32": round(f1 - reference_f1, 4),
            "within_bars": agreement >= AGREEMENT_BAR and abs(f1 - reference_f1) <= F1_BAR,
        }
    command = f"python scripts/precision_check.py --config {args.config} --out {args.out} --threads {args.threads}"
    result = {"command": command, "config": args.config, "bars": {"agreement": AGREEMENT_BAR, "f1": F1_BAR}, "precisions": rows}
    stem = Path(args.out) / f"precision-{Path(args.config).stem}"
    atomic.write_text(stem.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    lines = table(
        ["precision", "word tags equal to fp32", "pooled strict F1", "F1 - fp32", "within the bars"],
        [
            (
                p,
                f"{r['word_tag_agreement']:.2%}",
                f"{r['strict_f1']:.3f}",
                f"{r['f1_minus_fp32']:+.3f}",
                "yes" if r["within_bars"] else "no",
            )
            for p, r in rows.items()
        ],
        "lrrrl",
    )
    text = (
        f"# Faster precisions against fp32: `{args.config}`\n\nLeave-one-article-out: one model per fold, each precision tags "
        f"the held-out article; {rows['fp32']['words']} words pooled. Bars (issue 17): word tags equal to fp32 on at least "
        f"{AGREEMENT_BAR:.1%} of words, pooled strict span F1 within {F1_BAR} of fp32.\n\n`{command}`\n\n" + "\n".join(lines) + "\n"
    )
    atomic.write_text(stem.with_suffix(".md"), text)
    print(text)


if __name__ == "__main__":
    main()
