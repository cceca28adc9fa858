"""`arner pretrain`: config, text inputs, packing (the datasets pipeline), masking, and (slow) a tiny run, fine-tuning on it, resume."""

import gzip
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from arner.core.conventions import TAG2ID
from arner.core.corpus import AnnotationError
from arner.core.public import read_conll
from arner.train.config import ConfigError, TrainConfig, load_config
from arner.train.loop import read_log
from arner.train.model import resolve, train_wordpiece
from arner.train.pretrain import (
    MaskedPositionsMLM,
    PretrainConfig,
    TextInput,
    build_rows,
    iter_texts,
    load_rows,
    make_collator,
    prepare_data,
    pretrain,
    read_units,
    row_lengths,
    split_heldout,
)
from arner.train.pretrain import data as pretrain_data

from conftest import ANNOTATIONS, REPO

TINY = REPO / "configs" / "pretrain-tiny.yaml"
DAPT = REPO / "configs" / "pretrain-arabert-dapt.yaml"
SENTENCES = [
    "وصل المبعوث الأمريكي ستيف ويتكوف إلى موسكو يوم الخميس للقاء الرئيس الروسي فلاديمير بوتين",
    "قال المتحدث باسم الكرملين دميتري بيسكوف إن المحادثات كانت بناءة ومفيدة",
    "وأعلنت وزارة الخارجية الأمريكية أن الوزير سيزور الرياض الأسبوع المقبل",
    "التقى الوفدان في إسطنبول لمناقشة عمل السفارتين بعد سنوات من التوتر",
] * 3


def load(*overrides, path=None):
    return load_config(path, list(overrides), cls=PretrainConfig)


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(SENTENCES, 300)


# ---------------------------------------------------------------- config


def test_shipped_configs_load():
    tiny = load(path=TINY)
    shape = load_config(REPO / "configs" / "tiny.yaml").tiny
    for path in sorted((REPO / "configs").glob("pretrain-*.yaml")):
        config = load(path=path)
        assert not any("anercorp/test" in t.path for t in config.text), path  # never the ANERcorp test split
        assert all(t.exclude.endswith("sentences_overlapping_anercorp_test.txt") for t in config.text if "newsfane" in t.path), path
        if path.stem.startswith("pretrain-tiny"):  # the tiny shape of configs/tiny.yaml
            b = config.bert
            assert (b.hidden_size, b.num_hidden_layers, b.num_attention_heads, b.intermediate_size) == (
                shape.hidden_size,
                shape.num_hidden_layers,
                shape.num_attention_heads,
                shape.intermediate_size,
            ), path
    assert tiny.model == "scratch" and tiny.whole_word_masking and tiny.text
    assert load(path=DAPT).model == "aubmindlab/bert-base-arabertv02"


@pytest.mark.parametrize(
    "override, key",
    [
        ("mlm_probability=1.5", "mlm_probability"),
        ("mlm_probability=0", "mlm_probability"),
        ("max_length=8", "max_length"),
        ("max_length=512", "bert.max_position_embeddings"),
        ("bert.num_attention_heads=3", "bert.hidden_size"),
        ("tokenizer.vocab_size=10", "tokenizer.vocab_size"),
        ("max_tokens=-1", "max_tokens"),
        ("model=tiny", "model"),
        ("random_replace_prob=0.5", "random_replace_prob"),
        ("text=[{exclude: x}]", "text[0].path"),
        ("epochs=0", "epochs"),
    ],
)
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match="defaults: " + re.escape(key) + " "):
        load(override)


def test_unknown_keys_and_types():
    with pytest.raises(ConfigError, match="unknown key bert.hidden"):
        load("bert.hidden=64")
    with pytest.raises(ConfigError, match="whole_word_masking must be bool"):
        load("whole_word_masking=3")
    with pytest.raises(ConfigError, match="text must be a list"):
        load("text=a.txt")


def test_a_hub_model_offline_fails_at_once_like_arner_train(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "a.txt").write_text("نص\n", encoding="utf-8")
    with pytest.raises(ConfigError) as pre:
        pretrain(load(path=DAPT), [tmp_path / "a.txt"], tmp_path / "out", config_path="C")
    with pytest.raises(ConfigError) as train:
        resolve(TrainConfig(model="aubmindlab/bert-base-arabertv02"), "C", [], tmp_path)
    assert str(pre.value) == str(train.value) and "hf download aubmindlab/bert-base-arabertv02" in str(pre.value)
    assert not (tmp_path / "out").exists()


def test_missing_text_is_named(tmp_path):
    with pytest.raises(AnnotationError) as e:
        pretrain(load(), [tmp_path / "nope.txt"], tmp_path / "out")
    assert "nope.txt" in str(e.value.problems[0])
    with pytest.raises(ConfigError, match="no text to pretrain on"):
        pretrain(load(), [], tmp_path / "out")


# ---------------------------------------------------------------- inputs


def test_plain_text_lines_with_exclusion(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("\ufeffسطر أول\n\nسطر ثالث\r\nسطر رابع", encoding="utf-8")
    assert list(read_units(path)) == [(0, "سطر أول"), (1, ""), (2, "سطر ثالث"), (3, "سطر رابع")]
    (tmp_path / "drop.txt").write_text("3\n", encoding="utf-8")
    assert list(iter_texts(TextInput(str(path), str(tmp_path / "drop.txt")))) == ["سطر أول", "سطر ثالث"]


@pytest.mark.parametrize("gz", [False, True])
def test_jsonl_text_field(tmp_path, gz):
    rows = [{"id": 1, "text": "نص أول\nبسطرين"}, {"id": 2, "title": "x", "text": "نص ثان"}]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "\n"
    path = tmp_path / ("a.jsonl.gz" if gz else "a.jsonl")
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(data)
    else:
        path.write_text(data, encoding="utf-8")
    assert list(iter_texts(TextInput(str(path)))) == ["نص أول\nبسطرين", "نص ثان"]


def test_bad_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "a"}\n{"body": "b"}\n', encoding="utf-8")
    with pytest.raises(AnnotationError) as e:
        list(iter_texts(TextInput(str(path))))
    assert str(e.value.problems[0]).startswith(f"{path}:2: error:")
    path.write_text('{"text": "a"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(AnnotationError, match="bad JSON"):
        list(iter_texts(TextInput(str(path))))
    path.write_text('{"text": "a"}\n' + "[" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match="nested too deep"):
        list(iter_texts(TextInput(str(path))))


def test_a_bad_line_read_by_the_datasets_pipeline_names_file_and_line(tmp_path):
    from arner.train.pretrain.data import units_dataset

    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(AnnotationError) as e:  # not datasets' DatasetGenerationError, which the CLI would show as a traceback
        units_dataset([TextInput(str(path))], tmp_path / "cache")
    assert str(e.value.problems[0]).startswith(f"{path}:2: error:")


def test_conll_token_column_matches_read_conll(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text("-DOCSTART- O\n\nوصل O\nبوتين B-PERS\n\n$#$ O\nإلى O\nموسكو B-LOC\n\n\nأمس O\nفقط\tO\tX\n", encoding="utf-8")
    units = list(iter_texts(TextInput(str(path))))
    assert units == ["وصل بوتين", "إلى موسكو", "أمس فقط"]
    assert units == [" ".join(s.tokens) for s in read_conll(path)]
    (tmp_path / "x.txt").write_text("1", encoding="utf-8")  # sentence indices, as arner.core.public counts them
    assert list(iter_texts(TextInput(str(path), str(tmp_path / "x.txt")))) == ["وصل بوتين", "أمس فقط"]


# ---------------------------------------------------------------- packing


def pack(tmp_path, tokenizer, units, max_length, max_tokens=0):
    """The packed rows (and manifest) of `units`, written one a line to a text input."""
    path = tmp_path / "units.txt"
    path.write_text("\n".join(units) + "\n", encoding="utf-8")
    out = tmp_path / "rows"
    out.mkdir()
    config = load(f"max_length={max_length}", f"max_tokens={max_tokens}", "progress_bar=false")
    build_rows(config, [TextInput(path=str(path))], tokenizer, tmp_path / "work", out, "T")
    return load_rows(out)


def small_batches(monkeypatch, chunk):
    """Batches of `chunk` units in the maps, tokenized in shards of 2 batches: rows are carried across both."""
    monkeypatch.setattr(pretrain_data, "CHUNK_UNITS", chunk)
    monkeypatch.setattr(pretrain_data, "SHARD_UNITS", 2 * chunk)


@pytest.mark.parametrize("chunk", [5, 1000])
def test_packing_fills_rows_and_covers_every_token(tmp_path, tokenizer, monkeypatch, chunk):
    small_batches(monkeypatch, chunk)
    rows, manifest = pack(tmp_path, tokenizer, SENTENCES, 16)
    lengths = [len(r) for r in rows["input_ids"]]
    assert manifest["rows"] == len(rows) > 5 and all(n == 16 for n in lengths[:-1]) and 2 < lengths[-1] <= 16
    assert row_lengths(rows, 16) == lengths
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    body = []
    for ids in rows["input_ids"]:
        assert ids[0] == cls and ids[-1] == sep and cls not in ids[1:]
        body += ids[1:-1]
    expected = [t for s in SENTENCES for t in tokenizer(s, add_special_tokens=False)["input_ids"] + [sep]][:-1]
    assert body == expected
    assert manifest["tokens"] == sum(lengths) and manifest["text_tokens_read"] == len(expected) - len(SENTENCES) + 1
    assert not manifest["capped"]
    assert manifest["inputs"] == [{"path": str(tmp_path / "units.txt"), "exclude": None, "units": 12, "chars": sum(map(len, SENTENCES))}]


@pytest.mark.parametrize("chunk", [5, 1000])
def test_max_tokens_caps_at_full_rows(tmp_path, tokenizer, monkeypatch, chunk):
    small_batches(monkeypatch, chunk)
    rows, manifest = pack(tmp_path, tokenizer, SENTENCES * 10, 16, max_tokens=50)
    if chunk == 5:  # tokenizing stopped after the shard that filled the rows: its 10 units hold more than 4 x 14 subwords
        assert len(list((tmp_path / "work" / "datasets").rglob("cache-*.arrow"))) == 1
    assert manifest["capped"] and manifest["rows"] == len(rows) == 4  # ceil(50 / 14)
    assert [len(r) for r in rows["input_ids"]] == [16] * 4 and manifest["tokens"] == 64
    per_unit = [len(tokenizer(s, add_special_tokens=False)["input_ids"]) + 1 for s in SENTENCES]
    starts = [sum(per_unit[:k]) for k in range(len(per_unit))]
    assert manifest["inputs"][0]["units"] == sum(1 for x in starts if x < 4 * 14)  # the units whose subwords are in the rows


def test_packed_rows_read_from_disk_not_memory(tmp_path, tokenizer):
    rows, _ = pack(tmp_path, tokenizer, SENTENCES, 16)
    assert [f["filename"] for f in rows.cache_files] == [str(tmp_path / "rows" / "rows.arrow")]


def test_packed_data_is_reused_and_resume_refuses_changed_text(tmp_path, tokenizer, capsys):
    text = tmp_path / "a.txt"
    text.write_text("\n".join(SENTENCES), encoding="utf-8")
    inputs, work = [TextInput(path=str(text))], tmp_path / "work"
    config = load("max_length=16", "progress_bar=false")
    folder = prepare_data(config, inputs, tokenizer, work, False, "T")
    assert "packed" in capsys.readouterr().err
    assert prepare_data(config, inputs, tokenizer, work, True, "T") == folder
    assert "reusing the packed rows" in capsys.readouterr().err
    prepare_data(config.replace(max_length=32), inputs, tokenizer, work, False, "T")  # new settings: packed again
    assert load_rows(folder)[1]["max_length"] == 32
    text.write_text("\n".join(SENTENCES[:5]), encoding="utf-8")
    with pytest.raises(ConfigError, match="text inputs or settings changed"):
        prepare_data(config.replace(max_length=32), inputs, tokenizer, work, True, "T")
    assert prepare_data(config, inputs, tokenizer, work, False, "T") and load_rows(folder)[1]["inputs"][0]["units"] == 5


def test_blank_text_is_an_error(tmp_path, tokenizer):
    with pytest.raises(ConfigError, match="T: the text inputs have no text"):
        pack(tmp_path, tokenizer, ["", "  "], 16)


def test_heldout_rows_are_spread_and_disjoint():
    train, held = split_heldout(100, 5)
    assert held.tolist() == [0, 25, 50, 74, 99] and len(train) == 95 and not set(train) & set(held)
    with pytest.raises(ConfigError, match="heldout_sequences"):
        split_heldout(5, 5)


# ---------------------------------------------------------------- masking and the model


def words_of(tokens):
    """Word index per position from the `##` prefix (special tokens alone)."""
    out, k = [], -1
    for i, t in enumerate(tokens):
        if not (t.startswith("##") and i and not tokens[i - 1].startswith("[")) or t.startswith("["):
            k += 1
        out.append(k)
    return out


def test_whole_word_masking_masks_whole_words(tmp_path):
    tokenizer = train_wordpiece(SENTENCES, 120)  # a small vocabulary: most words are split
    rows, _ = pack(tmp_path, tokenizer, SENTENCES * 4, 32)
    config = load("whole_word_masking=true", "mlm_probability=0.3")
    collator = make_collator(tokenizer, config, seed=0)
    masked = total = split_words = 0
    for _ in range(20):
        batch = collator([rows[i] for i in range(len(rows))])
        originals = [rows[i]["input_ids"] for i in range(len(rows))]
        for ids, labels in zip(originals, batch["labels"].tolist()):
            tokens = tokenizer.convert_ids_to_tokens(ids)
            groups: dict[int, set] = {}
            for w, lab, tok in zip(words_of(tokens), labels, tokens):
                groups.setdefault(w, set()).add(lab != -100)
                if tok in tokenizer.all_special_tokens:
                    assert lab == -100
            assert all(len(g) == 1 for g in groups.values())  # a word is masked whole or not at all
            split_words += sum(1 for w in set(words_of(tokens)) if words_of(tokens).count(w) > 1)
            masked += sum(lab != -100 for lab in labels)
            total += len(ids) - 2
    assert split_words > 50  # the test text does have multi-subword words
    assert 0.2 < masked / total < 0.4


def test_token_masking_uses_the_transformers_collator(tokenizer):
    from transformers import DataCollatorForLanguageModeling

    collator = make_collator(tokenizer, load())
    assert type(collator) is DataCollatorForLanguageModeling and collator.mlm_probability == 0.15


def test_masked_positions_head_gives_the_models_own_loss(tokenizer):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    mlm = BertForMaskedLM(
        BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    )
    mlm.eval()
    ids = torch.randint(5, len(tokenizer), (3, 20))
    labels = torch.where(torch.rand(3, 20) < 0.2, ids, torch.full_like(ids, -100))
    labels[0, 0] = ids[0, 0]
    mask = torch.ones_like(ids)
    mask[2, 15:] = 0
    full = mlm(input_ids=ids, attention_mask=mask, labels=labels).loss
    sparse = MaskedPositionsMLM(mlm)(input_ids=ids, attention_mask=mask, labels=labels)
    assert torch.allclose(full, sparse.loss, atol=1e-5) and sparse.logits.shape == (int((labels != -100).sum()), len(tokenizer))


# ---------------------------------------------------------------- end to end (slow)

QUICK = ["epochs=6", "batch_size=8", "heldout_sequences=4", "tokenizer.vocab_size=1500", "logging_steps=2", "progress_bar=false"]


def articles_text(tmp_path):
    """A small text for the end-to-end tests (the experiment itself never pretrains on the articles)."""
    path = tmp_path / "text.txt"
    path.write_text("\n".join(p.read_text(encoding="utf-8") for p in sorted((ANNOTATIONS / "articles").glob("*.txt"))), encoding="utf-8")
    return path


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "arner.cli", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=REPO
    )


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    text = articles_text(root)
    out = root / "model"
    metrics = pretrain(load(*QUICK, path=TINY), [text], out)
    return out, metrics, text


@pytest.mark.slow
def test_pretraining_lowers_the_mlm_loss(pretrained):
    out, metrics, _ = pretrained
    epochs = [json.loads(r) for r in (out / "log.jsonl").read_text().splitlines() if json.loads(r)["type"] == "epoch"]
    assert len(epochs) == 6 and metrics["epochs_run"] == 6
    assert epochs[-1]["loss"] < epochs[0]["loss"] - 0.5
    assert metrics["heldout"]["mlm_loss"] < metrics["first_heldout"]["mlm_loss"]
    assert metrics["tokens_seen"] == 6 * metrics["tokens_per_epoch"] > 0


@pytest.mark.slow
def test_output_is_a_loadable_masked_lm(pretrained):
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    out, _, _ = pretrained
    meta = json.loads((out / "arner.json").read_text())
    assert meta["config"]["whole_word_masking"] and meta["inputs"][0]["units"] > 0 and meta["metrics"]["global_step"] > 0
    model = AutoModelForMaskedLM.from_pretrained(out)
    assert type(model).__name__ == "BertForMaskedLM" and model.config.hidden_size == 128
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert torch.equal(model.cls.predictions.decoder.weight, model.bert.embeddings.word_embeddings.weight)
    filled = pipeline("fill-mask", model=str(out))(f"وصل المبعوث {tokenizer.mask_token} إلى موسكو")
    assert len(filled) == 5
    # a model folder as the Hub takes it: its card, no checkpoints (work/ is the cache a rerun reuses)
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == "fill-mask" and "pretraining" in card.data.tags and card.data.language == ["ar"]
    (loss,) = [r.metric_value for r in card.data.eval_results if r.metric_name == "held-out MLM loss"]
    assert loss == round(meta["metrics"]["heldout"]["mlm_loss"], 4) and f"{meta['metrics']['tokens_seen']:,} tokens seen" in card.text
    assert not (out / "checkpoints").exists() and (out / "work").is_dir()


@pytest.mark.slow
def test_output_works_as_the_model_of_arner_train(pretrained, tmp_path):
    from transformers import AutoModelForTokenClassification

    from arner.eval.training import train

    out, _, _ = pretrained
    metrics = train(
        load_config(REPO / "configs" / "tiny.yaml", [f"model={out}", "epochs=2", "progress_bar=false"]), tmp_path / "ner", fold=0
    )
    held = {k: v for k, v in metrics["heldout"].items() if k != "bootstrap"}
    assert "strict_f1" in held and held == read_log(tmp_path / "ner", "epoch")[-1]["heldout"]
    ner = AutoModelForTokenClassification.from_pretrained(tmp_path / "ner")
    trained, base = load_file(tmp_path / "ner" / "model.safetensors"), load_file(out / "model.safetensors")
    assert trained["bert.embeddings.word_embeddings.weight"].shape == base["bert.embeddings.word_embeddings.weight"].shape
    assert ner.config.label2id == TAG2ID and ner.num_labels == len(TAG2ID)
    assert json.loads((tmp_path / "ner" / "arner.json").read_text())["base_model"] == str(out)


@pytest.mark.slow
def test_killed_then_resumed_matches_uninterrupted(pretrained, tmp_path):
    out, metrics, text = pretrained
    steps_per_epoch = metrics["global_step"] // 6
    args = ["pretrain", "--config", str(TINY), "--output", str(tmp_path / "r"), "--text", str(text)]
    args += [a for s in QUICK for a in ("--set", s)]
    crash_after = [sys.executable, str(REPO / "tests" / "crash_after.py"), str(3 * steps_per_epoch + 2), "--"]  # inside epoch 4
    crashed = subprocess.run([*crash_after, *args], capture_output=True, text=True, cwd=REPO)
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    assert [p.name for p in (tmp_path / "r" / "checkpoints").glob("epoch-*")] == ["epoch-3"]
    assert not (tmp_path / "r" / "config.json").exists()
    resumed = cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "reusing the packed rows" in resumed.stderr
    again = json.loads(resumed.stdout[resumed.stdout.index("{") :])
    assert {k: again[k] for k in ("global_step", "final_loss", "heldout")} == {
        k: metrics[k] for k in ("global_step", "final_loss", "heldout")
    }
    a, b = load_file(out / "model.safetensors"), load_file(tmp_path / "r" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_max_steps_cuts_the_run_and_a_resume_adds_nothing(pretrained, tmp_path):
    _, full, text = pretrained
    steps_per_epoch = full["global_step"] // 6
    cut = steps_per_epoch + 2  # inside epoch 2
    config = load(*QUICK, f"max_steps={cut}", path=TINY)
    metrics = pretrain(config, [text], tmp_path / "cut")
    rows = [json.loads(r) for r in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r["type"] == "epoch"]
    assert metrics["global_step"] == cut and [r["step"] for r in epochs] == [steps_per_epoch, cut]
    assert epochs[-1]["max_steps_reached"] and epochs[-1]["learning_rate"] == 0.0  # the schedule ends at max_steps
    assert metrics["tokens_seen"] == sum(r["tokens"] for r in epochs) < 2 * full["tokens_per_epoch"]
    again = pretrain(config, [text], tmp_path / "cut", resume=True)
    assert again["global_step"] == cut and again["tokens_seen"] == metrics["tokens_seen"]


@pytest.mark.slow
def test_two_processes_under_accelerate_launch(pretrained, tmp_path):
    _, metrics, text = pretrained
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    cmd += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m", "arner.cli", "pretrain", "--config", str(TINY)]
    cmd += ["--output", str(out), "--text", str(text)] + [a for s in QUICK + ["epochs=1"] for a in ("--set", s)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "model.safetensors").exists() and json.loads((out / "arner.json").read_text())["processes"] == 2
    steps = [json.loads(r) for r in (out / "log.jsonl").read_text().splitlines()][-1]["step"]
    assert steps == pytest.approx(metrics["global_step"] / 6 / 2, abs=1)  # each process saw half of the batches
