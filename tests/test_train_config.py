"""Run configs: validation on load, overrides, and a clear error for a hub model offline."""

import pytest
from typer.testing import CliRunner

from arner.cli import app
from arner.core.public import ExternalCorpus
from arner.train.config import ConfigError, PretrainConfig, TextInput, TrainConfig, load_config

from conftest import REPO

runner = CliRunner()
CONFIGS = REPO / "configs"


@pytest.mark.parametrize("name", ["tiny", "arabert-v02", "camelbert-msa", "xlmr-base", "small-pretrained"])
def test_shipped_configs_load(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config.model and config.max_length > config.stride


def test_report_to_takes_a_list_or_one_name_and_is_off_by_default():
    assert load_config(CONFIGS / "tiny.yaml").report_to == []
    assert load_config(CONFIGS / "tiny.yaml", ["report_to=tensorboard"]).report_to == ["tensorboard"]
    assert load_config(CONFIGS / "pretrain-tiny.yaml", ["report_to=[tensorboard]"], cls=PretrainConfig).report_to == ["tensorboard"]
    assert load_config(CONFIGS / "tiny.yaml").keep_checkpoints_after_training is False


def test_overrides_and_dotted_keys():
    config = load_config(CONFIGS / "tiny.yaml", ["epochs=3", "learning_rate=2e-4", "tiny.hidden_size=64", "model=/some/dir"])
    assert (config.epochs, config.learning_rate, config.tiny.hidden_size, config.model) == (3, 2e-4, 64, "/some/dir")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["epochz=3"], "unknown key epochz"),
        (["tiny.layers=3"], "unknown key tiny.layers"),
        (["epochs=three"], "epochs must be int"),
        (["label_all_subwords=3"], "label_all_subwords must be bool"),
        (["epochs=0"], "epochs must be >= 1"),
        (["stride=200"], "stride must be"),
        (["learning_rate=-1"], r"learning_rate must be in \(0, 1\] \(got -1\)"),
        (["mixed_precision=fp8"], "mixed_precision must be"),
        (["tiny.hidden_size=129"], "tiny.hidden_size must be divisible"),
        (["epochs"], "expected key=value"),
        (["report_to=[wandb]"], r"report_to\[0\] must be one of 'tensorboard' \(got 'wandb'\)"),
        (["report_to=[tensorboard, tensorboard]"], "report_to names a tracker twice"),
        (["keep_checkpoints_after_training=1"], "keep_checkpoints_after_training must be bool"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "tiny.yaml", overrides)


TINY_DICT = {  # what the dataclass configs gave for configs/tiny.yaml (the YAML over the defaults), with the keys added since
    "epochs": 30, "max_steps": 0, "batch_size": 8, "learning_rate": 0.001, "weight_decay": 0.01, "warmup_ratio": 0.1,
    "gradient_accumulation_steps": 1, "max_grad_norm": 1.0, "seed": 42, "mixed_precision": "auto", "torch_compile": False,
    "group_by_length": True, "pad_to_multiple_of": 8, "logging_steps": 10, "early_stopping_patience": 0, "keep_checkpoints": 1,
    "keep_checkpoints_after_training": False, "report_to": [], "progress_bar": True, "model": "tiny",
    "tiny": {
        "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 256, "max_position_embeddings": 256,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "vocab_size": 3000, "min_frequency": 1,
    },
    "annotations": "annotations", "max_length": 128, "stride": 32, "label_all_subwords": False, "eval_batch_size": 32,
    "load_best_model_at_end": False, "trim_proclitics": True, "external_root": "../shared/external", "extra_train": [],
    "train_on_articles": True, "external_test": [],
}  # fmt: skip


def test_to_dict_is_the_plain_dict_of_before():
    config = load_config(CONFIGS / "tiny.yaml")
    assert config.to_dict() == TINY_DICT and list(config.to_dict()) == list(TINY_DICT)  # same keys, same order (arner.json)
    corpora = load_config(CONFIGS / "tiny-external-only.yaml").to_dict()["extra_train"]
    assert corpora[0] == {
        "name": "anercorp-train",
        "files": ["anercorp/train.conll"],
        "label_map": "",
        "label_map_one_to_one": "",
        "exclude": "",
        "sentences_per_document": 20,
        "weight": 1.0,
        "max_words": 0,
    }


def test_sections_read_and_copy_like_before():
    config = load_config(CONFIGS / "tiny-external-only.yaml")
    assert config.tiny.hidden_size == 128 and config.extra_train[0].files == ["anercorp/train.conll"]
    assert isinstance(config.extra_train[0], ExternalCorpus) and not config.train_on_articles
    copy = config.replace(annotations="gold", epochs=2)
    assert (copy.annotations, copy.epochs, config.epochs) == ("gold", 2, 4)
    with pytest.raises(ConfigError, match=r"replace: epochs must be >= 1 \(got 0\)"):
        config.replace(epochs=0)
    with pytest.raises(ConfigError, match="unknown key epochz"):
        config.replace(epochz=2)
    assert TextInput("a.txt", "drop.txt").exclude == "drop.txt" and TrainConfig(model="x").model == "x"
    assert load_config(None, ["text=[{path: a.txt}]"], cls=PretrainConfig).text == [TextInput("a.txt")]
    assert load_config(None, ["learning_rate=2e-5", "tiny.hidden_dropout_prob=0"]).learning_rate == 2e-5  # YAML 1.1 reads 2e-5 as a string


def one_line_error(path, overrides=()) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(path, list(overrides))
    message = str(e.value)
    assert "\n" not in message and len(message) < 500, message
    return message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("tiny.num_attention_heads=0", "tiny.num_attention_heads must be in [1, 1000000] (got 0)"),
        ("tiny.hidden_size=0", "tiny.hidden_size must be in [1, 1000000] (got 0)"),
        ("tiny.hidden_size=-4", "tiny.hidden_size must be in [1, 1000000] (got -4)"),
        ("tiny.num_hidden_layers=0", "tiny.num_hidden_layers must be in [1, 1000000] (got 0)"),
        ("tiny.min_frequency=-1", "tiny.min_frequency must be >= 1 (got -1)"),
        ("tiny.hidden_dropout_prob=.nan", "tiny.hidden_dropout_prob must be a finite number (got nan)"),
        ("tiny.hidden_dropout_prob=2", "tiny.hidden_dropout_prob must be in [0, 1) (got 2)"),
        ("pad_to_multiple_of=1e12", "pad_to_multiple_of must be int (got '1e12')"),
        ("pad_to_multiple_of=1000000000000", "pad_to_multiple_of must be in [1, 512] (got 1000000000000)"),
        ("tiny.vocab_size=1e12", "tiny.vocab_size must be int (got '1e12')"),
        ("tiny.vocab_size=1000000000000", "tiny.vocab_size must be in [100, 1000000] (got 1000000000000)"),
        ("learning_rate=.inf", "learning_rate must be a finite number (got inf)"),
        ("learning_rate=1e30", "learning_rate must be in (0, 1] (got '1e30')"),
        ("seed=-1", "seed must be in [0, 4294967295] (got -1)"),
        ("max_length=1024", "max_length must be in [16, 512] (got 1024)"),
        ("epochs=2.5", "epochs must be int (got 2.5)"),
        ("epochs=true", "epochs must be int (got True)"),
        ("learning_rate=abc", "learning_rate must be float (got 'abc')"),
        (
            "extra_train=[{files: [a.conll], foo: 1}]",
            "unknown key extra_train[0].foo (known: exclude, files, label_map, label_map_one_to_one, max_words, name, sentences_per_document, weight)",
        ),
        ("extra_train=[{files: []}]", "extra_train[0].files must list at least one file (got [])"),
    ],
)
def test_each_bad_value_is_one_line_naming_key_value_and_the_set(override, expected):
    message = one_line_error(CONFIGS / "tiny.yaml", [override])
    assert message == f"{CONFIGS / 'tiny.yaml'}: {expected}, from --set {override}"


def test_yaml_is_read_strictly(tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text("model: tiny\ntiny:\n  hidden_size: 64\n  hidden_size: 32\n", encoding="utf-8")
    assert one_line_error(dup) == f"{dup}: bad YAML: duplicate key 'hidden_size' at line 4 (first at line 3)"
    bomb = tmp_path / "bomb.yaml"  # 9 levels of 9 aliases: 9**9 strings once expanded
    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    rows += [f"{b}: &{b} [{','.join(['*' + a] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
    bomb.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert "a config may not use anchors or aliases" in one_line_error(bomb)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("model: café\n".encode("latin-1"))
    assert one_line_error(latin) == f"{latin}: not UTF-8 text (byte 0xe9 at offset 10)"
    assert one_line_error(tmp_path) == f"{tmp_path}: is a directory, not a config file"
    listed = tmp_path / "list.yaml"
    listed.write_text("- epochs: 3\n", encoding="utf-8")
    assert one_line_error(listed) == f"{listed}: the top level must be a mapping (got list)"
    assert one_line_error(None, ["tiny=[1,"]).startswith("--set tiny=[1,: bad YAML: ")
    assert one_line_error(None, ["tiny=3", "tiny.hidden_size=2"]) == "--set tiny.hidden_size=2: tiny is not a mapping"


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.yaml: bad YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_hub_model_offline_fails_at_once_with_a_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = runner.invoke(app, ["train", "--config", str(CONFIGS / "arabert-v02.yaml"), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "arabert-v02.yaml" in result.output and "aubmindlab/bert-base-arabertv02" in result.output
    assert "model: DIR" in result.output and "HF_HUB_OFFLINE" in result.output
    assert not (tmp_path / "out" / "config.json").exists()


def test_missing_local_model_folder(tmp_path):
    result = runner.invoke(
        app, ["train", "--config", str(CONFIGS / "tiny.yaml"), "--set", "model=./no/such/dir", "--output", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "does not exist" in result.output
