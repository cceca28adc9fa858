"""What a training run writes under its output folder: `log.jsonl`, epoch checkpoints, the model.

    output/log.jsonl                 one JSON row per logging step ("step") and per epoch ("epoch")
    output/checkpoints/epoch-N/      accelerate state + trainer_state.json, written whole or not at all
    output/checkpoints/best/         the best epoch's model, when the caller keeps it
    output/{config.json,...}         the final model and arner.json (`publish`)

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
from pathlib import Path

from arner.core import atomic
from arner.core.machine import git_commit, versions

STATE_FILE = "trainer_state.json"
LOG_FILE = "log.jsonl"
META_FILE = "arner.json"


class LogError(ValueError):
    """A row of log.jsonl that is not a log row: the message names the file and line."""


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be restored: the message names the folder."""


def prepare_output(accelerator, output: Path, resume: bool) -> Path:
    """`output/checkpoints`, emptied (with the log) unless resuming."""
    checkpoints = output / "checkpoints"
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        if not resume:
            shutil.rmtree(checkpoints, ignore_errors=True)
            (output / LOG_FILE).unlink(missing_ok=True)
        checkpoints.mkdir(exist_ok=True)
    accelerator.wait_for_everyone()
    return checkpoints


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


def publish(model, tokenizer, output: Path, meta: dict, max_length: int) -> None:
    """Write the model files (`model.save_pretrained`) and arner.json into `output`, each file or folder renamed into place.

    The previous run's arner.json goes first and the new one comes last: a folder with arner.json holds
    the model it describes, even if publishing was cut short.
    """
    staging = output / ".final.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    model.save_pretrained(str(staging), safe_serialization=True)
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(str(staging))
    meta = {**meta, "git_commit": git_commit(), "versions": versions(), "device": str(next(model.parameters()).device)}
    (staging / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    (output / META_FILE).unlink(missing_ok=True)
    for f in sorted(staging.iterdir(), key=lambda f: f.name == META_FILE):
        if f.is_dir() and (output / f.name).is_dir():
            shutil.rmtree(output / f.name)
        os.replace(f, output / f.name)
    staging.rmdir()
