"""What every model card arner writes shares: front matter, the sources of the data and their terms, how to rerun.

A card is the README.md of a model folder in the Hugging Face format: YAML front matter, then Markdown.
The front matter is built with huggingface_hub's `ModelCardData`, the class the Hub's own tools parse
it with, so `ModelCard.load(folder / "README.md").data` gives back exactly these fields. The cards
themselves: `finetune_card.py` (`arner train` and `arner cv` fold models), `pretrain/card.py`
(`arner pretrain` run folders and the encoder `arner ship-encoder` ships).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arner.core.tables import table


@dataclass(frozen=True)
class Source:
    """A corpus read from `../shared/external`: what it is, its terms (from its README there) and the Hub's licence id for them."""

    what: str
    terms: str
    license: str  # "other" where no Hub licence id fits


SOURCES = {
    "saudinewsnet": Source(
        "SaudiNewsNet: 2015 Saudi newspaper articles",
        "CC BY-NC-SA 4.0, research use only; articles owned by the newspapers",
        "cc-by-nc-sa-4.0",
    ),
    "ant-multisource": Source(
        "ANT multi-source: 2018 pan-Arab news sites (Al Arabiya, BBC, CNN, France24, Sky News)",
        "research use with citation (Chouigui et al. 2021); articles owned by the sites",
        "other",
    ),
    "ant-jawharafm": Source(
        "ANT JawharaFM: Tunisian radio news",
        "Apache 2.0 with a citation request (Chouigui et al. 2017); articles owned by Jawhara FM",
        "apache-2.0",
    ),
    "arwiki-comparable": Source("Arabic Wikipedia (WikiDocsAligner comparable corpus)", "CC BY-SA 4.0", "cc-by-sa-4.0"),
    "anercorp": Source("ANERcorp (CAMeL Lab splits)", "CC BY-SA 4.0 (CAMeL Lab splits)", "cc-by-sa-4.0"),
    "newsfane_gold": Source("NewsFANE Gold", "CC BY-SA 3.0", "cc-by-sa-3.0"),
    "aqmar": Source("AQMAR Wikipedia NER corpus", "CC BY-SA 3.0", "cc-by-sa-3.0"),
    "wojood_sample": Source("Wojood sample", "MIT", "mit"),
}
UNKNOWN = Source("", "see the file's own README", "")

# The project's licence (pyproject.toml) covers its code and annotations; the articles' texts are the publishers'.
PROJECT_LICENSE = "mit"
ARTICLE_TERMS = "annotations: the project's MIT licence; the article texts belong to their publishers"
TAGS = ["arabic", "arner"]


def source_key(path: str) -> str | None:
    """The known corpus a path under `../shared/external` belongs to, by its folder (`saudinewsnet`), if any."""
    return next((part for part in Path(path.replace("\\", "/")).parts if part in SOURCES), None)


def source_of(path: str) -> Source:
    key = source_key(path)
    return SOURCES[key] if key else UNKNOWN


Licence = tuple[str, str | None]  # (Hub licence id, license_name when the id is "other"); ("", None) when unknown


def combined_licence(licences: Sequence[Licence]) -> dict:
    """The front matter's `license` (and `license_name`) for weights derived from sources under `licences`.

    MIT when everything is; the one other licence when there is exactly one; else `other`, named
    `unknown-terms` when a source's terms are unknown and `mixed-terms` when they are all known but
    differ; the card's table says which source has which terms. (How the terms of training data carry
    over to weights is unsettled: the card states them all, this field only summarizes.)
    """
    others = sorted({lic for lic in licences if lic != (PROJECT_LICENSE, None)})
    if not others:
        return {"license": PROJECT_LICENSE}
    if any(not license_id for license_id, _ in others):
        return {"license": "other", "license_name": "unknown-terms"}
    if len(others) == 1:
        license_id, name = others[0]
        return {"license": license_id, **({"license_name": name} if name else {})}
    return {"license": "other", "license_name": "mixed-terms"}


def folder_licence(folder: str) -> Licence:
    """The licence a local model folder's own card declares (("", None) when it has no readable card)."""
    card = Path(folder) / "README.md"
    if not card.is_file():
        return ("", None)
    from huggingface_hub import ModelCard

    try:
        data = ModelCard.load(card).data
    except Exception:  # a card that does not parse tells nothing about terms; the base is then "unknown"
        return ("", None)
    return (data.license or "", data.license_name) if data.license else ("", None)


def hub_id(model: str) -> str | None:
    """`model` when it names a model on the Hub (`owner/name` or a legacy `name`), not a local folder: what `base_model` may hold."""
    if Path(model).exists() or model.startswith((".", "/", "~")) or model.count("/") > 1:
        return None
    return model


def front_matter(fields: dict[str, Any], eval_results: Sequence | None = None, model_name: str | None = None) -> str:
    """YAML front matter from `ModelCardData` (fields left None are omitted), between `---` lines."""
    from huggingface_hub import ModelCardData

    given = {key: value for key, value in fields.items() if value not in (None, [], "")}
    data = ModelCardData(
        **given, eval_results=list(eval_results) if eval_results else None, model_name=model_name if eval_results else None
    )
    return f"---\n{data.to_yaml()}\n---\n"


def eval_result(task: str, dataset_type: str, dataset_name: str, split: str, metric: str, name: str, value: float):
    """One model-index entry (the Hub's `EvalResult`); values rounded to 4 decimals as the tables show them."""
    from huggingface_hub import EvalResult

    return EvalResult(
        task_type=task,
        dataset_type=dataset_type,
        dataset_name=dataset_name,
        dataset_split=split,
        metric_type=metric,
        metric_name=name,
        metric_value=round(float(value), 4),
    )


def how_made(commands: Sequence[str], commit: str | None) -> list[str]:
    """The card's last section: the command lines that made the folder, and the code's commit."""
    lines = ["## How it was made", ""]
    if commands:
        lines += ["```bash", *commands, "```", ""]
    else:
        lines += ["Not recorded: the run was started from Python, not from the `arner` command.", ""]
    lines.append(f"Code: arner at git commit `{commit or 'unknown'}`; the full record (config, data, versions, metrics) is `arner.json`.")
    return lines


def terms_table(rows: Sequence[Sequence[object]]) -> list[str]:
    """(source, what, documents, words, terms) rows as a Markdown table."""
    return table(["source", "what", "documents", "words", "terms"], rows, "llrrl")


def number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
