"""`report_to: [tensorboard]`: accelerate's TensorBoard tracker beside log.jsonl, in OUTPUT/logs; a clear error without the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arner.train import tracking
from arner.train.config import load_config

from conftest import ANNOTATIONS, REPO

TINY = REPO / "configs" / "tiny.yaml"
PRETRAIN = REPO / "configs" / "pretrain-tiny.yaml"
QUICK = ["progress_bar=false", f"annotations={ANNOTATIONS}", "logging_steps=2", "report_to=[tensorboard]"]


def arner(*args: str, env: dict | None = None, crash_after: int | None = None) -> subprocess.CompletedProcess:
    prefix = (
        [sys.executable, str(REPO / "tests" / "crash_after.py"), str(crash_after), "--"]
        if crash_after
        else [sys.executable, "-m", "arner.cli"]
    )
    return subprocess.run([*prefix, *args], capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})})


def train_args(out: Path, *sets: str) -> list[str]:
    return ["train", "--config", str(TINY), "--output", str(out), "--fold", "0"] + [a for s in [*QUICK, *sets] for a in ("--set", s)]


def scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def log_rows(out: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (out / "log.jsonl").read_text(encoding="utf-8").splitlines()) if r["type"] == kind]


def test_log_rows_become_named_scalars():
    row = {"type": "epoch", "epoch": 2, "step": 6, "loss": 0.5, "early_stop": True, "heldout": {"strict_f1": 0.25, "bootstrap": {"x": 1}}}
    assert tracking.scalars(row, "epoch") == {"epoch/epoch": 2.0, "epoch/loss": 0.5, "heldout/strict_f1": 0.25}


@pytest.mark.slow
def test_tensorboard_gets_the_losses_and_heldout_scores_of_log_jsonl_and_a_resumed_run_logs_each_step_once(tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    # 3 steps an epoch: killed at step 9, after step 8 was logged, before epoch 3 ended; the checkpoint is epoch 2's (step 6)
    crashed = arner(*train_args(out, "epochs=4"), crash_after=9)
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    resumed = arner(*train_args(out, "epochs=4"), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    found = scalars(out / "logs" / "train")
    steps, epochs = log_rows(out, "step"), log_rows(out, "epoch")
    # every logging step once, in order (step 8 of the killed epoch was purged when the epoch ran again), with log.jsonl's values
    assert found["train/loss"] == [(r["step"], pytest.approx(r["loss"], rel=1e-6)) for r in steps]
    assert [s for s, _ in found["train/learning_rate"]] == [r["step"] for r in steps] == [2, 4, 6, 8, 10, 12]
    assert found["heldout/strict_f1"] == [(r["step"], pytest.approx(r["heldout"]["strict_f1"], abs=1e-6)) for r in epochs]
    assert [s for s, _ in found["epoch/loss"]] == [3, 6, 9, 12]
    # log.jsonl stays, the card is written, the checkpoints went: logs/ is the one addition to the folder
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "arner.json", "config.json", "log.jsonl", "logs", "model.safetensors", "tokenizer.json", "tokenizer_config.json"
    ]  # fmt: skip


@pytest.mark.slow
def test_pretraining_reports_to_tensorboard_too(tmp_path):
    pytest.importorskip("tensorboard")
    from arner.train.config import PretrainConfig
    from arner.train.pretrain import pretrain

    text = tmp_path / "text.txt"
    text.write_text("\n".join(p.read_text(encoding="utf-8") for p in sorted((ANNOTATIONS / "articles").glob("*.txt"))), encoding="utf-8")
    sets = [
        "epochs=2",
        "heldout_sequences=4",
        "tokenizer.vocab_size=500",
        "logging_steps=1",
        "progress_bar=false",
        "report_to=[tensorboard]",
    ]
    pretrain(load_config(PRETRAIN, sets, cls=PretrainConfig), [text], tmp_path / "p")
    found = scalars(tmp_path / "p" / "logs" / "pretrain")
    assert [s for s, _ in found["train/loss"]] == [r["step"] for r in log_rows(tmp_path / "p", "step")]
    assert [v for _, v in found["heldout/mlm_loss"]] == pytest.approx([r["heldout"]["mlm_loss"] for r in log_rows(tmp_path / "p", "epoch")])


BLOCKED = "raise ImportError('tensorboard is blocked for this test')\n"


@pytest.mark.parametrize("command", ["train", "pretrain"])
def test_without_the_tensorboard_package_the_run_stops_with_one_line_naming_the_key(tmp_path, command):
    blocker = tmp_path / "blocked"
    for name in ("tensorboard", "tensorboardX"):  # what accelerate's tracker imports
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(BLOCKED)
    config = TINY if command == "train" else PRETRAIN
    out = tmp_path / "out"
    text = ["--text", str(next((ANNOTATIONS / "articles").glob("*.txt")))] if command == "pretrain" else []
    args = [command, "--config", str(config), "--output", str(out), *text, "--set", "report_to=[tensorboard]"]
    result = arner(*args, env={"PYTHONPATH": str(blocker)})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert line == (
        f"error: {config}: report_to: [tensorboard] needs the tensorboard package, which is not installed: "
        "pip install tensorboard (or pip install 'arner[tensorboard]')"
    )
    assert not out.exists()  # refused before the output folder is touched
