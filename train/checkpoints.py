"""What a training run writes under its output folder: `log.jsonl`, epoch checkpoints, the model.

    output/log.jsonl                 one JSON row per logging step ("step") and per epoch ("epoch")
    output/logs/                     TensorBoard event files, with `report_to: [tensorboard]` (tracking.py)
    output/checkpoints/epoch-N/      accelerate state + trainer_state.json, written whole or not at all
    output/checkpoints/best/         the best epoch's model, when the caller keeps it
    output/{config.json,...}         the final model, its card (README.md) and arner.json (`publish`)

`checkpoints/` is removed once the model is published (`finish_output`), unless the config keeps it
(`keep_checkpoints_after_training`), so a finished folder is a model repository ready to upload as is; a
run that did not finish keeps it for `--resume`, and resuming a finished run finds its arner.json (`finished_run`).
Every file is renamed into place, so a run killed at any moment leaves the last complete checkpoint.
Only the main process writes; the others wait at the barriers. What a crash can leave behind is
read back with a clear error naming the file (`LogError`, `CheckpointError`), never a traceback; the
one expected leftover, a log row torn while it was appended, is dropped when the run resumes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from arner.core import atomic
from arner.core.machine import git_commit, versions

STATE_FILE = "trainer_state.json"
LOG_FILE = "log.jsonl"
META_FILE = "arner.json"
CARD_FILE = "README.md"
CHECKPOINTS_DIR = "checkpoints"
LOGS_DIR = "logs"  # where tracking.py has the trackers write
# config keys that change what a run shows or keeps, not the model it makes: a finished run is the same run without them
PRESENTATION_KEYS = ("progress_bar", "report_to", "keep_checkpoints", "keep_checkpoints_after_training")


class LogError(ValueError):
    """A row of log.jsonl that is not a log row: the message names the file and line."""


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be restored: the message names the folder."""


def prepare_output(accelerator, output: Path, resume: bool) -> Path:
    """`output/checkpoints`, emptied (with the log and the tracker logs) unless resuming."""
    checkpoints = output / CHECKPOINTS_DIR
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        if not resume:
            shutil.rmtree(checkpoints, ignore_errors=True)
            shutil.rmtree(output / LOGS_DIR, ignore_errors=True)  # a previous run's curves would be read as this one's
            (output / LOG_FILE).unlink(missing_ok=True)
        elif last_checkpoint(checkpoints) is None and (output / META_FILE).is_file():
            print(
                f"no checkpoint in {checkpoints} to resume from (a finished run removes them unless "
                "keep_checkpoints_after_training: true): training from the start",
                file=sys.stderr,
            )
        checkpoints.mkdir(exist_ok=True)
    accelerator.wait_for_everyone()
    return checkpoints


def finish_output(accelerator, output: Path, keep_checkpoints: bool) -> None:
    """After publishing: remove `output/checkpoints` (epoch states, the tiny base model, the best epoch) unless kept.

    The folder is then what a model repository holds; `--resume` of the finished run finds its arner.json instead.
    """
    if accelerator.is_main_process and not keep_checkpoints:
        shutil.rmtree(output / CHECKPOINTS_DIR, ignore_errors=True)
    accelerator.wait_for_everyone()


def comparable(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in PRESENTATION_KEYS}


def finished_run(output: Path, config: dict, **identity) -> dict | None:
    """The arner.json of a finished run in `output` with this config (presentation keys aside) and these `identity` values, if any.

    What `--resume` of a finished run returns when its checkpoints are gone: there is nothing left to train.
    """
    if last_checkpoint(output / CHECKPOINTS_DIR) is not None:  # a checkpoint to resume from: the loop decides
        return None
    try:
        meta = json.loads((output / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not (isinstance(meta, dict) and isinstance(meta.get("config"), dict) and isinstance(meta.get("metrics"), dict)):
        return None
    if comparable(meta["config"]) != comparable(config) or any(meta.get(k) != v for k, v in identity.items()):
        return None
    return meta


# -- log -------------------------------------------------------------------------------------


def read_log(output: Path, type: str | None = None, *, drop_torn_last: bool = False) -> list[dict]:
    """The rows of `output/log.jsonl` (those of one `type`, "step" or "epoch", when given).

    A line that is not a row is a LogError naming the file and line. With `drop_torn_last`, a bad
    last line is dropped instead: it is what a crash while appending leaves (resuming rewrites the rows).
    """
    path = Path(output) / LOG_FILE
    lines = path.read_bytes().split(b"\n")  # bytes: a torn line may end inside a character
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    rows = []
    for i, line in enumerate(lines[: last + 1]):
        if not line.strip():
            continue
        try:
            rows.append(log_row(line, f"{path}: line {i + 1}"))
        except LogError:
            if drop_torn_last and i == last:
                break
            raise
    return rows if type is None else [r for r in rows if r["type"] == type]


def log_row(line: bytes, where: str) -> dict:
    """One parsed row: a JSON object with a `type` and an integer `step`, as `RunLog` writes them."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise LogError(f"{where}: not JSON ({e.msg}, column {e.colno})") from None
    except (ValueError, RecursionError) as e:  # not UTF-8, nested too deep, a number too long
        raise LogError(f"{where}: not JSON ({type(e).__name__})") from None
    if not (isinstance(row, dict) and isinstance(row.get("type"), str) and isinstance(row.get("step"), int)):
        raise LogError(f"{where}: not a log row (a JSON object with a type and an integer step)")
    return row


class RunLog:
    """`output/log.jsonl` as the loop writes it: rows appended by the main process, a no-op elsewhere."""

    def __init__(self, output: Path, main_process: bool):
        self.output, self.path, self.main = output, output / LOG_FILE, main_process

    def write(self, row: dict) -> None:
        if self.main:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    def truncate(self, step: int) -> None:
        """Keep the rows up to optimizer step `step`: a resumed run drops those of the epoch it repeats."""
        if self.main and self.path.exists():
            rows = [r for r in read_log(self.output, drop_torn_last=True) if r["step"] <= step]
            atomic.write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))


# -- checkpoints -----------------------------------------------------------------------------


def epoch_checkpoints(checkpoints: Path) -> list[Path]:
    """The `epoch-N` folders under `checkpoints`, oldest first (any other name is not one of ours)."""
    found = [p for p in checkpoints.glob("epoch-*") if p.name[6:].isascii() and p.name[6:].isdigit() and p.is_dir()]
    return sorted(found, key=lambda p: int(p.name[6:]))


def last_checkpoint(checkpoints: Path) -> Path | None:
    done = epoch_checkpoints(checkpoints)
    return done[-1] if done else None


def save_checkpoint(accelerator, checkpoints: Path, state: dict, keep: int) -> None:
    """Accelerate state (model, optimizer, scheduler, RNG) + our counters, written to a temp dir then renamed.

    The `keep` newest checkpoints stay; older ones go once the new one is in place.
    """
    name = f"epoch-{state['epoch']}"
    tmp = checkpoints / f".{name}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))
        os.replace(tmp, checkpoints / name)
        for old in epoch_checkpoints(checkpoints)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def load_checkpoint(accelerator, checkpoints: Path) -> dict | None:
    """Restore the newest checkpoint into the prepared objects; its loop counters, or None when there is none."""
    ckpt = last_checkpoint(checkpoints)
    if ckpt is None:
        return None
    state = read_state(ckpt)  # first: the small file tells a torn folder before the weights are read
    try:
        accelerator.load_state(str(ckpt))
    except Exception as e:  # torn or missing weights, another model's shapes: whatever it is, this folder cannot be restored
        raise CheckpointError(broken(ckpt, f"{type(e).__name__}: {' '.join(str(e).split())[:300]}")) from e
    if accelerator.is_main_process:
        print(f"resumed from {ckpt} (epoch {state['epoch']})", file=sys.stderr)
    return state


STATE_TYPES = {"epoch": int, "global_step": int, "bad_epochs": int, "history": list}  # best_score, best_epoch may be null


def read_state(ckpt: Path) -> dict:
    """The loop counters of checkpoint folder `ckpt`, checked before anything is restored from it."""
    path = ckpt / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(broken(ckpt, f"{STATE_FILE} is missing")) from None
    except (OSError, ValueError, RecursionError) as e:
        raise CheckpointError(broken(ckpt, f"{STATE_FILE} is not readable JSON ({type(e).__name__})")) from None
    if not isinstance(state, dict):
        raise CheckpointError(broken(ckpt, f"{STATE_FILE} is not a JSON object"))
    wrong = [k for k, kind in STATE_TYPES.items() if not isinstance(state.get(k), kind)]
    wrong += [k for k in ("best_score", "best_epoch") if k not in state]
    if wrong:
        raise CheckpointError(broken(ckpt, f"{STATE_FILE} lacks valid {', '.join(wrong)}"))
    if state["epoch"] != int(ckpt.name[6:]):
        raise CheckpointError(broken(ckpt, f"{STATE_FILE} is of epoch {state['epoch']}"))
    return state


def broken(ckpt: Path, why: str) -> str:
    return (
        f"checkpoint {ckpt} cannot be restored: {why}. Delete that folder to resume from the checkpoint before it "
        "(if there is one), or train again without --resume"
    )


# -- model -----------------------------------------------------------------------------------


def save_model(model, tokenizer, out: Path) -> None:
    with atomic.directory(out) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))


def publish(model, tokenizer, output: Path, meta: dict, max_length: int, card: Callable[[dict], str] | None = None) -> None:
    """Write the model files (`model.save_pretrained`), the model card and arner.json into `output`, each renamed into place.

    `card(meta)` renders README.md from the record written to arner.json. The previous run's arner.json
    goes first and the new one comes last: a folder with arner.json holds the model it describes, even if
    publishing was cut short.
    """
    staging = output / ".final.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    model.save_pretrained(str(staging), safe_serialization=True)
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(str(staging))
    meta = {**meta, "git_commit": git_commit(), "versions": versions(), "device": str(next(model.parameters()).device)}
    (staging / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    if card is not None:
        (staging / CARD_FILE).write_text(card(meta), encoding="utf-8")
    (output / META_FILE).unlink(missing_ok=True)
    for f in sorted(staging.iterdir(), key=lambda f: f.name == META_FILE):
        if f.is_dir() and (output / f.name).is_dir():
            shutil.rmtree(output / f.name)
        os.replace(f, output / f.name)
    staging.rmdir()
