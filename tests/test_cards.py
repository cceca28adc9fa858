"""Model cards: what `arner train` and `arner pretrain` write as README.md parses as a Hugging Face card and holds the run's facts.

The renderers are tested here on arner.json records (fast); the slow tests of test_train.py, test_pretrain.py,
test_electra.py and test_eval_cli.py check the cards real runs write.
"""

from __future__ import annotations

import copy

import pytest
from huggingface_hub import ModelCard

from arner.cv import fold_commands
from arner.train import cards
from arner.train.config import PretrainConfig, load_config
from arner.train.finetune_card import finetune_card
from arner.train.pretrain.card import pretrain_card

from conftest import REPO

ENCODER = "models/arner-electra-ar"
FOLD = {  # the record `arner train --fold 3` writes (what matters to the card), with a public corpus added and scored
    "config": {
        **load_config(REPO / "configs" / "tiny.yaml").to_dict(),
        "extra_train": [{"name": "anercorp-train", "files": ["anercorp/train.conll"]}],
    },
    "config_file": "configs/tiny.yaml",
    "command": "arner train --config configs/tiny.yaml --fold 3",
    "base_model": "tiny (built offline: WordPiece on the training articles + random BertConfig)",
    "fold": 3,
    "train_docs": ["000_a", "001_b", "002_c", "004_e"],
    "train_articles": {"documents": 4, "words": 1795, "spans": 270},
    "extra_train": {"anercorp-train": {"documents": 240, "words": 120344, "spans": 9000}},
    "heldout_docs": ["003_d"],
    "metrics": {
        "epochs_run": 30,
        "global_step": 90,
        "final_loss": 0.0412,
        "heldout": {
            "strict_precision": 0.5,
            "strict_recall": 0.4,
            "strict_f1": 0.44444,
            "partial_f1": 0.6,
            "bootstrap": {
                "confidence": 0.95,
                "resamples": 1000,
                "seed": 0,
                "paragraphs": 18,
                "strict_f1": {"low": 0.31, "high": 0.52},
                "partial_f1": {"low": 0.5, "high": 0.7},
            },
        },
        "external": {"anercorp-test": {"strict_f1": 0.2, "loose_f1": 0.41, "ACTOR_f1": 0.3, "PLACE_f1": 0.1}},
    },
    "git_commit": "abc123",
    "versions": {"transformers": "5.24.0", "torch": "2.13.0"},
    "device": "cpu",
}


def record(**changes) -> dict:
    meta = copy.deepcopy(FOLD)
    for key, value in changes.items():
        if key.startswith("config."):
            meta["config"][key[7:]] = value
        else:
            meta[key] = value
    return meta


def metrics_of(card: ModelCard) -> dict[tuple[str, str], float]:
    return {(r.dataset_type, r.metric_name): r.metric_value for r in card.data.eval_results}


def test_the_fine_tuned_card_parses_and_its_front_matter_holds_the_run():
    card = ModelCard(finetune_card("tiny-fold3", FOLD, "runs/tiny-fold3"))
    data = card.data
    assert data.language == ["ar"] and data.pipeline_tag == "token-classification" and data.library_name == "transformers"
    assert {"token-classification", "ner"} <= set(data.tags)
    assert data.datasets == ["arner-annotations", "anercorp-train"]
    assert data.base_model is None  # the tiny model is built offline: there is no base to name
    # MIT annotations + ANERcorp's CC BY-SA 4.0: the one other licence
    assert (data.license, data.license_name) == ("cc-by-sa-4.0", None)
    assert data.model_name == "tiny-fold3"
    assert metrics_of(card) == {
        ("arner-annotations", "strict span F1"): 0.4444,
        ("arner-annotations", "strict span precision"): 0.5,
        ("arner-annotations", "strict span recall"): 0.4,
        ("arner-annotations", "partial span F1"): 0.6,
        ("anercorp-test", "strict span F1"): 0.2,
        ("anercorp-test", "loose span F1 (ACTOR and PLACE merged)"): 0.41,
    }
    held = next(r for r in data.eval_results if r.dataset_type == "arner-annotations")
    assert held.task_type == "token-classification" and "fold 3" in held.dataset_split and "003_d" in held.dataset_split


def test_the_fine_tuned_card_body_has_data_config_scores_limits_use_and_command():
    text = ModelCard(finetune_card("tiny-fold3", FOLD, "runs/tiny-fold3")).text
    assert "| annotated articles | `annotations` | 4 | 1,795 |" in text  # words from arner.json
    assert "| anercorp-train | ANERcorp (CAMeL Lab splits) | 240 | 120,344 | CC BY-SA 4.0" in text
    assert "article `003_d`" in text
    assert "- learning rate: `0.001`" in text and "- label every subword: `false`" in text
    assert "| strict span F1 | 0.444 | [0.310, 0.520] |" in text and "| partial span F1 | 0.600 | [0.500, 0.700] |" in text
    assert "18 paragraphs (1000 resamples)" in text
    assert "| anercorp-test | 0.200 | 0.410 | 0.300 | 0.100 |" in text
    assert "one story (Russia–US diplomacy)" in text and "No pretrained weights" in text
    assert 'pipeline("token-classification", model="runs/tiny-fold3", aggregation_strategy="simple")' in text
    assert "arner predict --model runs/tiny-fold3" in text
    assert "```bash\narner train --config configs/tiny.yaml --fold 3\n```" in text and "`abc123`" in text


def test_a_run_without_a_heldout_article_has_no_model_index_and_says_where_scores_come_from():
    meta = record(fold=None, heldout_docs=[], train_docs=[*FOLD["train_docs"], "003_d"], command="")
    meta["metrics"] = {"epochs_run": 30, "global_step": 120, "final_loss": 0.04}
    card = ModelCard(finetune_card("tiny", meta))
    assert card.data.eval_results is None and card.data.model_name is None
    assert "held out no article" in card.text and "`arner cv --config configs/tiny.yaml`" in card.text
    assert "Not recorded: the run was started from Python" in card.text


def test_the_base_model_is_named_when_it_is_on_the_hub_and_its_terms_carry_over_from_a_local_folder():
    hub = ModelCard(finetune_card("m", record(**{"config.model": "aubmindlab/bert-base-arabertv02", "config.extra_train": []}))).data
    assert hub.base_model == "aubmindlab/bert-base-arabertv02"
    assert (hub.license, hub.license_name) == ("other", "unknown-terms")  # its terms are not known offline
    # the shipped encoder's card says research-non-commercial: a model fine-tuned from it says so too
    local = ModelCard(finetune_card("m", record(**{"config.model": str(REPO / ENCODER), "config.extra_train": []})))
    assert local.data.base_model is None  # a local path is no Hub id
    assert (local.data.license, local.data.license_name) == ("other", "research-non-commercial")
    assert "(terms: research-non-commercial)" in local.text


@pytest.mark.parametrize(
    "licences, expected",
    [
        ([("mit", None)], {"license": "mit"}),
        ([("mit", None), ("mit", None)], {"license": "mit"}),
        ([("mit", None), ("cc-by-sa-3.0", None)], {"license": "cc-by-sa-3.0"}),
        ([("mit", None), ("other", "research-non-commercial")], {"license": "other", "license_name": "research-non-commercial"}),
        ([("cc-by-sa-3.0", None), ("cc-by-nc-sa-4.0", None)], {"license": "other", "license_name": "mixed-terms"}),
        ([("mit", None), ("", None)], {"license": "other", "license_name": "unknown-terms"}),
    ],
)
def test_the_licence_summarizes_the_sources_terms(licences, expected):
    assert cards.combined_licence(licences) == expected


def test_sources_are_known_by_their_folder():
    assert cards.source_key("../shared/external/saudinewsnet/articles.jsonl.gz") == "saudinewsnet"
    assert cards.source_of("anercorp/train.conll").license == "cc-by-sa-4.0"
    assert cards.source_of("/tmp/my-text.txt") is cards.UNKNOWN
    assert cards.hub_id("aubmindlab/bert-base-arabertv02") == "aubmindlab/bert-base-arabertv02"
    assert cards.hub_id(str(REPO / ENCODER)) is None and cards.hub_id("./x/y") is None


PRETRAIN = {
    "config": load_config(REPO / "configs" / "pretrain-tiny.yaml", cls=PretrainConfig).to_dict(),
    "config_file": "configs/pretrain-tiny.yaml",
    "base_model": "scratch (WordPiece learned from the text + random BertConfig)",
    "inputs": [
        {"path": "../shared/external/anercorp/train.conll", "exclude": None, "units": 4000, "chars": 600000},
        {"path": "../shared/external/wojood_sample/train.conll", "exclude": None, "units": 0, "chars": 0},
    ],
    "data": {"rows": 4000, "tokens": 500000},
    "metrics": {
        "epochs_run": 1,
        "global_step": 125,
        "tokens_seen": 480000,
        "train_seconds": 95.0,
        "first_heldout": {"mlm_loss": 7.5, "perplexity": 1808.0},
        "heldout": {"mlm_loss": 6.25, "perplexity": 518.0},
    },
    "pretraining_total": {
        "tokens_seen": 480000,
        "optimizer_steps": 125,
        "runs": 1,
        "commands": ["arner pretrain --config configs/pretrain-tiny.yaml"],
    },
    "git_commit": "abc123",
    "device": "cpu",
}


def test_the_pretraining_card_parses_with_its_tags_data_tokens_and_heldout_loss():
    card = ModelCard(pretrain_card("pretrain-tiny", PRETRAIN, "runs/pretrain-tiny"))
    data = card.data
    assert data.language == ["ar"] and data.pipeline_tag == "fill-mask" and {"fill-mask", "pretraining"} <= set(data.tags)
    assert data.datasets == ["anercorp"]  # Wojood gave no unit (max_tokens reached first): not trained on
    assert data.license == "cc-by-sa-4.0" and data.base_model is None
    assert metrics_of(card) == {
        ("arner-pretraining-text", "held-out MLM loss"): 6.25,
        ("arner-pretraining-text", "held-out perplexity"): 518.0,
    }
    assert "480,000 tokens seen in 125 optimizer steps" in card.text and "MLM loss (nats per masked subword): **6.2500**" in card.text
    assert "| `../shared/external/anercorp/train.conll` | ANERcorp (CAMeL Lab splits) | 4,000 | 600,000 |" in card.text
    assert 'pipeline("fill-mask", model="runs/pretrain-tiny")' in card.text
    assert "```bash\narner pretrain --config configs/pretrain-tiny.yaml\n```" in card.text


def test_an_electra_run_card_has_no_pipeline_and_reports_replaced_token_detection():
    meta = copy.deepcopy(PRETRAIN)
    meta["config"]["objective"] = "electra"
    meta["metrics"]["heldout"] = {"replaced_f1": 0.31, "discriminator_loss": 0.2, "position_cosine": 0.4}
    card = ModelCard(pretrain_card("enc", meta))
    assert card.data.pipeline_tag is None and "electra" in card.data.tags
    assert metrics_of(card)[("arner-pretraining-text", "held-out replaced-subword F1")] == 0.31


def test_cv_fold_models_record_the_arner_train_line_that_makes_them(tmp_path):
    loaded = load_config(REPO / "configs" / "tiny.yaml", ["epochs=4"])
    line = fold_commands(REPO / "configs" / "tiny.yaml", ["epochs=4"], loaded, loaded.replace(annotations=str(tmp_path / "gold")))
    assert line(tmp_path / "fold-2", 2) == (
        f"arner train --config {REPO / 'configs' / 'tiny.yaml'} --output {tmp_path / 'fold-2'} --fold 2 "
        f"--set epochs=4 --set annotations={tmp_path / 'gold'}"
    )
