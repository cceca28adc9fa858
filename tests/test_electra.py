"""ELECTRA pretraining (`objective: electra`): the loss by hand, sampling, saving and loading, continuing, shipping (slow)."""

import json
import math
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from arner.train.config import ConfigError, load_config
from arner.train.model import train_wordpiece
from arner.train.pretrain import PretrainConfig, make_collator, pretrain
from arner.train.pretrain.electra import (
    GENERATOR_DIR,
    ReplacedTokenDetection,
    build_electra,
    electra_configs,
    gumbel_sample,
    load_electra,
    save_electra,
)

from conftest import ANNOTATIONS, REPO

TINY = REPO / "configs" / "pretrain-tiny.yaml"
ENCODER = REPO / "configs" / "pretrain-encoder.yaml"
SENTENCES = [
    "وصل المبعوث الأمريكي ستيف ويتكوف إلى موسكو يوم الخميس للقاء الرئيس الروسي فلاديمير بوتين",
    "قال المتحدث باسم الكرملين دميتري بيسكوف إن المحادثات كانت بناءة ومفيدة",
    "وأعلنت وزارة الخارجية الأمريكية أن الوزير سيزور الرياض الأسبوع المقبل",
] * 3
SMALL = [
    "objective=electra",
    "bert.hidden_size=32",
    "bert.num_attention_heads=4",
    "bert.intermediate_size=64",
    "electra.embedding_size=16",
    "mask_replace_prob=0.85",
    "random_replace_prob=0",
    "whole_word_masking=true",
]


def load(*overrides, path=None):
    return load_config(path, list(overrides), cls=PretrainConfig)


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(SENTENCES, 300)


@pytest.fixture()
def model(tokenizer):
    return build_electra(load(*SMALL), tokenizer)


def batch_of(tokenizer, config, seed=0):
    ids = tokenizer(SENTENCES[:3], truncation=True, max_length=32)["input_ids"]
    return make_collator(tokenizer, config, seed=seed)([{"input_ids": i} for i in ids])


def test_generator_is_the_discriminator_scaled_and_shares_its_embeddings(model):
    disc, gen = model.discriminator, model.generator
    assert (gen.config.hidden_size, gen.config.num_attention_heads, gen.config.intermediate_size) == (8, 1, 16)
    assert gen.config.num_hidden_layers == disc.config.num_hidden_layers and gen.config.embedding_size == 16
    assert gen.electra.embeddings is disc.electra.embeddings
    assert gen.generator_lm_head.weight is disc.electra.embeddings.word_embeddings.weight


def test_the_shipped_shape_is_electra_small_and_fits_the_size_limit():
    disc, gen = electra_configs(load(path=ENCODER), 30000, 0)
    assert (disc.hidden_size, disc.num_hidden_layers, disc.embedding_size, disc.max_position_embeddings) == (256, 12, 128, 512)
    assert (gen.hidden_size, gen.num_attention_heads, gen.intermediate_size) == (64, 1, 256)
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    with torch.device("meta"):
        rtd = ReplacedTokenDetection(ElectraForMaskedLM(gen), ElectraForPreTraining(disc))
    shared = {id(p) for p in rtd.discriminator.parameters()}
    params = sum(p.numel() for p in rtd.discriminator.parameters()) + sum(
        p.numel() for p in rtd.generator.parameters() if id(p) not in shared
    )
    assert 2 * params < 29_000_000  # fp16 weights, with room for the tokenizer and card under 30 MB


def test_loss_is_the_generators_mlm_loss_plus_50_times_the_discriminators_as_transformers_computes_them(model, tokenizer):
    config = load(*SMALL)
    batch = batch_of(tokenizer, config)
    masked = batch["labels"] != -100
    model.eval()
    model.sampler = torch.Generator().manual_seed(3)
    out = model(**batch)
    # Independent of our code: each network's own loss in transformers, on the same inputs. The generator's
    # MLM loss on the masked batch; the discriminator's on the text filled in with the very samples the model
    # drew (the same seeded Gumbel draw on the same logits), labelled replaced where they differ.
    generator = model.generator(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    hidden = model.generator.electra(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    logits = model.generator.generator_lm_head(model.generator.generator_predictions(hidden[masked]))
    truth = torch.where(masked, batch["labels"], batch["input_ids"])
    fake = truth.clone()
    fake[masked] = gumbel_sample(logits, torch.Generator().manual_seed(3))
    assert masked.any() and not torch.equal(fake, truth)
    discriminator = model.discriminator(input_ids=fake, attention_mask=batch["attention_mask"], labels=(fake != truth).long())
    assert torch.equal(out.replaced, fake != truth) and not (out.replaced & ~masked).any()  # only masked positions can be replaced
    assert torch.allclose(out.generator_loss, generator.loss, atol=1e-5)
    assert torch.allclose(out.discriminator_loss, discriminator.loss, atol=1e-5)
    assert torch.allclose(out.loss, generator.loss + 50 * discriminator.loss, atol=1e-4)


def test_a_sample_equal_to_the_original_is_not_replaced(tokenizer):
    config = load(*SMALL)
    model = build_electra(config, tokenizer)
    one = {k: v[:1].clone() for k, v in batch_of(tokenizer, config).items()}
    one["labels"][:] = -100
    one["labels"][0, 2] = int(one["input_ids"][0, 2])
    one["input_ids"][0, 2] = tokenizer.mask_token_id
    with torch.no_grad():  # a generator that always predicts the original subword
        model.generator.generator_lm_head.bias.zero_()
        model.generator.generator_lm_head.bias[int(one["labels"][0, 2])] = 1e4
    out = model(**one)
    assert not out.replaced.any() and out.generator_loss < 1e-3


def test_gumbel_samples_follow_the_softmax():
    logits = torch.tensor([[0.0, math.log(3.0), -1e9]]).repeat(20000, 1)
    draws = gumbel_sample(logits, torch.Generator().manual_seed(0))
    share = (draws == 1).float().mean().item()
    assert abs(share - 0.75) < 0.02 and not (draws == 2).any()


def test_training_steps_lower_the_loss(model, tokenizer):
    config = load(*SMALL)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = batch_of(tokenizer, config)
    model.sampler = torch.Generator().manual_seed(0)
    first = float(model(**batch).loss.detach())
    for _ in range(30):
        model.sampler = torch.Generator().manual_seed(0)
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.sampler = torch.Generator().manual_seed(0)
    assert float(model(**batch).loss.detach()) < first - 5


def test_save_fp16_and_load_back_for_continued_training(model, tokenizer, tmp_path):
    save_electra(model, tmp_path, torch.float16)
    tokenizer.save_pretrained(tmp_path)
    generator_weights = load_file(tmp_path / GENERATOR_DIR / "model.safetensors")
    assert not any(k.startswith("electra.embeddings.") for k in generator_weights)  # shared: stored once, by the discriminator
    assert all(v.dtype == torch.float16 for v in load_file(tmp_path / "model.safetensors").values())
    back = load_electra(load(*SMALL), str(tmp_path), "test")
    assert (
        back.discriminator.dtype == torch.float32
        and back.generator.generator_lm_head.weight is back.discriminator.electra.embeddings.word_embeddings.weight
    )
    for a, b in [(model.discriminator, back.discriminator), (model.generator, back.generator)]:
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.allclose(sa[k], sb[k], atol=2e-3, rtol=1e-2) for k in sa)


def test_a_folder_without_the_generator_cannot_be_continued(model, tmp_path):
    model.discriminator.save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="generator/model.safetensors"):
        load_electra(load(*SMALL), str(tmp_path), "cfg.yaml")


def test_the_discriminator_folder_loads_as_a_token_classifier(model, tokenizer, tmp_path):
    from transformers import AutoModelForTokenClassification, pipeline

    save_electra(model, tmp_path, torch.float16)
    tokenizer.save_pretrained(tmp_path)
    ner = AutoModelForTokenClassification.from_pretrained(tmp_path, num_labels=7, dtype=torch.float32)
    assert type(ner).__name__ == "ElectraForTokenClassification"
    assert torch.allclose(
        ner.electra.embeddings.word_embeddings.weight, model.discriminator.electra.embeddings.word_embeddings.weight, atol=1e-3
    )
    plain = AutoModelForTokenClassification.from_pretrained(tmp_path, num_labels=7)  # no dtype: config.json says float32
    assert plain.dtype == torch.float32
    entities = pipeline("token-classification", model=ner, tokenizer=tokenizer, aggregation_strategy="first")(SENTENCES[0])
    assert all(SENTENCES[0][e["start"] : e["end"]] == e["word"] for e in entities)


# ---------------------------------------------------------------- end to end (slow)

QUICK = [
    *SMALL,
    "bert.max_position_embeddings=128",
    "epochs=3",
    "batch_size=8",
    "heldout_sequences=4",
    "tokenizer.vocab_size=1500",
    "logging_steps=2",
    "progress_bar=false",
    "learning_rate=0.002",
]


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "text.txt"
    path.write_text("\n".join(p.read_text(encoding="utf-8") for p in sorted((ANNOTATIONS / "articles").glob("*.txt"))), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, text):
    out = tmp_path_factory.mktemp("electra") / "run"
    metrics = pretrain(load(*QUICK, path=TINY), [text], out, command="arner pretrain --config configs/pretrain-tiny.yaml")
    return out, metrics


@pytest.mark.slow
def test_pretraining_learns_to_spot_replaced_subwords(pretrained):
    out, metrics = pretrained
    assert metrics["heldout"]["discriminator_loss"] < metrics["first_heldout"]["discriminator_loss"]
    assert 0 < metrics["heldout"]["replaced_share"] < 0.15
    meta = json.loads((out / "arner.json").read_text())
    assert meta["task"].startswith("replaced-token detection") and meta["pretraining_total"]["runs"] == 1
    assert meta["pretraining_total"]["tokens_seen"] == metrics["tokens_seen"] and (out / GENERATOR_DIR / "model.safetensors").is_file()


@pytest.mark.slow
def test_continuing_keeps_the_tokenizer_and_adds_up_the_counts(pretrained, text, tmp_path):
    out, metrics = pretrained
    again = pretrain(load(*QUICK, f"model={out}", "epochs=1", path=TINY), [text], tmp_path / "more", command="arner pretrain (continued)")
    meta, base = json.loads((tmp_path / "more" / "arner.json").read_text()), json.loads((out / "arner.json").read_text())
    assert meta["tokenizer_fingerprint"] == base["tokenizer_fingerprint"]
    total = meta["pretraining_total"]
    assert total["runs"] == 2 and total["tokens_seen"] == metrics["tokens_seen"] + again["tokens_seen"]
    assert total["optimizer_steps"] == metrics["global_step"] + again["global_step"]
    assert total["commands"] == ["arner pretrain --config configs/pretrain-tiny.yaml", "arner pretrain (continued)"]
    # it started from the run's weights, not from scratch: its first held-out loss is the run's last, nearly
    assert again["first_heldout"]["discriminator_loss"] < metrics["first_heldout"]["discriminator_loss"]


@pytest.mark.slow
def test_ship_writes_fp16_with_a_parseable_card_and_refuses_a_second_encoder(pretrained, tmp_path):
    from huggingface_hub import ModelCard

    from arner.train.pretrain.ship import ship

    out, _ = pretrained
    run_card = ModelCard.load(out / "README.md").data  # the run folder's own card, before shipping
    assert "electra" in run_card.tags and run_card.pipeline_tag is None and run_card.eval_results[0].metric_name.startswith("held-out")
    target = tmp_path / "models" / "enc"
    shipped = ship(out, target, "arner ship-encoder RUN")
    card = ModelCard.load(target / "README.md")
    assert card.data.language == ["ar"] and "electra" in card.data.tags
    assert (card.data.license, card.data.license_name) == ("other", "research-non-commercial")
    assert "arner ship-encoder RUN" in card.text and shipped["files"]["model.safetensors"] in card.text
    assert all(v.dtype == torch.float16 for v in load_file(target / "model.safetensors").values())
    assert shipped["bytes"] == sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    assert len(shipped["probes"]["fill_mask"]) == 3
    with pytest.raises(ValueError, match="over the 1,000-byte limit"):
        ship(out, target, "again", limit=1000)
    assert (target / "README.md").read_text() == card.content  # a failed ship left the shipped folder as it was
    with pytest.raises(ValueError, match="ships one encoder"):
        ship(out, tmp_path / "models" / "other", "x")


@pytest.mark.slow
def test_arner_train_fine_tunes_the_shipped_encoder(pretrained, tmp_path):
    from arner.eval.training import train
    from arner.train.pretrain.ship import ship

    out, _ = pretrained
    ship(out, tmp_path / "models" / "enc", "x")
    config = load_config(REPO / "configs" / "tiny.yaml", [f"model={tmp_path / 'models' / 'enc'}", "epochs=1", "progress_bar=false"])
    metrics = train(config, tmp_path / "ner", fold=0)
    assert 0 <= metrics["heldout"]["strict_f1"] <= 1 and metrics["global_step"] > 0
    from transformers import pipeline

    tagger = pipeline("token-classification", model=str(tmp_path / "ner"))
    assert type(tagger.model).__name__ == "ElectraForTokenClassification" and tagger.model.dtype == torch.float32
    from huggingface_hub import ModelCard

    card = ModelCard.load(tmp_path / "ner" / "README.md").data  # the encoder's terms carry over to the fine-tuned model
    assert (card.license, card.license_name) == ("other", "research-non-commercial") and card.base_model is None
    weights = load_file(tmp_path / "ner" / "model.safetensors")
    assert weights["electra.embeddings.word_embeddings.weight"].dtype == torch.float32  # fine-tuned in fp32 from the fp16 folder


@pytest.mark.slow
def test_ship_encoder_command(pretrained, tmp_path):
    out, _ = pretrained
    result = subprocess.run(
        [sys.executable, "-m", "arner.cli", "ship-encoder", str(out), "--to", str(tmp_path / "m" / "enc")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "shipped" in result.stdout and (tmp_path / "m" / "enc" / "README.md").is_file()
    bad = subprocess.run([sys.executable, "-m", "arner.cli", "ship-encoder", str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "no arner.json" in bad.stderr


@pytest.mark.slow
def test_rows_packed_on_one_machine_train_on_another(pretrained, text, tmp_path):
    out, _ = pretrained
    prepared = pretrain(load(*QUICK, f"model={out}", path=TINY), [text], tmp_path / "pack", prepare_only=True)
    rows = tmp_path / "pack" / "work" / "data"
    assert prepared["packed_rows"] == str(rows) and prepared["rows"] > 0 and not (tmp_path / "pack" / "checkpoints").exists()
    moved = tmp_path / "carried"
    rows.rename(moved)  # as if carried to the GPU machine: the text inputs are not there
    metrics = pretrain(load(*QUICK, f"model={out}", "epochs=1", f"packed_rows={moved}", "text=[]", path=TINY), None, tmp_path / "gpu")
    assert metrics["global_step"] > 0 and metrics["sequences"] + metrics["heldout_sequences"] == prepared["rows"]
    with pytest.raises(ConfigError, match="rows of 128 subwords, max_length is 64"):
        pretrain(load(*QUICK, f"model={out}", "max_length=64", f"packed_rows={moved}", path=TINY), None, tmp_path / "bad")
    with pytest.raises(ConfigError, match="packed_rows.*not scratch"):
        load(*QUICK, f"packed_rows={moved}", path=TINY)


@pytest.mark.slow
def test_killed_then_resumed_matches_uninterrupted(pretrained, text, tmp_path):
    out, metrics = pretrained
    steps_per_epoch = metrics["global_step"] // 3
    args = ["pretrain", "--config", str(TINY), "--output", str(tmp_path / "r"), "--text", str(text)]
    args += [a for s in QUICK for a in ("--set", s)]
    crash = [sys.executable, str(REPO / "tests" / "crash_after.py"), str(steps_per_epoch + 2), "--"]  # inside epoch 2
    crashed = subprocess.run([*crash, *args], capture_output=True, text=True, cwd=REPO)
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    resumed = subprocess.run([sys.executable, "-m", "arner.cli", *args, "--resume"], capture_output=True, text=True, cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for name in ("model.safetensors", "generator/model.safetensors"):  # shared embeddings and the tied head survive the checkpoint
        a, b = load_file(out / name), load_file(tmp_path / "r" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_position_cosine_says_when_every_position_is_the_same_vector():
    from arner.train.pretrain.electra import position_cosine

    same = torch.ones(1, 4, 8)
    assert position_cosine(same, torch.ones(1, 4)) == pytest.approx(1.0)
    orthogonal = torch.eye(4)[None]
    assert position_cosine(orthogonal, torch.ones(1, 4)) == pytest.approx(0.0)
    padded = torch.cat([torch.eye(3), torch.ones(1, 3)])[None]  # the last position is padding: left out
    assert position_cosine(padded, torch.tensor([[1, 1, 1, 0]])) == pytest.approx(0.0)
