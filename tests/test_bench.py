"""`arner bench train|infer`: smoke runs on CPU at tiny sizes (reports, keys, positive figures; speed is never asserted)."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from arner.bench.data import cut_texts, repeat_documents
from arner.bench.machine import PEAK_BF16_TFLOPS, device_name, short_gpu_name
from arner.bench.models import load_bench_config
from arner.bench.report import infer_markdown, train_markdown
from arner.bench.train import flops_per_token
from arner.cli import app
from arner.core import corpus
from arner.train.model import train_wordpiece

from conftest import ANNOTATIONS, REPO

runner = CliRunner()


@pytest.fixture(scope="module")
def docs():
    return corpus.load(ANNOTATIONS)


@pytest.fixture(scope="module")
def tokenizer(docs):
    return train_wordpiece([d.text for d in docs], 3000)


def positive(row: dict, keys: tuple[str, ...]) -> None:
    for k in keys:
        assert row[k] > 0, (k, row[k])


def key_paths(value: object, prefix: str = "") -> set[str]:
    """Every key path of a report (a list's items share their paths), `machine` left out: it varies by hardware."""
    if isinstance(value, list):
        return set().union(*(key_paths(v, prefix) for v in value))
    if not isinstance(value, dict):
        return set()
    return {f"{prefix}{k}" for k in value} | set().union(*(key_paths(v, f"{prefix}{k}.") for k, v in value.items() if k != "machine"))


def same_keys_as_committed(report: dict, name: str) -> None:
    """The committed CPU report has the keys the code writes today, so it still describes its output."""
    committed = json.loads((REPO / "reports" / "bench" / "cpu" / f"{name}.json").read_text(encoding="utf-8"))
    assert key_paths(report) == key_paths(committed)


@pytest.mark.slow
def test_bench_train_smoke(tmp_path):
    result = runner.invoke(
        app,
        ["bench", "train", "--tokens", "600", "--epochs", "2", "--annotations", str(ANNOTATIONS), "--out", str(tmp_path), "--threads", "1"],
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / device_name()
    report = json.loads((folder / "train-tiny.json").read_text())
    assert {
        "command",
        "device",
        "machine",
        "versions",
        "model",
        "config",
        "data",
        "ours",
        "trainer",
        "ratio_tokens_per_second",
        "targets",
    } <= set(report)
    assert report["command"].startswith("arner bench train --model tiny --tokens 600 --epochs 2")
    assert {"cpu", "cpu_cores", "gpu"} <= set(report["machine"]) and report["versions"]["torch"] == torch.__version__
    for side in ("ours", "trainer"):
        positive(report[side], ("tokens_per_second", "sequences_per_second", "step_seconds", "peak_memory_mb", "seconds"))
        assert len(report[side]["epoch_seconds"]) == 2
    assert report["ours"]["precision"] == report["trainer"]["precision"] == "fp32"
    assert report["data"]["windows"] > 0 and report["flops_per_token"] > 0 and report["ratio_tokens_per_second"] > 0
    assert all({"target", "value", "reached"} <= set(t) for t in report["targets"])
    assert "arner bench train" in (folder / "train-tiny.md").read_text()
    same_keys_as_committed(report, "train-tiny")


@pytest.mark.slow
def test_bench_infer_smoke(tmp_path):
    args = ["bench", "infer", "--tokens", "600", "--batch-sizes", "1,2", "--lengths", "32,64", "--length-tokens", "150"]
    result = runner.invoke(app, args + ["--device", "cpu", "--annotations", str(ANNOTATIONS), "--out", str(tmp_path), "--threads", "1"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "cpu"
    report = json.loads((folder / "infer-tiny.json").read_text())
    keys = {
        "tagger_default",
        "tagger_best",
        "pipeline_default",
        "pipeline_best",
        "ratio_default",
        "ratio_best",
        "batch_sweep",
        "length_sweep",
    }
    assert keys <= set(report) and report["command"].startswith("arner bench infer --model tiny --tokens 600")
    for name in ("tagger_default", "tagger_best", "pipeline_default", "pipeline_best"):
        positive(report[name], ("documents_per_second", "tokens_per_second", "seconds", "batch_size", "model_positions_per_token"))
        assert 0 < report[name]["model_forward_share"] <= 1
    assert report["pipeline_default"]["batch_size"] == 1 and report["ratio_best"] > 0 and report["ratio_default"] > 0
    assert [r["batch_size"] for r in report["batch_sweep"]["tagger"]] == [1, 2, 16]  # 16: Tagger's default
    assert [r["length"] for r in report["length_sweep"]["pipeline"]] == [32, 64]
    assert (folder / "infer-tiny.png").stat().st_size > 0 and "infer-tiny.png" in (folder / "infer-tiny.md").read_text()
    same_keys_as_committed(report, "infer-tiny")


@pytest.mark.slow
def test_bench_infer_host_only_times_the_code_around_a_stand_in_model(tmp_path):
    args = ["bench", "infer", "--tokens", "600", "--batch-sizes", "4", "--lengths", "64", "--length-tokens", "150", "--host-only"]
    result = runner.invoke(app, args + ["--device", "cpu", "--annotations", str(ANNOTATIONS), "--out", str(tmp_path), "--threads", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "cpu" / "infer-tiny-host-only.json").read_text())
    assert report["host_only"] is True and report["precision"] == "fp32"
    assert report["targets"][0]["target"].startswith("host-only tokens/s")
    assert report["targets"][0]["value"] == report["tagger_best"]["tokens_per_second"]
    assert "Host only" in (tmp_path / "cpu" / "infer-tiny-host-only.md").read_text()


def test_fixed_logits_tag_about_the_asked_share_of_tokens_as_entities():
    from transformers import BertConfig

    from arner.bench.infer import FixedLogits
    from arner.core.conventions import TAG2ID

    model = type("M", (), {"config": BertConfig(vocab_size=5000, num_labels=7)})()
    stand_in = FixedLogits(model, entity_share=0.2)
    ids = torch.arange(5000).reshape(50, 100)
    logits = stand_in(input_ids=ids).logits
    assert logits.shape == (50, 100, 7)
    share = (logits.argmax(-1) != TAG2ID["O"]).float().mean().item()
    assert 0.18 < share < 0.22
    assert torch.equal(stand_in(input_ids=ids[:2]).logits, logits[:2])  # fixed: the same id gives the same logits


def test_bad_options_are_clear_errors(tmp_path):
    result = runner.invoke(app, ["bench", "train", "--epochs", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "warm-up" in result.output
    result = runner.invoke(app, ["bench", "infer", "--model", "gpt", "--annotations", str(ANNOTATIONS), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--model must be one of" in result.output
    assert not list(tmp_path.iterdir())


def test_repeated_documents_reach_the_target_in_shuffled_rounds(docs, tokenizer):
    out = repeat_documents(docs, tokenizer, 5000, seed=1)
    sizes = [len(tokenizer(d.text, add_special_tokens=False)["input_ids"]) for d in out]
    assert sum(sizes) >= 5000 > sum(sizes[:-1])
    assert len({d.doc for d in out}) == len(out)
    first_round = [d.doc.rsplit("-r", 1)[0] for d in out[: len(docs)]]
    assert sorted(first_round) == sorted(d.doc for d in docs)  # each article once per round
    assert all(o.text == next(d.text for d in docs if o.doc.startswith(d.doc)) for o in out)


def test_cut_texts_have_about_the_asked_length(docs, tokenizer):
    texts = cut_texts([d.text for d in docs], tokenizer, 100, 1000)
    sizes = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert len(texts) == 10 and all(90 <= n <= 110 for n in sizes), sizes


def tiny_bert():
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64
    )
    return BertForTokenClassification(config)  # 2 labels, no pooler


def test_flops_per_token_matches_a_hand_count():
    # Non-embedding parameters, by hand: per layer Q, K, V, O 4 x (32 x 32 + 32) = 4,224, two LayerNorms 2 x 64,
    # FFN 32 x 64 + 64 + 64 x 32 + 32 = 4,192 -> 8,544; x 2 layers = 17,088; embedding LayerNorm 64; classifier
    # 32 x 2 + 2 = 66 -> 17,218. 6 x 17,218 = 103,308, plus attention 12 x 2 layers x 32 hidden x 50 positions = 38,400.
    assert flops_per_token(tiny_bert(), 50) == 141_708


def test_flops_per_token_matches_torchs_count_of_a_training_step():
    from torch.utils.flop_counter import FlopCounterMode

    model, batch, length = tiny_bert(), 3, 50
    ids = torch.randint(0, 100, (batch, length))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, labels=torch.zeros_like(ids)).loss.backward()
    counted = counter.get_total_flops() / (batch * length)  # matmuls only: forward and backward
    # torch counts no FLOPs for biases and LayerNorms (1-D parameters), which the 6N rule includes
    vectors = sum(p.numel() for p in model.parameters() if p.dim() == 1)
    assert counted > 0 and flops_per_token(model, length) == counted + 6 * vectors


def test_gpu_names_map_to_report_folders_and_peaks():
    names = ["NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA H200", "NVIDIA A100-SXM4-80GB", "Tesla T4", "NVIDIA GeForce RTX 4090"]
    assert [short_gpu_name(n) for n in names] == ["h100", "h100-pcie", "h200", "a100", "t4", "geforce-rtx-4090"]
    assert PEAK_BF16_TFLOPS["h100"] == PEAK_BF16_TFLOPS["h200"] == 989.0 and PEAK_BF16_TFLOPS["a100"] == 312.0


def test_default_configs_are_found_from_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    assert load_bench_config("bert-base", None).max_length == 512
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="configs/tiny.yaml not found.*pass --config") as error:
        load_bench_config("tiny", None)
    assert "\n" not in str(error.value)
    assert load_bench_config("tiny", REPO / "configs" / "tiny.yaml").max_length == 128


@pytest.mark.parametrize("path", sorted((REPO / "reports" / "bench").glob("*/*.json")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_committed_reports_render_to_their_markdown(path):
    report = json.loads(path.read_text(encoding="utf-8"))
    markdown = (train_markdown if report["bench"] == "train" else infer_markdown)(report)
    committed = path.with_suffix(".md").read_text(encoding="utf-8")
    assert markdown == committed


def test_bench_reports_go_to_runs_by_default_never_over_the_committed_ones():
    import typer.main

    bench = typer.main.get_command(app).commands["bench"]
    for name in ("train", "infer"):
        (out,) = [p for p in bench.commands[name].params if p.name == "out"]
        assert Path(out.default).parts[0] == "runs"
