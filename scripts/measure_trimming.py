"""Does leaving proclitics out of predicted spans help? Strict span F1, leave-one-article-out.

    python scripts/measure_trimming.py --config configs/tiny.yaml --out reports/inference

Trains one model per fold (article K held out), tags the held-out article with proclitic
trimming on and off, pools the five articles and scores each way with the evaluation's
span scorer. Writes trimming.json and trimming.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from arner.core import atomic, corpus
from arner.core.tables import table
from arner.eval.spanscore import SCHEMAS, span_scores
from arner.eval.training import train
from arner.inference import Tagger
from arner.train.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/tiny.yaml")
    parser.add_argument("--out", default="reports/inference")
    parser.add_argument("--set", action="append", default=[], help="config override key=value")
    args = parser.parse_args()
    config = load_config(args.config, args.set + ["progress_bar=false"])
    documents = corpus.load(config.annotations)
    pred = {True: [], False: []}
    with tempfile.TemporaryDirectory() as work:
        for k, doc in enumerate(documents):
            train(config, Path(work) / f"fold-{k}", fold=k)
            tagger = Tagger.from_pretrained(Path(work) / f"fold-{k}", device="cpu")
            for trim in (True, False):
                tagger.trim_proclitics = trim
                pred[trim].append([e.span() for e in tagger(doc.text)])
    gold = [d.spans for d in documents]
    result = {"command": f"python scripts/measure_trimming.py --config {args.config}" + "".join(f" --set {s}" for s in args.set)}
    for trim in (True, False):
        s = span_scores(gold, pred[trim])
        result["trimmed" if trim else "untrimmed"] = {schema: s[schema]["micro"]["f1"] for schema in SCHEMAS}
    result["keep"] = "trimmed" if result["trimmed"]["strict"] >= result["untrimmed"]["strict"] else "untrimmed"
    out = Path(args.out)
    atomic.write_text(out / "trimming.json", json.dumps(result, indent=2) + "\n")
    rows = [(k, *(f"{result[k][s]:.3f}" for s in SCHEMAS)) for k in ("trimmed", "untrimmed")]
    atomic.write_text(
        out / "trimming.md",
        f"# Proclitic trimming of predicted spans\n\nLeave-one-article-out, pooled micro F1 over the five held-out articles.\n\n"
        f"`{result['command']}`\n\n" + "\n".join(table(["spans", *SCHEMAS], rows)) + f"\n\nKept: **{result['keep']}**.\n",
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
