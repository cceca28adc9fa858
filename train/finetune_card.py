"""The model card (README.md) of a folder `arner train` writes (and each fold model of `arner cv`).

Rendered from the record that goes into `arner.json` (`finetune.metadata` plus what `publish` adds),
so the card says no more than the run knows: the data trained on with word counts and terms, the key
settings, the scores the run computed (held-out article with its paragraph-bootstrap interval, public
test corpora), the limits, how to use the folder, and the command that made it.
"""

from __future__ import annotations

import json
from pathlib import Path

from arner.core.conventions import LABELS
from arner.core.tables import table
from arner.train import cards

TASK = "token-classification"
ARTICLES = "arner-annotations"  # the name the front matter gives the project's annotated articles
STORY = "; the project's articles all follow one story (Russia–US diplomacy), so names, places and dates outside it are thinly covered."
TINY_NOTE = "none: a small BERT built offline (WordPiece learned on the training articles, random weights)"
SETTINGS = [  # (config key, what the card calls it)
    ("epochs", "epochs"),
    ("max_steps", "max optimizer steps (0: every epoch)"),
    ("batch_size", "batch size (per process)"),
    ("gradient_accumulation_steps", "gradient accumulation steps"),
    ("learning_rate", "learning rate"),
    ("warmup_ratio", "warmup ratio (then linear decay)"),
    ("weight_decay", "weight decay"),
    ("max_length", "max length (subwords a window)"),
    ("stride", "window overlap (subwords)"),
    ("label_all_subwords", "label every subword"),
    ("mixed_precision", "mixed precision"),
    ("seed", "seed"),
    ("early_stopping_patience", "early stopping patience (0: off)"),
    ("load_best_model_at_end", "keep the best held-out epoch"),
]


def base_licence(config: dict) -> cards.Licence:
    """Terms of the weights the run started from: none for the tiny model, a local folder's card, else unknown."""
    if config["model"] == "tiny":
        return (cards.PROJECT_LICENSE, None)
    return cards.folder_licence(config["model"])


def corpus_rows(meta: dict) -> tuple[list[list[object]], list[cards.Licence]]:
    """Rows of the data table (articles, then each public corpus) and the licences they bring."""
    config, articles = meta["config"], meta.get("train_articles") or {}
    rows, licences = [], []
    if meta.get("train_docs"):
        rows.append(["annotated articles", f"`{config['annotations']}`", len(meta["train_docs"]), f"{articles.get('words', 0):,}"])
        rows[-1].append(cards.ARTICLE_TERMS)
        licences.append((cards.PROJECT_LICENSE, None))
    for entry in config.get("extra_train", []):
        key = entry.get("name") or entry["files"][0]
        summary, source = meta.get("extra_train", {}).get(key, {}), cards.source_of(entry["files"][0])
        what = source.what or ", ".join(f"`{f}`" for f in entry["files"])
        rows.append([key, what, summary.get("documents", 0), f"{summary.get('words', 0):,}", source.terms])
        licences.append((source.license, None) if source.license else ("", None))
    return rows, licences


def eval_results(meta: dict) -> list:
    """The model-index entries: the held-out article's span scores, and each public test corpus's."""
    metrics, out = meta.get("metrics", {}), []
    held = metrics.get("heldout")
    if held:
        docs = ", ".join(meta.get("heldout_docs", []))
        split = f"fold {meta['fold']} (held-out article {docs})" if meta.get("fold") is not None else "held out"
        for key, metric, name in [
            ("strict_f1", "f1", "strict span F1"),
            ("strict_precision", "precision", "strict span precision"),
            ("strict_recall", "recall", "strict span recall"),
            ("partial_f1", "f1", "partial span F1"),
        ]:
            if key in held:
                out.append(cards.eval_result(TASK, ARTICLES, "arner annotated articles", split, metric, name, held[key]))
    for corpus, scores in metrics.get("external", {}).items():
        for key, name in [("strict_f1", "strict span F1"), ("loose_f1", "loose span F1 (ACTOR and PLACE merged)")]:
            if key in scores:
                out.append(cards.eval_result(TASK, corpus, corpus, "test", "f1", name, scores[key]))
    return out


def front(name: str, meta: dict, licences: list[cards.Licence]) -> str:
    config = meta["config"]
    datasets = ([ARTICLES] if meta.get("train_docs") else []) + [e.get("name") or e["files"][0] for e in config.get("extra_train", [])]
    fields = {
        "language": ["ar"],
        **cards.combined_licence(licences),
        "library_name": "transformers",
        "pipeline_tag": TASK,
        "tags": [TASK, "ner", *cards.TAGS],
        "base_model": cards.hub_id(config["model"]) if config["model"] != "tiny" else None,
        "datasets": datasets,
    }
    return cards.front_matter(fields, eval_results(meta), model_name=name)


def usage(path: str) -> list[str]:
    return [
        "## How to use",
        "",
        "```python",
        "from transformers import pipeline",
        f'ner = pipeline("token-classification", model="{path}", aggregation_strategy="simple")',
        'ner("وصل كيريل دميترييف إلى واشنطن أمس")  # [{"entity_group": "ACTOR", "score": ..., "word": ..., "start": 4, "end": 9}, ...]',
        "```",
        "",
        "With arner, which keeps character offsets exact on the raw text and leaves proclitics (و ف ب ل ك) out of names:",
        "",
        "```bash",
        f"arner predict --model {path} article.txt --out predictions.jsonl   # or: arner serve --model {path}",
        "```",
        "",
        f"Labels: IOB2 tags of {', '.join(LABELS)} (ACTOR: who acts, persons, organizations and countries or cities acting as",
        "political agents; PLACE: where; DATE: when), seven tags with O.",
    ]


def data_section(meta: dict, rows: list[list[object]]) -> list[str]:
    lines = ["## Training data", ""]
    lines += cards.terms_table(rows) if rows else ["(none recorded)"]
    held = meta.get("heldout_docs") or []
    lines.append("")
    if held:
        lines.append(f"Held out, never trained on (nor seen by the tokenizer): article {', '.join(f'`{d}`' for d in held)}.")
    else:
        lines.append("No article was held out: every annotated article was trained on.")
    partial = [k for k, s in meta.get("extra_train", {}).items() if s.get("words_with_tag_sets")]
    if partial:
        lines.append(
            f"Words of {', '.join(partial)} whose source tag allows several of ours trained by marginal likelihood over them (partial labels)."
        )
    return lines


def training_section(meta: dict) -> list[str]:
    config, metrics = meta["config"], meta.get("metrics", {})
    if config["model"] == "tiny":
        base = TINY_NOTE
    else:
        licence, name = base_licence(config)
        base = f"`{config['model']}` (terms: {name or licence or 'see its own model card'})"
    lines = ["## Training", "", f"- Base model: {base}."]
    lines += [f"- {what}: `{json.dumps(config[key])}`" for key, what in SETTINGS if key in config]  # as YAML writes them: true, 0.001
    run = f"- Ran {metrics.get('epochs_run', '?')} epochs, {metrics.get('global_step', '?')} optimizer steps on `{meta.get('device', '?')}`"
    final_loss = metrics.get("final_loss")
    lines.append(run + (f"; last epoch's training loss {final_loss:.4f}." if final_loss is not None else "."))
    if metrics.get("model_epoch") is not None:
        lines.append(f"- The weights are those of epoch {metrics['model_epoch']}, the best on the held-out article.")
    versions = meta.get("versions") or {}
    if versions:
        lines.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + ".")
    return lines


def interval(held: dict, key: str) -> str:
    bounds = (held.get("bootstrap") or {}).get(key)
    return f"[{bounds['low']:.3f}, {bounds['high']:.3f}]" if bounds else "n/a"


def scores_section(meta: dict) -> list[str]:
    metrics, lines = meta.get("metrics", {}), ["## Scores", ""]
    held = metrics.get("heldout")
    if held:
        boot = held.get("bootstrap") or {}
        lines += [
            f"On the held-out article ({', '.join(meta.get('heldout_docs', []))}), character spans (SemEval-2013 schemas):",
            "",
            *table(
                ["score", "value", f"{boot.get('confidence', 0.95):.0%} interval"],
                [
                    ["strict span F1", cards.number(held.get("strict_f1")), interval(held, "strict_f1")],
                    ["strict span precision", cards.number(held.get("strict_precision")), ""],
                    ["strict span recall", cards.number(held.get("strict_recall")), ""],
                    ["partial span F1", cards.number(held.get("partial_f1")), interval(held, "partial_f1")],
                ],
                "lrr",
            ),
            "",
        ]
        if boot:
            lines.append(
                f"Intervals: percentile bootstrap over the article's {boot.get('paragraphs', '?')} paragraphs "
                f"({boot.get('resamples', '?')} resamples). One article is little text: differences inside them are not evidence."
            )
    else:
        lines.append(
            "This run held out no article, so it has no score of its own. Leave-one-article-out scores of its config come from "
            f"`arner cv --config {meta.get('config_file') or 'CONFIG'}`."
        )
    external = metrics.get("external") or {}
    if external:
        labels = sorted({k for s in external.values() for k in s if k not in ("strict_f1", "loose_f1")})
        header = ["public test corpus", "strict F1", "loose F1", *(k.replace("_f1", " F1") for k in labels)]
        rows = [
            [c, cards.number(s.get("strict_f1")), cards.number(s.get("loose_f1")), *(cards.number(s.get(k)) for k in labels)]
            for c, s in external.items()
        ]
        lines += [
            "",
            "Public test corpora (tagged by type, not role: *loose* merges ACTOR and PLACE; DATE only where the corpus has it):",
            "",
            *table(header, rows, "l" + "r" * (len(header) - 1)),
        ]
    return lines


def limits_section(meta: dict) -> list[str]:
    articles = meta.get("train_articles") or {}
    lines = [
        "## Limits",
        "",
        f"- Little data: {len(meta.get('train_docs') or [])} annotated news articles ({articles.get('words', 0):,} words)"
        + (", plus the public corpora above" if meta.get("extra_train") else "")
        + (STORY if Path(meta["config"]["annotations"]).name == "annotations" else "."),
        "- ACTOR vs PLACE is a role, not a type (a country that negotiates is an ACTOR): other corpora's LOC/GPE tags do not map one to one.",
        "- Modern Standard Arabic news; dialects and other genres are untested.",
    ]
    if meta["config"]["model"] == "tiny":
        lines.append("- No pretrained weights: this model is a baseline for the pipeline, well below a CRF on the same data.")
    return lines


def finetune_card(name: str, meta: dict, path: str | None = None) -> str:
    """The card of the model folder named `name`, from its arner.json record `meta`; `path` (default `name`) is where it is loaded from."""
    rows, licences = corpus_rows(meta)
    licences.append(base_licence(meta["config"]))
    fold = meta.get("fold")
    body = [
        f"# {name}: Arabic news NER (ACTOR, PLACE, DATE)",
        "",
        "A token classifier fine-tuned by arner (`arner train`)"
        + (f", holding out article {fold} (leave-one-article-out)" if fold is not None else "")
        + ": it finds who acts, where and when in Arabic news.",
        "",
        *usage(path or name),
        "",
        *data_section(meta, rows),
        "",
        *training_section(meta),
        "",
        *scores_section(meta),
        "",
        *limits_section(meta),
        "",
        *cards.how_made([meta["command"]] if meta.get("command") else [], meta.get("git_commit")),
        "",
    ]
    return front(name, meta, licences) + "\n" + "\n".join(body)
