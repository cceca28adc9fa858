"""Write configs/pretrain-exclude/<corpus>.txt: the line indices of the raw-text documents that share
a word 8-gram with an ANERcorp *test* sentence (each corpus's anercorp_overlap.tsv), so that pretraining
never reads text of a test set it is scored on. Indices only: no text from ../shared/external is written.

    python scripts/pretrain_excludes.py [--external ../shared/external] [--out configs/pretrain-exclude]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from pathlib import Path

CORPORA = ["ant-multisource", "ant-jawharafm", "arwiki-comparable"]


def test_overlap_ids(folder: Path) -> set[str]:
    with (folder / "anercorp_overlap.tsv").open(encoding="utf-8") as f:
        return {row["id"] for row in csv.DictReader(f, delimiter="\t") if row["anercorp_split"] == "test"}


def line_indices(path: Path, ids: set[str]) -> list[int]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [i for i, line in enumerate(f) if line.strip() and json.loads(line)["id"] in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--external", type=Path, default=Path("../shared/external"))
    parser.add_argument("--out", type=Path, default=Path("configs/pretrain-exclude"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in CORPORA:
        ids = test_overlap_ids(args.external / name)
        found = line_indices(args.external / name / "articles.jsonl.gz", ids)
        print(
            f"{name}: {len(found)} of its {len(ids)} documents overlapping ANERcorp test are in the file (the others were removed upstream)"
        )
        if found:
            target = args.out / f"{name}.txt"
            target.write_text("".join(f"{i}\n" for i in found), encoding="utf-8")
            print(f"  wrote {target}")


if __name__ == "__main__":
    main()
