"""`report.md`, `metrics.json`, `errors.json`, `errors.html` and the PNG figures of one evaluation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from arner.core.conventions import LABELS, Span
from arner.core.corpus import Document
from arner.core.tables import table
from arner.eval.errors_page import errors_html
from arner.eval.metrics import KIND_TITLES, Error


def dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


def fmt(x: float) -> str:
    return f"{x:.3f}"


def _code(text: str) -> str:
    """Inline code that survives any context (backticks doubled out, pipes kept)."""
    return "`` " + text.replace("`", "'") + " ``"


def _span(s: Span | dict) -> str:
    s = s.to_json() if isinstance(s, Span) else s
    return f"{s['label']} «{s['text']}» [{s['start']}:{s['end']}]"


def prf_table(rows: Sequence[tuple[str, dict]], first: str = "") -> list[str]:
    cells = [(name, fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"]), m["support"]) for name, m in rows]
    return table([first, "precision", "recall", "F1", "support"], cells, "lrrrr")


def interval(block: dict) -> str:
    return f"{fmt(block['estimate'])} [{fmt(block['low'])}, {fmt(block['high'])}]"


def headline(metrics: dict, title: str, source: str) -> list[str]:
    b = metrics["bootstrap"]
    strict = metrics["span"]["strict"]["micro"]
    return [
        f"# {title}",
        "",
        *([source, ""] if source else []),
        f"{len(metrics['per_doc'])} documents, {strict['support']} gold spans, {strict['predicted']} predicted.",
        "",
        f"**Strict span micro F1: {interval(b)}** ({int(b['confidence'] * 100)}% bootstrap interval, "
        f"{b['resamples']} resamples of {b['paragraphs']} paragraphs, seed {b['seed']}).",
        "",
    ]


def word_section(metrics: dict) -> list[str]:
    w = metrics["word"]
    rows = [("micro", w["micro"]), ("macro", w["macro"])] + [(lab, w["per_label"][lab]) for lab in LABELS]
    intro = [
        "## Words (seqeval, strict IOB2)",
        "",
        "Over the spec's word view, one sequence per paragraph; entity-level, as conlleval.",
        "",
    ]
    return intro + prf_table(rows, "word")


def span_section(metrics: dict) -> list[str]:
    keys = ("support", "predicted", "correct", "partial", "incorrect", "missed", "spurious")
    rows = [
        (schema, scope, fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"]), *(m[k] for k in keys))
        for schema, block in metrics["span"].items()
        for scope, m in [("micro", block["micro"]), *block["per_label"].items()]
    ]
    header = ["schema", "scope", "precision", "recall", "F1", *keys]
    return [
        "",
        "## Character spans (SemEval-2013 schemas, nervaluate)",
        "",
        "strict: same boundaries and label; exact: same boundaries; partial: overlap counts half; type: overlap with the same label.",
        "",
        *table(header, rows, "ll" + "r" * 10),
    ]


def per_doc_section(metrics: dict) -> list[str]:
    rows = [
        (doc, fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"]), m["support"], m["predicted"], m["correct"])
        for doc, m in metrics["per_doc"].items()
    ]
    header = ["doc", "precision", "recall", "F1", "gold", "predicted", "correct"]
    return ["", "## Per document (strict spans)", "", *table(header, rows, "lrrrrrr")]


def confusion_section(metrics: dict) -> list[str]:
    c = metrics["confusion"]
    rows = [(g, *(c["matrix"][g][p] for p in LABELS)) for g in LABELS]
    return [
        "",
        "## Confusion",
        "",
        "Spans with identical boundaries: rows gold, columns predicted.",
        "",
        *table(["gold \\ predicted", *LABELS], rows, "l" + "r" * len(LABELS)),
        "",
        f"Correct {c['correct']}; type errors {c['type']}; boundary-only errors {c['boundary']}; boundary and type errors "
        f"{c['boundary_type']}; missed {c['missed']}; spurious {c['spurious']}.",
    ]


def intervals_section(metrics: dict) -> list[str]:
    rows = [(name, interval(block)) for name, block in metrics["bootstrap"]["intervals"].items()]
    return ["", "## Bootstrap intervals", "", *table(["figure", "estimate [95% interval]"], rows)]


def errors_section(errors: Sequence[Error]) -> list[str]:
    lines = [
        "",
        f"## Errors ({len(errors)})",
        "",
        "Each with 40 characters of context either side; `[[...]]` marks the span(s) involved.",
        "",
    ]
    for kind, heading in KIND_TITLES.items():
        found = [e for e in errors if e.kind == kind]
        lines += [f"### {heading}: {len(found)}", ""]
        for e in found:
            parts = []
            if e.gold:
                parts.append("gold " + " + ".join(_span(s) for s in e.gold))
            if e.pred:
                parts.append("predicted " + _span(e.pred))
            lines.append(f"- {e.doc}: {' → '.join(parts)} — {_code(e.context)}")
        lines.append("")
    return lines


def markdown(metrics: dict, errors: Sequence[Error], title: str = "Evaluation", source: str = "") -> str:
    lines = headline(metrics, title, source) + word_section(metrics) + span_section(metrics) + per_doc_section(metrics)
    lines += confusion_section(metrics) + intervals_section(metrics) + errors_section(errors)
    return "\n".join(lines).rstrip("\n") + "\n"


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})


def plot_per_label(metrics: dict, path: Path, title: str = "") -> None:
    """Grouped bars: per label (and micro), word F1, strict span F1, partial span F1."""
    plt = pyplot()
    scopes = ["micro", *LABELS]

    def pick(block: dict, scope: str) -> dict:
        return block["micro"] if scope == "micro" else block["per_label"][scope]

    series = {
        "word (seqeval)": [pick(metrics["word"], s) for s in scopes],
        "span strict": [pick(metrics["span"]["strict"], s) for s in scopes],
        "span partial": [pick(metrics["span"]["partial"], s) for s in scopes],
    }
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(series)
    for k, (name, blocks) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(scopes))]
        bars = ax.bar(xs, [m["f1"] for m in blocks], width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(scopes)), scopes)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("F1")
    ax.set_title(title or "F1 per label")
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, path)
    plt.close(fig)


def plot_per_doc(metrics: dict, path: Path, title: str = "") -> None:
    plt = pyplot()
    docs = list(metrics["per_doc"])
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(docs) + 1.5))
    values = [metrics["per_doc"][d]["f1"] for d in docs]
    bars = ax.barh(range(len(docs)), values)
    ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_yticks(range(len(docs)), docs, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("strict span F1")
    ax.set_title(title or "Strict span F1 per document")
    save_figure(fig, path)
    plt.close(fig)


def write_evaluation(
    folder: Path,
    metrics: dict,
    errors: Sequence[Error],
    title: str = "Evaluation",
    source: str = "",
    *,
    gold: Sequence[Document],
    pred: Sequence[Document],
) -> None:
    """Write the files of one evaluation into `folder` (the caller makes the folder atomic).

    `gold` and `pred` are the documents scored and their predicted spans: `errors.html` shows each error in its passage."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(dumps(metrics), encoding="utf-8")
    (folder / "errors.json").write_text(dumps([e.to_json() for e in errors]), encoding="utf-8")
    (folder / "errors.html").write_text(errors_html(errors, gold, pred, title), encoding="utf-8")
    (folder / "report.md").write_text(markdown(metrics, errors, title, source), encoding="utf-8")
    plot_per_label(metrics, folder / "per_label_f1.png", f"{title}: F1 per label")
    plot_per_doc(metrics, folder / "per_doc_f1.png", f"{title}: strict span F1 per document")
