"""Faster precisions of the Tagger (torch int8 and bf16, ONNX Runtime fp32 and int8) against fp32 on a trained model."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from arner.cli import app
from arner.core import corpus
from arner.inference import Tagger
from arner.inference.precision import check_precision, cpu_has_bf16
from arner.inference.tagger import best_labels

from conftest import ANNOTATIONS, TEXT

runner = CliRunner()


@pytest.fixture(scope="module")
def texts():
    return [d.text for d in corpus.load(ANNOTATIONS)]


@pytest.fixture(scope="module")
def reference(tiny_model, texts):
    tagger = Tagger.from_pretrained(tiny_model, device="cpu")
    return tagger, [tagger.word_tags(t) for t in texts]


def agreement(tagger, texts, reference_tags) -> float:
    tags = [tagger.word_tags(t) for t in texts]
    pairs = [(a, b) for x, y in zip(tags, reference_tags) for a, b in zip(x, y, strict=True)]
    return sum(a == b for a, b in pairs) / len(pairs)


def test_best_labels_on_cpu_match_torchs_softmax():
    logits = torch.randn(3, 5, 7)
    rows, cols = np.array([0, 0, 2, 1]), np.array([4, 1, 0, 3])
    labels, probs = best_labels(logits, rows, cols)
    expected_p, expected_k = logits[rows, cols].softmax(-1).max(-1)
    assert labels.tolist() == expected_k.tolist()
    np.testing.assert_allclose(probs, expected_p.numpy(), rtol=1e-6)


def test_int8_quantizes_the_encoder_and_keeps_the_head_and_the_words(tiny_model, texts, reference):
    tagger = Tagger.from_pretrained(tiny_model, device="cpu", precision="int8")
    quantized = {n for n, m in tagger.model.named_modules() if type(m).__name__ == "Linear" and "quantized" in type(m).__module__}
    plain = {n for n, m in tagger.model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert quantized and "classifier" in plain and "classifier" not in quantized
    assert tagger.precision == "int8"
    assert agreement(tagger, texts, reference[1]) >= 0.99
    for e in tagger(TEXT):
        assert TEXT[e.start : e.end] == e.text


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 instructions")
def test_bf16_on_a_cpu_that_has_it(tiny_model, texts, reference):
    tagger = Tagger.from_pretrained(tiny_model, device="cpu", precision="bf16")
    assert next(tagger.model.parameters()).dtype == torch.bfloat16
    assert agreement(tagger, texts, reference[1]) >= 0.99


def test_precisions_a_device_cannot_run_are_clear_errors(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert check_precision("auto", cpu) == "fp32" and check_precision("int8", cpu) == "int8"
    with pytest.raises(ValueError, match="fp16 runs on a GPU only"):
        check_precision("fp16", cpu)
    with pytest.raises(ValueError, match="int8 is dynamic quantization for CPUs"):
        check_precision("int8", gpu)
    with pytest.raises(ValueError, match="must be one of"):
        check_precision("int4", cpu)
    monkeypatch.setattr("arner.inference.precision.cpu_flags", lambda: {"avx2"})
    with pytest.raises(ValueError, match="no bf16 instructions"):
        check_precision("bf16", cpu)


@pytest.fixture(scope="module")
def onnx_folders(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    for quantize in ("none", "int8"):
        result = runner.invoke(app, ["export", "--model", str(tiny_model), "--out", str(root / quantize), "--quantize", quantize])
        assert result.exit_code == 0, result.output
        assert f"wrote {root / quantize}" in result.output
    return root


def test_onnx_export_gives_the_torch_models_entities(onnx_folders, texts, reference):
    torch_tagger, _ = reference
    tagger = Tagger.from_pretrained(onnx_folders / "none")
    assert tagger.precision == "onnx-fp32" and tagger.device.type == "cpu"
    for got, want in zip(tagger.predict(texts), torch_tagger.predict(texts)):
        assert [e.span() for e in got] == [e.span() for e in want]
        assert max((abs(a.score - b.score) for a, b in zip(got, want)), default=0) < 1e-4
    meta = json.loads((onnx_folders / "none" / "arner.json").read_text())
    assert meta["export"]["format"] == "onnx" and meta["export"]["quantize"] == "none" and "config" in meta


def test_onnx_int8_leaves_the_head_in_fp32_and_keeps_the_words(onnx_folders, texts, reference):
    import onnx

    graph = onnx.load(str(onnx_folders / "int8" / "model.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    head = [n for n in graph.node if any("classifier" in i for i in n.input)]
    assert head and all(n.op_type in ("MatMul", "Gemm", "Add") for n in head)
    tagger = Tagger.from_pretrained(onnx_folders / "int8")
    assert tagger.precision == "onnx-int8"
    assert agreement(tagger, texts, reference[1]) >= 0.99


def test_predict_runs_an_onnx_folder_and_refuses_other_precisions_for_it(onnx_folders, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(TEXT, encoding="utf-8")
    result = runner.invoke(app, ["predict", "--model", str(onnx_folders / "int8"), str(text)])
    assert result.exit_code == 0, result.output
    entities = json.loads(result.output)["entities"]
    assert entities and all(TEXT[e["start"] : e["end"]] == e["text"] for e in entities)
    result = runner.invoke(app, ["predict", "--model", str(onnx_folders / "int8"), "--precision", "int8", str(text)])
    assert result.exit_code == 2 and "is an ONNX export" in result.output


def test_export_refuses_bad_options_and_foreign_folders(tiny_model, tmp_path):
    result = runner.invoke(app, ["export", "--model", str(tiny_model), "--out", str(tmp_path / "o"), "--quantize", "int4"])
    assert result.exit_code == 2 and "--quantize must be one of none, int8" in result.output
    result = runner.invoke(app, ["export", "--model", str(tiny_model), "--out", str(tmp_path / "o"), "--format", "tflite"])
    assert result.exit_code == 2 and "--format must be onnx" in result.output
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["export", "--model", str(tiny_model), "--out", str(foreign)])
    assert result.exit_code == 2 and "notes.txt" in result.output
    assert (foreign / "notes.txt").read_text() == "keep me" and not (tmp_path / "o").exists()


def test_predict_with_int8_and_serve_settings_take_the_option(tiny_model, tmp_path):
    from arner.serve.settings import ServeSettings, SettingsError

    text = tmp_path / "t.txt"
    text.write_text(TEXT, encoding="utf-8")
    result = runner.invoke(app, ["predict", "--model", str(tiny_model), "--precision", "int8", str(text)])
    assert result.exit_code == 0 and json.loads(result.output)["entities"]
    result = runner.invoke(app, ["predict", "--model", str(tiny_model), "--precision", "fp16", "--device", "cpu", str(text)])
    assert result.exit_code == 2 and "fp16 runs on a GPU only" in result.output
    assert ServeSettings(precision="int8").precision == "int8"
    with pytest.raises(SettingsError, match="--precision must be"):
        ServeSettings(precision="int4")


def test_int8_leaves_electras_embedding_projection_in_fp32():
    from transformers import ElectraConfig, ElectraForTokenClassification

    from arner.inference.precision import quantize_int8

    config = ElectraConfig(
        vocab_size=100, embedding_size=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, num_labels=7
    )
    model = quantize_int8(ElectraForTokenClassification(config).eval())
    kinds = {n: type(m).__module__ for n, m in model.named_modules() if type(m).__name__ == "Linear"}
    assert "quantized" not in kinds["electra.embeddings_project"] and "quantized" not in kinds["classifier"]
    assert any("quantized" in k for k in kinds.values())  # the encoder's own layers are int8
