from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
ANNOTATIONS = REPO / "annotations"
SHARED = REPO.parent / "shared"


def write_folder(root: Path, docs: dict[str, tuple[str, list[dict]]]) -> Path:
    """An annotation folder from `{doc: (text, [span dicts])}`."""
    (root / "articles").mkdir(parents=True, exist_ok=True)
    (root / "spans").mkdir(parents=True, exist_ok=True)
    for doc, (text, spans) in docs.items():
        (root / "articles" / f"{doc}.txt").write_text(text, encoding="utf-8")
        (root / "spans" / f"{doc}.json").write_text(
            json.dumps({"doc": doc, "spans": spans}, ensure_ascii=False, indent=1), encoding="utf-8"
        )
    return root


TEXT = "التقى بوتين وويتكوف في موسكو يوم الجمعة."


def span(text: str, surface: str, label: str, nth: int = 0) -> dict:
    start = -1
    for _ in range(nth + 1):
        start = text.index(surface, start + 1)
    return {"start": start, "end": start + len(surface), "label": label, "text": surface}


@pytest.fixture
def good_folder(tmp_path: Path) -> Path:
    spans = [span(TEXT, "بوتين", "ACTOR"), span(TEXT, "ويتكوف", "ACTOR"), span(TEXT, "موسكو", "PLACE"), span(TEXT, "يوم الجمعة", "DATE")]
    return write_folder(tmp_path / "ann", {"doc1": (TEXT, spans)})


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny model trained on all five articles (a few seconds on CPU), shared by the session."""
    from arner.eval.training import train
    from arner.train.config import load_config

    out = tmp_path_factory.mktemp("tiny") / "model"
    train(load_config(REPO / "configs" / "tiny.yaml", ["epochs=20", "progress_bar=false", f"annotations={ANNOTATIONS}"]), out)
    return out


def snapshot(root: Path) -> dict[str, bytes]:
    """Every path under `root` (hidden ones included) with its bytes, links by their target."""
    out = {}
    for p in sorted(root.rglob("*")):
        key = str(p.relative_to(root))
        if p.is_symlink():
            out[key] = b"-> " + os.readlink(p).encode()
        elif p.is_file():
            out[key] = p.read_bytes()
        else:
            out[key] = b"<dir>"
    return out
