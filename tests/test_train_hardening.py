"""Training refuses what it cannot do well, with one clear error and nothing published.

A loss that turns NaN or inf, an annotation folder with nothing to train on, windows longer than
the model has positions for, a log torn by a crash, a corrupt checkpoint folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from arner.train.checkpoints import LOG_FILE, STATE_FILE, LogError, RunLog, read_log
from arner.train.config import TinyModel, load_config
from arner.train.finetune import train
from arner.train.model import build_tiny, check_positions

from conftest import ANNOTATIONS, REPO, TEXT, span, write_folder

TINY = REPO / "configs" / "tiny.yaml"
QUICK = ["progress_bar=false", f"annotations={ANNOTATIONS}"]

# `arner ...` with every parameter filled with NaN right after optimizer step N: a diverged update, injected
# from outside the loop as tests/crash_after.py injects a crash (the global hook sees the unwrapped optimizer)
POISON = """
import sys, torch
from torch.optim.optimizer import register_optimizer_step_post_hook
at, calls = int(sys.argv[1]), [0]
def poison(optimizer, args, kwargs):
    calls[0] += 1
    if calls[0] == at:
        with torch.no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.fill_(float("nan"))
register_optimizer_step_post_hook(poison)
from arner.cli import main
sys.argv = ["arner", *sys.argv[2:]]
main()
"""


def arner(*args: str, poison_at: int | None = None) -> subprocess.CompletedProcess:
    prefix = [sys.executable, "-c", POISON, str(poison_at)] if poison_at else [sys.executable, "-m", "arner.cli"]
    return subprocess.run([*prefix, *args], capture_output=True, text=True, cwd=REPO, env={**os.environ})


def train_args(out: Path, *sets: str, fold: str | None = "0") -> list[str]:
    args = ["train", "--config", str(TINY), "--output", str(out)] + (["--fold", fold] if fold is not None else [])
    return args + [a for s in [*QUICK, *sets] for a in ("--set", s)]


def one_error(result: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a run that failed as a usage error (exit 2, no traceback)."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def nothing_published(out: Path) -> bool:
    return not any((out / name).exists() for name in ("model.safetensors", "config.json", "arner.json", "tokenizer.json"))


# -- 1. a loss that turns NaN or inf ---------------------------------------------------------


@pytest.mark.slow
def test_a_nan_loss_stops_the_run_at_the_logging_step(tmp_path):
    out = tmp_path / "run"
    result = arner(*train_args(out, "epochs=3", "logging_steps=1"), poison_at=4)  # 3 steps an epoch: epoch 2
    line = one_error(result)
    assert "diverged" in line and "step 5" in line and "epoch 2" in line and str(out) in line
    assert nothing_published(out)
    # the last checkpoint is the last finite epoch, and the log holds only finite rows
    assert [p.name for p in (out / "checkpoints").glob("epoch-*")] == ["epoch-1"]
    assert all(r["step"] <= 4 for r in read_log(out))


@pytest.mark.slow
def test_nan_weights_after_the_last_step_are_not_published_and_the_previous_model_stays_whole(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    previous = {"model.safetensors": b"previous weights", "config.json": b"{}", "arner.json": b'{"fold": 1}'}
    for name, data in previous.items():
        (out / name).write_bytes(data)
    result = arner(*train_args(out, "epochs=2"), poison_at=6)  # the last update: no later loss sees the NaN
    line = one_error(result)
    assert "diverged" in line and "epoch 2" in line and str(out) in line
    assert {name: (out / name).read_bytes() for name in previous} == previous
    assert not (out / ".final.tmp").exists()


# -- 2. nothing to train on ------------------------------------------------------------------


@pytest.mark.slow
def test_an_empty_annotation_folder_is_refused_before_any_work(tmp_path):
    folder = write_folder(tmp_path / "empty", {})
    out = tmp_path / "run"
    line = one_error(arner(*train_args(out, f"annotations={folder}", fold=None)))
    assert f"no training documents in {folder}" in line
    assert not out.exists()


@pytest.mark.slow
def test_one_document_held_out_leaves_none_to_train_on(tmp_path):
    folder = write_folder(tmp_path / "one", {"doc1": (TEXT, [span(TEXT, "موسكو", "PLACE")])})
    out = tmp_path / "run"
    line = one_error(arner(*train_args(out, f"annotations={folder}", fold="0")))
    assert f"no training documents in {folder}" in line and "fold 0" in line
    assert not out.exists()


@pytest.mark.slow
def test_documents_without_words_give_no_training_windows(tmp_path):
    folder = write_folder(tmp_path / "blank", {"a": ("", []), "b": ("... !! ،", [])})
    out = tmp_path / "run"
    line = one_error(arner(*train_args(out, f"annotations={folder}", fold=None)))
    assert "no training windows" in line and str(folder) in line
    assert nothing_published(out)


# -- 3. windows longer than the model's positions --------------------------------------------


@pytest.fixture(scope="module")
def short_model(tmp_path_factory) -> Path:
    """A local model folder with 64 positions."""
    texts = [(ANNOTATIONS / "articles" / "001_098cab9d7c7d513a.txt").read_text(encoding="utf-8")]
    return build_tiny(texts, TinyModel(max_position_embeddings=64, vocab_size=500), tmp_path_factory.mktemp("short") / "model", seed=0)


@pytest.mark.slow
def test_max_length_beyond_the_model_positions_is_refused_before_training(tmp_path, short_model):
    out = tmp_path / "run"
    line = one_error(arner(*train_args(out, f"model={short_model}", "max_length=128")))
    assert "max_length" in line and "128" in line and str(TINY) in line
    assert "max_position_embeddings" in line and "64" in line and str(short_model / "config.json") in line
    assert not out.exists()


def test_check_positions_counts_the_offset_of_roberta_models(tmp_path):
    from transformers import BertConfig, XLMRobertaConfig

    BertConfig(max_position_embeddings=64).save_pretrained(tmp_path / "bert")
    XLMRobertaConfig(max_position_embeddings=66, pad_token_id=1).save_pretrained(tmp_path / "xlmr")  # 64 usable
    check_positions(str(tmp_path / "bert"), 64, "c.yaml")
    check_positions(str(tmp_path / "xlmr"), 64, "c.yaml")
    for folder in ("bert", "xlmr"):
        with pytest.raises(ValueError, match=r"c\.yaml: max_length 65 .*64"):
            check_positions(str(tmp_path / folder), 65, "c.yaml")


# -- 4. a log torn by a crash ----------------------------------------------------------------


def write_log(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOG_FILE).write_text("".join(lines), encoding="utf-8")
    return folder / LOG_FILE


ROWS = [json.dumps({"type": "step", "epoch": 1, "step": s, "loss": 1.0}) + "\n" for s in (1, 2, 3)]


def test_read_log_names_the_file_and_line_of_a_bad_row(tmp_path):
    path = write_log(tmp_path, [ROWS[0], '{"type": "step", "ep\n', ROWS[2]])
    with pytest.raises(LogError, match=re.escape(f"{path}: line 2: ")):
        read_log(tmp_path)
    with pytest.raises(LogError, match=re.escape(f"{path}: line 2: ")):  # torn in the middle is no crash: resuming refuses it too
        RunLog(tmp_path, True).truncate(3)
    write_log(tmp_path, [ROWS[0], "[1, 2]\n"])
    with pytest.raises(LogError, match=re.escape(f"{path}: line 2: ")):
        read_log(tmp_path)


def test_a_torn_last_row_is_an_error_to_readers_and_dropped_on_resume(tmp_path):
    path = write_log(tmp_path, [*ROWS, '{"type": "epoch", "epo'])
    with pytest.raises(LogError, match=re.escape(f"{path}: line 4: ")):
        read_log(tmp_path)
    RunLog(tmp_path, True).truncate(2)
    assert [r["step"] for r in read_log(tmp_path)] == [1, 2]


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory) -> Path:
    """A finished 2-epoch run with its epoch checkpoint (kept on purpose); tests copy it before changing it."""
    out = tmp_path_factory.mktemp("two") / "run"
    train(load_config(TINY, [*QUICK, "epochs=2", "keep_checkpoints_after_training=true"]), out, fold=0)
    return out


def copy_run(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


@pytest.mark.slow
def test_resume_after_a_torn_log_line(two_epochs, tmp_path):
    out = copy_run(two_epochs, tmp_path)
    with (out / LOG_FILE).open("a", encoding="utf-8") as f:
        f.write('{"type": "step", "epoch": 3, "st')
    result = arner(*train_args(out, "epochs=3"), "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["epoch"] for r in read_log(out, "epoch")] == [1, 2, 3]


# -- 5. a corrupt checkpoint folder ----------------------------------------------------------


@pytest.mark.slow
def test_resume_from_a_checkpoint_without_its_state_names_the_folder(two_epochs, tmp_path):
    out = copy_run(two_epochs, tmp_path)
    (out / "checkpoints" / "epoch-2" / STATE_FILE).unlink()
    line = one_error(arner(*train_args(out, "epochs=3"), "--resume"))
    assert str(out / "checkpoints" / "epoch-2") in line and STATE_FILE in line


def not_json(ckpt: Path) -> None:
    (ckpt / STATE_FILE).write_text('{"epoch": 2, "glob', encoding="utf-8")


def no_counters(ckpt: Path) -> None:
    (ckpt / STATE_FILE).write_text('{"epoch": 2}', encoding="utf-8")


def torn_weights(ckpt: Path) -> None:
    weights = next(ckpt.glob("model*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])


def no_weights(ckpt: Path) -> None:
    next(ckpt.glob("model*.safetensors")).unlink()


@pytest.mark.slow
@pytest.mark.parametrize("damage", [not_json, no_counters, torn_weights, no_weights])
def test_resume_from_a_corrupt_checkpoint_names_the_folder(two_epochs, tmp_path, damage):
    out = copy_run(two_epochs, tmp_path)
    ckpt = out / "checkpoints" / "epoch-2"
    damage(ckpt)
    with pytest.raises(ValueError, match="checkpoint") as caught:
        train(load_config(TINY, [*QUICK, "epochs=3"]), out, fold=0, resume=True)
    assert str(ckpt) in str(caught.value)
    assert (out / "model.safetensors").read_bytes() == (two_epochs / "model.safetensors").read_bytes()  # the finished run's, untouched
