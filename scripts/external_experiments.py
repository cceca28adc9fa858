"""The public-corpora experiments of reports/external/ (the tiny BERT and the CRF on the same data).

    python scripts/external_experiments.py articles-only    # 1: trained on the five articles; scored on ANERcorp test, Wojood test
    python scripts/external_experiments.py external-only    # 2: trained on ANERcorp train + AQMAR; scored on the articles and ANERcorp test
    arner cv --config configs/tiny-anercorp.yaml --out reports/external/anercorp-plus-articles   # 3: ANERcorp train + 4 articles -> 5th
    python scripts/external_experiments.py summary          # reports/external/README.md from the three (and reports/cv-tiny)

Corpora are read from ../shared/external at run time (config key external_root).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from arner.core import atomic, corpus
from arner.core.tables import table as markdown_table
from arner.cv import ExternalData, figures
from arner.eval.baselines import BASELINES
from arner.eval.metrics import evaluate
from arner.eval.training import train
from arner.inference import Tagger
from arner.train.config import load_config

OUT = Path("reports/external")
TESTS = ["external_test=[{name: anercorp-test, files: [anercorp/test.conll]}, {name: wojood-test, files: [wojood_sample/test.conll]}]"]
PUBLISHED = "AraBERT v0.1: 83.1 F1 on ANERcorp test (CAMeL Lab split; PERS/LOC/ORG/MISC, micro over four types; Antoun et al. 2020)"


def article_scores(documents, pred_spans) -> dict:
    metrics, _ = evaluate(documents, [corpus.Document(d.doc, d.text, p) for d, p in zip(documents, pred_spans)])
    b = metrics["bootstrap"]
    return {**figures(metrics), "strict_low": b["low"], "strict_high": b["high"], "per_doc": metrics["per_doc"]}


def run(name: str, config_path: str, overrides: list[str]) -> dict:
    config = load_config(config_path, overrides + ["progress_bar=false"])
    documents = corpus.load(config.annotations)
    ext = ExternalData.from_config(config)
    model_dir = Path("runs/external") / name
    final = train(config, model_dir)
    result = {
        "command": f"python scripts/external_experiments.py {name}",
        "config": config_path,
        "overrides": overrides,
        "extra_train": {e.name: [str(f) for f in e.files] for e in config.extra_train},
        "train_on_articles": config.train_on_articles,
        "systems": {"bert": {"external": final.get("external", {})}},
    }
    if not config.train_on_articles:  # the articles are unseen text: score them too
        tagger = Tagger.from_pretrained(model_dir, device="auto")
        result["systems"]["bert"]["articles"] = article_scores(
            documents, [[e.span() for e in es] for es in tagger([d.text for d in documents])]
        )
    for base in ("crf", "memorization"):
        model = BASELINES[base]().fit((documents if config.train_on_articles else []) + ext.extra_train)
        result["systems"][base] = {"external": ext.scores(model.predict)}
        if not config.train_on_articles:
            result["systems"][base]["articles"] = article_scores(documents, model.predict([d.text for d in documents]))
    return result


def table(result: dict) -> list[str]:
    systems = result["systems"]
    corpora = sorted({c for s in systems.values() for c in s["external"]})
    head = ["system"]
    if any("articles" in s for s in systems.values()):
        head += ["articles strict F1 [95%]", "articles partial F1"]
    for c in corpora:
        head += [f"{c} strict F1", f"{c} loose F1"]
    rows = []
    for name, s in systems.items():
        cells = [name]
        if "articles" in s:
            a = s["articles"]
            cells += [
                f"{a['span_strict_micro_f1']:.3f} [{a['strict_low']:.3f}, {a['strict_high']:.3f}]",
                f"{a['span_partial_micro_f1']:.3f}",
            ]
        for c in corpora:
            e = s["external"].get(c, {})
            cells += [f"{e.get('strict_f1', 0):.3f}", f"{e.get('loose_f1', 0):.3f}"]
        rows.append(cells)
    return markdown_table(head, rows)


def write(name: str, result: dict, title: str) -> None:
    folder = OUT / name
    atomic.write_text(folder / "results.json", json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    md = [f"# {title}", "", f"`{result['command']}` (config `{result['config']}`).", ""] + table(result) + [""]
    atomic.write_text(folder / "report.md", "\n".join(md))


def summary() -> None:
    lines = [
        "# Public Arabic NER corpora: how far do the models carry?",
        "",
        "All systems: the tiny offline BERT (`configs/tiny*.yaml`, no pretrained weights) and the baselines, on CPU.",
        "*strict*: boundaries and mapped label; *loose*: ACTOR and PLACE merged (ANERcorp and Wojood tag countries and",
        "cities by type, not by role, so a role error does not count there). DATE only where the corpus has DATE (Wojood).",
        f"For reference, not comparable label for label: {PUBLISHED}.",
        "",
    ]
    for name, title in (
        ("articles-only", "1. Trained on the five articles only"),
        ("external-only", "2. Trained on ANERcorp train + AQMAR only"),
    ):
        path = OUT / name / "results.json"
        if path.is_file():
            r = json.loads(path.read_text())
            lines += [f"## {title}", "", f"`{r['command']}`", ""] + table(r) + [""]
    cv = OUT / "anercorp-plus-articles" / "metrics.json"
    base = Path("reports/cv-tiny/metrics.json")
    if cv.is_file():
        m = json.loads(cv.read_text())
        b = json.loads(base.read_text()) if base.is_file() else None
        lines += [
            "## 3. ANERcorp train plus four articles, tested on the fifth (five folds)",
            "",
            f"`{m['command']}`; without ANERcorp: `{b['command'] if b else 'arner cv --config configs/tiny.yaml'}`.",
            "",
        ]
        rows = []
        for label, metrics in (("ANERcorp train", m), ("none", b)):
            for system, s in (metrics or {"systems": {}})["systems"].items():
                strict, partial = s["pooled"]["span_strict_micro_f1"], s["pooled"]["span_partial_micro_f1"]
                e = s.get("external", {}).get("anercorp-test", {}).get("mean", {})
                ext = [f"{e['strict_f1']:.3f}", f"{e['loose_f1']:.3f}"] if e else ["—", "—"]
                interval = f"{strict['estimate']:.3f} [{strict['low']:.3f}, {strict['high']:.3f}]"
                rows.append([system, label, interval, f"{partial['estimate']:.3f}", *ext])
        head = ["system", "extra data", "articles strict F1 [95%]", "articles partial F1"]
        lines += markdown_table([*head, "anercorp-test strict F1 (mean over folds)", "anercorp-test loose F1"], rows) + [""]
    atomic.write_text(OUT / "README.md", "\n".join(lines))


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "articles-only":
        write(what, run(what, "configs/tiny.yaml", TESTS), "Trained on the five articles only")
    elif what == "external-only":
        write(what, run(what, "configs/tiny-external-only.yaml", []), "Trained on ANERcorp train + AQMAR only")
    elif what == "summary":
        summary()
    else:
        sys.exit(__doc__)
    if what != "summary":
        summary()


if __name__ == "__main__":
    main()
