"""End-to-end training on the tiny config (CPU): loss, outputs, determinism, resume, 2 processes."""

import json
import os
import shlex
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from arner.core import corpus
from arner.core.conventions import LABELS
from arner.eval.spanscore import span_scores
from arner.eval.training import train
from arner.inference import Tagger
from arner.train.config import load_config

from conftest import ANNOTATIONS, REPO

pytestmark = pytest.mark.slow
TINY = REPO / "configs" / "tiny.yaml"
QUICK = ["epochs=12", "progress_bar=false", f"annotations={ANNOTATIONS}"]


def rows(out, kind="epoch"):
    return [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if r["type"] == kind]


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "arner.cli", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=REPO
    )


def cli_killed_after(steps, *args):
    """`arner *args`, killed right after optimizer step `steps` (tests/crash_after.py)."""
    return subprocess.run(
        [sys.executable, str(REPO / "tests" / "crash_after.py"), str(steps), "--", *args], capture_output=True, text=True, cwd=REPO
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "model"
    metrics = train(load_config(TINY, QUICK + ["logging_steps=2"]), out, fold=3)
    return out, metrics


def test_loss_falls_and_logs_are_written(trained):
    out, metrics = trained
    epochs = rows(out)
    assert len(epochs) == 12 and metrics["epochs_run"] == 12
    assert epochs[-1]["loss"] < 0.7 * epochs[0]["loss"]
    assert all({"loss", "learning_rate", "tokens_per_second", "heldout"} <= set(r) for r in epochs)
    steps = rows(out, "step")
    assert steps and all(r["step"] % 2 == 0 and r["tokens_per_second"] > 0 for r in steps)
    # the final held-out score is the last epoch's, and it is what the evaluation computes on that article
    held, boot = metrics["heldout"], metrics["heldout"]["bootstrap"]  # and the card's interval for it
    assert {k: v for k, v in held.items() if k != "bootstrap"} == epochs[-1]["heldout"]
    assert boot["strict_f1"]["low"] <= metrics["heldout"]["strict_f1"] <= boot["strict_f1"]["high"]
    assert boot["confidence"] == 0.95 and boot["resamples"] == 1000 and boot["paragraphs"] > 10
    held = corpus.load(ANNOTATIONS)[3]
    predicted = Tagger.from_pretrained(out, device="cpu", batch_size=32, stride=32)(held.text)
    scores = span_scores([held.spans], [[e.span() for e in predicted]])
    assert metrics["heldout"]["strict_f1"] == pytest.approx(scores["strict"]["micro"]["f1"], abs=1e-9)


def test_output_is_a_standard_model_folder_ready_to_upload(trained):
    out, _ = trained
    # no checkpoints: what `huggingface_hub.upload_folder` would send is the model, its card and the run's small records
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "arner.json", "config.json", "log.jsonl", "model.safetensors", "tokenizer.json", "tokenizer_config.json"
    ]  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert set(config["label2id"]) == {"O"} | {f"{p}-{lab}" for lab in LABELS for p in "BI"}
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    meta = json.loads((out / "arner.json").read_text())
    assert meta["fold"] == 3 and meta["heldout_docs"] == ["003_53fd142aed23886e"]
    assert "003_53fd142aed23886e" not in meta["train_docs"]
    assert {"config", "data_fingerprint", "git_commit", "versions", "metrics"} <= set(meta)
    assert meta["config"]["epochs"] == 12


def test_the_model_card_parses_and_holds_the_runs_scores_and_command(trained):
    from huggingface_hub import ModelCard

    out, metrics = trained
    card = ModelCard.load(out / "README.md")
    assert card.data.language == ["ar"] and card.data.license == "mit" and card.data.pipeline_tag == "token-classification"
    assert {"token-classification", "ner"} <= set(card.data.tags) and card.data.model_name == out.name
    f1 = next(r for r in card.data.eval_results if r.metric_name == "strict span F1")
    assert f1.metric_value == round(metrics["heldout"]["strict_f1"], 4) and "003_53fd142aed23886e" in f1.dataset_split
    boot = metrics["heldout"]["bootstrap"]["strict_f1"]
    assert f"| strict span F1 | {metrics['heldout']['strict_f1']:.3f} | [{boot['low']:.3f}, {boot['high']:.3f}] |" in card.text
    meta = json.loads((out / "arner.json").read_text())
    assert f"| annotated articles | `{ANNOTATIONS}` | 4 | {meta['train_articles']['words']:,} |" in card.text
    assert meta["command"] == "" and "Not recorded" in card.text  # trained from Python; the CLI run of the resume test records it


def test_output_loads_with_the_transformers_pipeline(trained):
    from transformers import pipeline

    out, _ = trained
    tagger = pipeline("token-classification", model=str(out), aggregation_strategy="first")
    text = (ANNOTATIONS / "articles" / "001_098cab9d7c7d513a.txt").read_text(encoding="utf-8")[:600]  # a training article
    entities = tagger(text)
    assert entities and all(text[e["start"] : e["end"]].strip() for e in entities)
    assert {e["entity_group"] for e in entities} <= set(LABELS)


def test_heldout_article_never_reaches_the_tokenizer(trained):
    out, _ = trained
    vocab = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
    # 'سوناتا' (a name that appears only in article 003) is not a whole-word entry
    assert "سوناتا" not in vocab and "كولتر" not in vocab
    assert "ويتكوف" in vocab  # a name from the training articles is (the published tokenizer is the one built for the run)


def test_same_seed_same_metrics(trained, tmp_path):
    out, metrics = trained
    again = train(load_config(TINY, QUICK + ["logging_steps=2"]), tmp_path / "again", fold=3)
    assert again == metrics
    assert [r["loss"] for r in rows(tmp_path / "again")] == [r["loss"] for r in rows(out)]


def test_killed_mid_epoch_then_resumed_matches_uninterrupted(trained, tmp_path):
    out, metrics = trained
    args = ["train", "--config", str(TINY), "--output", str(tmp_path / "r"), "--fold", "3"] + [
        a for s in QUICK + ["logging_steps=2"] for a in ("--set", s)
    ]
    crashed = cli_killed_after(20, *args)  # epoch 7 of 12 (3 steps an epoch)
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    assert [p.name for p in (tmp_path / "r" / "checkpoints").glob("epoch-*")] == ["epoch-6"]
    assert not (tmp_path / "r" / "config.json").exists()
    resumed = cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout[resumed.stdout.index("{") :]) == metrics
    a, b = load_file(out / "model.safetensors"), load_file(tmp_path / "r" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["epoch"] for r in rows(tmp_path / "r")] == list(range(1, 13))
    assert not (tmp_path / "r" / "checkpoints").exists()  # the run finished: its checkpoints went
    assert f"```bash\n{shlex.join(['arner', *args, '--resume'])}\n```" in (tmp_path / "r" / "README.md").read_text()  # its command
    again = cli(*args, "--resume")  # a finished run: nothing to resume, the same metrics, no training
    assert again.returncode == 0 and "nothing to resume" in again.stderr and "epoch 1/12" not in again.stderr, again.stderr[-2000:]
    assert json.loads(again.stdout[again.stdout.index("{") :]) == metrics
    # the console: each resumed epoch's loss and held-out score as log.jsonl has them, then where the model went
    lines = resumed.stderr.splitlines()
    epoch12 = rows(tmp_path / "r")[-1]
    assert f"epoch 12/12: training loss {epoch12['loss']:.4f}; held-out strict_f1 {epoch12['heldout']['strict_f1']:.4f}" in lines
    assert lines[-1].startswith(f"wrote the model to {tmp_path / 'r'}; next: arner predict --model {tmp_path / 'r'}")


def test_checkpoints_are_kept_when_asked_and_a_finished_run_then_continues_from_them(tmp_path):
    out = tmp_path / "kept"
    first = train(load_config(TINY, ["epochs=2", "progress_bar=false", "keep_checkpoints_after_training=true"]), out)
    assert [p.name for p in (out / "checkpoints").glob("epoch-*")] == ["epoch-2"] and (out / "checkpoints" / "base-model").is_dir()
    assert (out / "README.md").is_file()
    # more epochs from the kept checkpoint (a changed config, so not "nothing to resume"); this time they go
    more = train(load_config(TINY, ["epochs=3", "progress_bar=false"]), out, resume=True)
    assert more["epochs_run"] == 3 and more["global_step"] == first["global_step"] * 3 // 2
    assert [r["epoch"] for r in rows(out)] == [1, 2, 3] and not (out / "checkpoints").exists()


def test_early_stopping_on_the_heldout_article(tmp_path):
    metrics = train(load_config(TINY, ["epochs=30", "early_stopping_patience=1", "progress_bar=false"]), tmp_path / "es", fold=0)
    assert metrics["epochs_run"] < 30
    assert rows(tmp_path / "es")[-1].get("early_stop") is True


def test_two_processes_under_accelerate_launch(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    cmd += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m", "arner.cli", "train", "--config", str(TINY), "--output", str(out)]
    cmd += [a for s in ["epochs=2", "progress_bar=false"] for a in ("--set", s)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "model.safetensors").exists()
    # each process saw half of the batches
    n_windows_per_epoch = rows(out)[0]["step"]
    single = train(load_config(TINY, ["epochs=1", "progress_bar=false"]), tmp_path / "single")
    assert n_windows_per_epoch == pytest.approx(single["global_step"] / 2, abs=1)
