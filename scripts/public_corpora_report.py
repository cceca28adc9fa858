"""reports/public-corpora/README.md from the three `arner cv` runs of the public-corpora experiment (tables only).

The runs (each writes its own folder under reports/public-corpora/, with the command in its metrics.json):

    arner cv --config configs/public.yaml --set 'extra_train=[]' --out reports/public-corpora/articles-only ...
    arner cv --config configs/public-one-to-one.yaml --out reports/public-corpora/one-to-one ...
    arner cv --config configs/public.yaml --systems bert --out reports/public-corpora/partial ...

The CRF and memorization baselines cannot marginalize: with set-valued maps they read the public corpora through the
one-to-one reference maps, so their partial-label run would repeat the one-to-one run; it is not run twice.
Conclusions are written by hand in FINDINGS.md beside the report.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from arner.core import atomic
from arner.core.conventions import LABELS
from arner.core.tables import table
from arner.eval.report import fmt as f3
from arner.eval.report import interval

SETTINGS = (
    ("articles only", "articles-only"),
    ("articles + public, one-to-one maps", "one-to-one"),
    ("articles + public, partial labels", "partial"),
)
CORPORA = ("anercorp-test", "wojood-test")


def load(out: Path) -> dict[str, dict]:
    return {
        folder: json.loads((out / folder / "metrics.json").read_text(encoding="utf-8")) for _, folder in SETTINGS if (out / folder).is_dir()
    }


def articles_table(runs: dict[str, dict]) -> list[str]:
    rows = []
    for title, folder in SETTINGS:
        for system, s in runs.get(folder, {}).get("systems", {}).items():
            p = s["pooled"]
            per_label = [f3(p[f"span_strict_{lab}_f1"]["estimate"]) for lab in LABELS]
            rows.append([title, system, interval(p["span_strict_micro_f1"]), f3(p["span_partial_micro_f1"]["estimate"]), *per_label])
    header = ["training data", "system", "strict F1 [95%]", "partial F1", *(f"{lab} strict F1" for lab in LABELS)]
    return table(header, rows, "ll" + "r" * (len(header) - 2))


def external_table(runs: dict[str, dict]) -> list[str]:
    rows = []
    for title, folder in SETTINGS:
        for system, s in runs.get(folder, {}).get("systems", {}).items():
            cells = [title, system]
            for corpus in CORPORA:
                e = s.get("external", {}).get(corpus)
                cells += [f"{f3(e['mean'][k])} ± {f3(e['std'][k])}" for k in ("strict_f1", "loose_f1")] if e else ["—", "—"]
            rows.append(cells)
    header = ["training data", "system", *(f"{c} {k}" for c in CORPORA for k in ("strict F1", "loose F1"))]
    return table(header, rows, "ll" + "r" * (len(header) - 2))


def error_type(error: dict) -> str:
    """`kind: gold labels → predicted label`, e.g. `type: PLACE → ACTOR`, `missed: DATE`, `spurious: ACTOR`."""
    gold = "+".join(g["label"] for g in error.get("gold") or [])
    pred = (error.get("pred") or {}).get("label", "")
    if error["kind"] == "missed":
        return f"missed: {gold}"
    if error["kind"] == "spurious":
        return f"spurious: {pred}"
    return f"{error['kind']}: {gold} → {pred}"


def errors_table(out: Path, runs: dict[str, dict], most: int = 20) -> list[str]:
    columns, counts = [], {}
    for _, folder in SETTINGS:
        for system in runs.get(folder, {}).get("systems", {}):
            errors = json.loads((out / folder / system / "errors.json").read_text(encoding="utf-8"))
            columns.append(f"{folder} {system}")
            counts[columns[-1]] = Counter(error_type(e) for e in errors)
    total = sum(counts.values(), Counter())
    rows = [[kind, *(counts[c][kind] for c in columns)] for kind, _ in total.most_common(most)]
    return table(["error type", *columns], rows, "l" + "r" * len(columns))


def commands(runs: dict[str, dict]) -> list[str]:
    return [f"- {title}: `{runs[folder]['command']}`" for title, folder in SETTINGS if folder in runs]


def markdown(out: Path) -> str:
    runs = load(out)
    lines = [
        "# Public corpora with partial labels: leave-one-article-out",
        "",
        "Each fold trains on four articles (plus the public corpora of the setting) and tags the fifth; the held-out",
        "predictions are pooled and scored once (95% paragraph-bootstrap intervals). The public test corpora are tagged by",
        "each fold model (mean ± standard deviation over the five). *strict*: boundaries and mapped label; *loose*: ACTOR",
        "and PLACE merged. The CRF and memorization baselines read the public corpora through one-to-one maps in every",
        "setting (they cannot marginalize), so they appear once, in the one-to-one run. Conclusions: see",
        "[FINDINGS.md](FINDINGS.md) (written by hand from these tables).",
        "",
        "Commands (each folder holds the full `arner cv` report):",
        "",
        *commands(runs),
        f"- this report: `python scripts/public_corpora_report.py --out {out}`",
        "",
        "## The five articles (pooled over the held-out articles)",
        "",
        *articles_table(runs),
        "",
        "## Public test corpora (the fold models)",
        "",
        *external_table(runs),
        "",
        "## The 20 most frequent error types on the articles (all systems together; counts per system)",
        "",
        *errors_table(out, runs),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="reports/public-corpora", help="the experiment folder (the three cv runs are inside)")
    args = parser.parse_args()
    out = Path(args.out)
    atomic.write_text(out / "README.md", markdown(out))
    print(f"wrote {out / 'README.md'}")


if __name__ == "__main__":
    main()
