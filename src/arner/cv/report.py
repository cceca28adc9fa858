"""The cross-validation report: `report.md` tables and `comparison.png` (numbers only; no conclusions are generated)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from arner.core.conventions import LABELS
from arner.core.corpus import Document
from arner.core.tables import table
from arner.eval.report import fmt, interval, pyplot, save_figure

FIGURES = ("word_micro_f1", "span_strict_micro_f1", "span_partial_micro_f1") + tuple(f"span_strict_{lab}_f1" for lab in LABELS)
FIGURE_TITLES = {
    "word_micro_f1": "word micro F1",
    "span_strict_micro_f1": "span strict F1",
    "span_partial_micro_f1": "span partial F1",
    **{f"span_strict_{lab}_f1": f"{lab} strict F1" for lab in LABELS},
}


def figures(metrics: dict) -> dict[str, float]:
    """The comparison figures of one evaluation."""
    out = {
        "word_micro_f1": metrics["word"]["micro"]["f1"],
        "span_strict_micro_f1": metrics["span"]["strict"]["micro"]["f1"],
        "span_partial_micro_f1": metrics["span"]["partial"]["micro"]["f1"],
    }
    for lab in LABELS:
        out[f"span_strict_{lab}_f1"] = metrics["span"]["strict"]["per_label"][lab]["f1"]
    return {k: float(v) for k, v in out.items()}


def external_markdown(summaries: dict[str, dict]) -> list[str]:
    """Tables of the external test scores (mean ± std over the fold models), one per corpus."""
    corpora = sorted({c for s in summaries.values() for c in s.get("external", {})})
    if not corpora:
        return []
    lines = [
        "## External test corpora",
        "",
        "Each fold's model (four articles plus any `extra_train` corpora) tags each public test corpus; mean ± standard "
        "deviation over the five fold models. *strict*: boundaries and mapped label; *loose*: ACTOR and PLACE merged, since "
        "these corpora tag countries and cities by type, not by role. DATE is scored only where the corpus has DATE.",
        "",
    ]
    for c in corpora:
        keys = next(s["external"][c]["mean"] for s in summaries.values() if c in s.get("external", {})).keys()
        rows = [(name, *(mean_std_cell(s["external"][c], k) for k in keys)) for name, s in summaries.items() if c in s.get("external", {})]
        lines += [f"### {c}", "", *table(["system", *(k.replace("_f1", " F1") for k in keys)], rows), ""]
    return lines


def mean_std_cell(block: dict, key: str) -> str:
    return f"{fmt(block['mean'][key])} ± {fmt(block['std'][key])}"


def markdown(summaries: dict[str, dict], documents: Sequence[Document], command: str, resamples: int, seed: int) -> str:
    titles = [FIGURE_TITLES[f] for f in FIGURES]
    lines = [
        "# Leave-one-article-out cross-validation",
        "",
        f"Produced by `{command}`.",
        "",
        f"Fold K trains on four articles and predicts the held-out article K; the {len(documents)} held-out prediction files "
        "are pooled and scored once (pooled micro), with 95% intervals from resampling paragraphs "
        f"({resamples} resamples, seed {seed}). Per-fold mean ± sample standard deviation below.",
        "",
        *table(["fold", "held-out article", "gold spans"], [(k, d.doc, len(d.spans)) for k, d in enumerate(documents)], "rlr"),
        "",
        "## Comparison (pooled over the five held-out articles)",
        "",
        *table(["system", *titles], [(name, *(interval(s["pooled"][f]) for f in FIGURES)) for name, s in summaries.items()]),
        "",
        "Per-fold mean ± standard deviation:",
        "",
        *table(["system", *titles], [(name, *(mean_std_cell(s, f) for f in FIGURES)) for name, s in summaries.items()]),
        "",
        "![comparison](comparison.png)",
        "",
        *external_markdown(summaries),
        "## Per fold",
        "",
    ]
    for name, s in summaries.items():
        rows = [(f["fold"], f["doc"], *(fmt(f[k]) for k in FIGURES)) for f in s["per_fold"]]
        lines += [f"### {name}", "", f"Full report: [{name}/report.md]({name}/report.md).", ""]
        lines += [*table(["fold", "article", *titles], rows, "rl" + "r" * len(FIGURES)), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def plot_comparison(summaries: dict[str, dict], path: Path) -> None:

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    names = list(summaries)
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        pooled = summaries[name]["pooled"]
        xs = [i + (k - (len(names) - 1) / 2) * width for i in range(len(FIGURES))]
        ys = [pooled[f]["estimate"] for f in FIGURES]
        err = [[y - pooled[f]["low"] for y, f in zip(ys, FIGURES)], [pooled[f]["high"] - y for y, f in zip(ys, FIGURES)]]
        ax.bar(xs, ys, width, yerr=err, capsize=3, label=name)
    ax.set_xticks(range(len(FIGURES)), [FIGURE_TITLES[f].replace(" F1", "") for f in FIGURES], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1 (pooled, 95% bootstrap interval)")
    ax.set_title("Leave-one-article-out: systems compared")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    plt.close(fig)
