"""Run configs: validation on load, overrides, and a clear error for a hub model offline."""

import pytest
from typer.testing import CliRunner

from arner.cli import app
from arner.train.config import ConfigError, load_config

from conftest import REPO

runner = CliRunner()
CONFIGS = REPO / "configs"


@pytest.mark.parametrize("name", ["tiny", "arabert-v02", "camelbert-msa", "xlmr-base", "small-pretrained"])
def test_shipped_configs_load(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config.model and config.max_length > config.stride


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
        (["learning_rate=-1"], "learning_rate must be > 0"),
        (["mixed_precision=fp8"], "mixed_precision must be"),
        (["tiny.hidden_size=129"], "tiny.hidden_size must be divisible"),
        (["epochs"], "expected key=value"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "tiny.yaml", overrides)


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
