"""`report.md`, `metrics.json`, `errors.json` and the PNG figures of one evaluation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from arner.core.conventions import LABELS, Span
from arner.eval.metrics import Error

KIND_TITLES = {
    "missed": "False negatives (missed gold spans)",
    "spurious": "False positives (spurious predictions)",
    "boundary": "Boundary errors (right label, wrong boundaries)",
    "type": "Type errors (right boundaries, wrong label)",
    "boundary_type": "Boundary and type errors (overlapping, wrong boundaries and label)",
}


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
    out = [f"| {first} | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    for name, m in rows:
        out.append(f"| {name} | {fmt(m['precision'])} | {fmt(m['recall'])} | {fmt(m['f1'])} | {m['support']} |")
    return out


def interval(block: dict) -> str:
    return f"{fmt(block['estimate'])} [{fmt(block['low'])}, {fmt(block['high'])}]"


def markdown(metrics: dict, errors: Sequence[Error], title: str = "Evaluation", source: str = "") -> str:
    lines = [f"# {title}", ""]
    if source:
        lines += [source, ""]
    b = metrics["bootstrap"]
    docs = metrics["per_doc"]
    lines += [
        f"{len(docs)} documents, {metrics['span']['strict']['micro']['support']} gold spans, "
        f"{metrics['span']['strict']['micro']['predicted']} predicted.",
        "",
        f"**Strict span micro F1: {interval(b)}** ({int(b['confidence'] * 100)}% bootstrap interval, "
        f"{b['resamples']} resamples of {b['paragraphs']} paragraphs, seed {b['seed']}).",
        "",
        "## Words (seqeval, strict IOB2)",
        "",
        "Over the spec's word view, one sequence per paragraph; entity-level, as conlleval.",
        "",
    ]
    w = metrics["word"]
    lines += prf_table([("micro", w["micro"]), ("macro", w["macro"])] + [(lab, w["per_label"][lab]) for lab in LABELS], "word")
    lines += ["", "## Character spans (SemEval-2013 schemas, nervaluate)", ""]
    lines += [
        "strict: same boundaries and label; exact: same boundaries; partial: overlap counts half; type: overlap with the same label.",
        "",
        "| schema | scope | precision | recall | F1 | support | predicted | correct | partial | incorrect | missed | spurious |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for schema, block in metrics["span"].items():
        for scope, m in [("micro", block["micro"])] + list(block["per_label"].items()):
            lines.append(
                f"| {schema} | {scope} | {fmt(m['precision'])} | {fmt(m['recall'])} | {fmt(m['f1'])} | {m['support']} | {m['predicted']} | "
                f"{m['correct']} | {m['partial']} | {m['incorrect']} | {m['missed']} | {m['spurious']} |"
            )
    lines += [
        "",
        "## Per document (strict spans)",
        "",
        "| doc | precision | recall | F1 | gold | predicted | correct |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for doc, m in docs.items():
        lines.append(
            f"| {doc} | {fmt(m['precision'])} | {fmt(m['recall'])} | {fmt(m['f1'])} | {m['support']} | {m['predicted']} | {m['correct']} |"
        )
    c = metrics["confusion"]
    lines += ["", "## Confusion", "", "Spans with identical boundaries: rows gold, columns predicted.", ""]
    lines += ["| gold \\ predicted | " + " | ".join(LABELS) + " |", "|---|" + "---:|" * len(LABELS)]
    for g in LABELS:
        lines.append(f"| {g} | " + " | ".join(str(c["matrix"][g][p]) for p in LABELS) + " |")
    lines += [
        "",
        f"Correct {c['correct']}; type errors {c['type']}; boundary-only errors {c['boundary']}; boundary and type errors "
        f"{c['boundary_type']}; missed {c['missed']}; spurious {c['spurious']}.",
        "",
        "## Bootstrap intervals",
        "",
        "| figure | estimate [95% interval] |",
        "|---|---|",
    ]
    for name, block in b["intervals"].items():
        lines.append(f"| {name} | {interval(block)} |")
    lines += [
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


def write_evaluation(folder: Path, metrics: dict, errors: Sequence[Error], title: str = "Evaluation", source: str = "") -> None:
    """Write the files of one evaluation into `folder` (the caller makes the folder atomic)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(dumps(metrics), encoding="utf-8")
    (folder / "errors.json").write_text(dumps([e.to_json() for e in errors]), encoding="utf-8")
    (folder / "report.md").write_text(markdown(metrics, errors, title, source), encoding="utf-8")
    plot_per_label(metrics, folder / "per_label_f1.png", f"{title}: F1 per label")
    plot_per_doc(metrics, folder / "per_doc_f1.png", f"{title}: strict span F1 per document")
