"""The encoder shipped in models/: one folder, fp16, under the size limit, a card that tells the truth, and it fine-tunes."""

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file

from arner.train.config import PretrainConfig, load_config
from arner.train.pretrain.ship import LIMIT_BYTES

from conftest import REPO

MODELS = REPO / "models"
ENCODER = MODELS / "arner-electra-ar"


def test_one_encoder_is_shipped_and_configs_point_at_it():
    assert [p.name for p in MODELS.iterdir()] == [ENCODER.name]  # nothing else, hidden or not
    for name in ("encoder.yaml", "encoder-public.yaml"):
        assert load_config(REPO / "configs" / name).model == "models/arner-electra-ar"
    assert load_config(REPO / "configs" / "pretrain-encoder-continue.yaml", cls=PretrainConfig).model == "models/arner-electra-ar"


def test_it_is_fp16_and_within_the_size_limit():
    size = sum(f.stat().st_size for f in ENCODER.rglob("*") if f.is_file())
    assert size <= LIMIT_BYTES
    for weights in (ENCODER / "model.safetensors", ENCODER / "generator" / "model.safetensors"):
        assert {v.dtype for v in load_file(weights).values()} == {torch.float16}


def test_the_card_parses_and_its_fingerprints_and_counts_are_the_files():
    from huggingface_hub import ModelCard

    card = ModelCard.load(ENCODER / "README.md")
    assert card.data.language == ["ar"] and "electra" in card.data.tags
    meta = json.loads((ENCODER / "arner.json").read_text(encoding="utf-8"))
    for f in sorted(ENCODER.rglob("*")):
        if f.is_file() and f.name != "README.md":
            assert hashlib.sha256(f.read_bytes()).hexdigest() in card.text, f
    total = meta["pretraining_total"]
    assert f"{total['tokens_seen']:,} tokens" in card.text and total["runs"] == len(total["commands"]) >= 1
    assert meta["config"]["objective"] == "electra" and meta["shipped"]["dtype"] == "float16"


def test_it_loads_as_a_token_classifier_and_as_a_pretraining_checkpoint():
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from arner.train.pretrain.electra import load_electra

    tokenizer = AutoTokenizer.from_pretrained(ENCODER)
    model = AutoModelForTokenClassification.from_pretrained(ENCODER, num_labels=7, dtype=torch.float32)
    assert type(model).__name__ == "ElectraForTokenClassification" and len(tokenizer) == model.config.vocab_size
    rtd = load_electra(load_config(REPO / "configs" / "pretrain-encoder-continue.yaml", cls=PretrainConfig), str(ENCODER), "test")
    assert rtd.generator.electra.embeddings is rtd.discriminator.electra.embeddings


def test_the_cards_probes_are_what_the_shipped_weights_give():
    """The card's fill-mask and replaced-word probes, recomputed from the fp16 folder (they were run in fp32 before shipping)."""
    from transformers import AutoTokenizer

    from arner.train.pretrain.electra import load_electra
    from arner.train.pretrain.ship import probes

    config = load_config(REPO / "configs" / "pretrain-encoder-continue.yaml", cls=PretrainConfig)
    found = probes(load_electra(config, str(ENCODER), "test"), AutoTokenizer.from_pretrained(ENCODER))
    shipped = json.loads((ENCODER / "arner.json").read_text(encoding="utf-8"))["shipped"]["probes"]
    for now, then in zip(found["replaced_token"], shipped["replaced_token"], strict=True):
        assert now["p_replaced_swapped_word"] == pytest.approx(then["p_replaced_swapped_word"], abs=0.01)
        assert now["p_replaced_other_words_mean"] == pytest.approx(then["p_replaced_other_words_mean"], abs=0.01)
    for now, then in zip(found["fill_mask"], shipped["fill_mask"], strict=True):
        assert now["top"][:2] == then["top"][:2]
    # What the pretraining bought, however little: on each probe the swapped-in word is the one the
    # discriminator suspects most (the first CPU run, collapsed, gave every word the same score and failed this).
    for probe in found["replaced_token"]:
        swapped_in = probe["swapped"].split(" → ")[1]
        assert probe["most_suspect_word"] == swapped_in and probe["p_replaced_swapped_word"] > probe["p_replaced_other_words_mean"]


@pytest.mark.slow
def test_the_encoder_config_fine_tunes_it(tmp_path):
    from arner.eval.training import train

    config = load_config(REPO / "configs" / "encoder.yaml", ["epochs=2", "progress_bar=false"])
    metrics = train(config, tmp_path / "ner", fold=3)
    from arner.train.loop import read_log

    epochs = read_log(tmp_path / "ner", "epoch")
    assert len(epochs) == 2 and epochs[1]["loss"] < epochs[0]["loss"] and "strict_f1" in metrics["heldout"]
    weights = load_file(tmp_path / "ner" / "model.safetensors")
    assert weights["classifier.weight"].shape[0] == 7 and weights["electra.embeddings.word_embeddings.weight"].dtype == torch.float32
