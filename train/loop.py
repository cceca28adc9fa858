"""The training loop shared by `arner train` (token classification) and `arner pretrain` (MLM).

Plain accelerate, in the spirit of the transformers `*_no_trainer.py` examples: device placement,
mixed precision, several processes; gradient accumulation and clipping; a progress bar. `fit` is
the driver, as spaCy's `train_while_improving`: epochs, held-out scoring and early stopping, a log
row and an atomic checkpoint at every epoch end, resume. `train_epoch` is the step loop; a loss or
weights turned NaN or inf stop it (`TrainingDiverged`) before anything is logged, saved or published. The pieces
around it: `batches` (length-grouped batches in a (seed, epoch) order), `optim` (AdamW, warmup then
linear decay), `checkpoints` (log.jsonl, checkpoints, model files; re-exported here), `tracking`
(`report_to`: accelerate's trackers, TensorBoard, beside log.jsonl).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from arner.train import tracking
from arner.train.batches import EpochBatches
from arner.train.checkpoints import (
    RunLog,
    finish_output,
    finished_run,
    last_checkpoint,
    load_checkpoint,
    prepare_output,
    publish,
    read_log,
    save_checkpoint,
    save_model,
)
from arner.train.config import LoopConfig
from arner.train.optim import make_optimizer, make_scheduler, planned_steps

__all__ = [
    "EpochBatches",
    "Training",
    "TrainingDiverged",
    "finish_output",
    "finished_run",
    "fit",
    "last_checkpoint",
    "make_accelerator",
    "mixed_precision",
    "prepare_output",
    "publish",
    "read_log",
    "save_model",
    "train_epoch",
]


class TrainingDiverged(ValueError):
    """The training loss or the weights turned NaN or inf: the run stops, and nothing is published."""


def mixed_precision(config: LoopConfig) -> str:
    if config.mixed_precision != "auto":
        return config.mixed_precision
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def make_accelerator(config: LoopConfig, output: Path | None = None, where: str = "config"):
    """The run's Accelerator; with `report_to`, its trackers write under `output/logs` (a missing tracker package is a ConfigError)."""
    import transformers
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    tracking.check_available(config, where)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=mixed_precision(config),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        **tracking.accelerator_options(config, output),
    )
    set_seed(config.seed)
    return accelerator


@dataclass
class Training:
    """One run's prepared objects and counters: what `fit` and `train_epoch` share."""

    accelerator: Any
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loader: Any
    sampler: EpochBatches
    config: LoopConfig
    total_steps: int  # optimizer steps planned for the run: the schedule's length, and the max_steps cut
    state: dict  # the counters saved in each checkpoint and returned by `fit`
    checkpoints: Path
    log: RunLog
    progress: Any  # a tqdm bar, disabled off the local main process or with progress_bar: false

    @property
    def done(self) -> bool:
        return self.state["global_step"] >= self.total_steps


def start(
    accelerator, model, features, collator, config: LoopConfig, output: Path, resume: bool, desc: str, lengths: Sequence[int] | None
) -> Training:
    """Batches, optimizer and schedule, prepared by accelerate; restored from the last checkpoint when resuming."""
    from tqdm.auto import tqdm

    lengths = lengths if lengths is not None else [len(f["input_ids"]) for f in features]
    sampler = EpochBatches(lengths, config.batch_size, config.seed, config.group_by_length)
    loader = torch.utils.data.DataLoader(features, batch_sampler=sampler, collate_fn=collator)
    optimizer = make_optimizer(model, config)
    total_steps = planned_steps(len(sampler), accelerator.num_processes, config)
    scheduler = make_scheduler(optimizer, config, total_steps)
    if config.torch_compile:
        model = torch.compile(model)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    # the schedule is not prepared (accelerate would step it once per process): its steps already count per process
    accelerator.register_for_checkpointing(scheduler)

    state = {"epoch": 0, "global_step": 0, "best_score": None, "best_epoch": None, "bad_epochs": 0, "history": []}
    checkpoints, log = output / "checkpoints", RunLog(output, accelerator.is_main_process)
    if resume:
        state = load_checkpoint(accelerator, checkpoints) or state
        log.truncate(state["global_step"])  # rows of the interrupted epoch go: it runs again
    tracking.start(accelerator, config, desc, state["global_step"] if resume else None)
    show = config.progress_bar and accelerator.is_local_main_process
    progress = tqdm(total=total_steps, initial=state["global_step"], disable=not show, desc=desc)
    return Training(accelerator, model, optimizer, scheduler, loader, sampler, config, total_steps, state, checkpoints, log, progress)


def fit(
    accelerator,
    model,
    features: Sequence[dict],
    collator,
    config: LoopConfig,
    output: Path,
    resume: bool = False,
    evaluate: Callable[[torch.nn.Module], dict] | None = None,
    score_key: str | None = None,
    on_improve: Callable[[torch.nn.Module], None] | None = None,
    desc: str = "train",
    lengths: Sequence[int] | None = None,
) -> tuple[torch.nn.Module, dict]:
    """Train `model` on `features` for `config.epochs`; returns the unwrapped model and the loop state.

    `evaluate(model)` runs on the main process after each epoch and its dict goes into the
    epoch's log row; `score_key` names the number in it that early stopping and `on_improve`
    follow (higher is better). `features` is any map-style sequence (a list, or a dataset reading
    from disk); `lengths` gives their lengths when reading every feature just to measure it is wasteful.
    """
    t = start(accelerator, model, features, collator, config, output, resume, desc, lengths)
    try:
        for epoch in range(t.state["epoch"], config.epochs):
            if t.done:  # max_steps reached in an earlier (cut) epoch
                break
            row = train_epoch(t, epoch)
            stop, improved = judge(t, row, evaluate, score_key)
            t.state["epoch"] = epoch + 1
            t.state["history"].append(row)
            t.log.write(row)
            tracking.log_epoch(accelerator, config, row)
            if accelerator.is_main_process:
                t.progress.write(epoch_line(row, config.epochs, score_key), file=sys.stderr)
            save_checkpoint(accelerator, t.checkpoints, t.state, config.keep_checkpoints)
            if improved and on_improve is not None and accelerator.is_main_process:
                on_improve(accelerator.unwrap_model(t.model))
            accelerator.wait_for_everyone()
            if stop:
                break
    finally:
        t.progress.close()
        tracking.finish(accelerator)
    return accelerator.unwrap_model(t.model), t.state


def epoch_line(row: dict, epochs: int, score_key: str | None) -> str:
    """The console line of an epoch: its training loss and held-out score, as `log.jsonl` has them."""
    line = f"epoch {row['epoch']}/{epochs}: training loss {row['loss']:.4f}"
    held = row.get("heldout") or {}
    keys = [score_key] if score_key in held else [k for k, v in held.items() if isinstance(v, float)][:3]
    if keys:
        line += "; held-out " + ", ".join(f"{k} {held[k]:.4f}" for k in keys)
    return line


def judge(t: Training, row: dict, evaluate: Callable | None, score_key: str | None) -> tuple[bool, bool]:
    """Score the epoch into `row` (main process) and track the best score: (stop early, improved), alike on every process."""
    from accelerate.utils import broadcast_object_list

    stop = improved = False
    if evaluate is not None and t.accelerator.is_main_process:
        row["heldout"] = evaluate(t.accelerator.unwrap_model(t.model))
        if score_key is not None:
            score, state = row["heldout"][score_key], t.state
            improved = state["best_score"] is None or score > state["best_score"]
            if improved:
                state.update(best_score=score, best_epoch=row["epoch"], bad_epochs=0)
            else:
                state["bad_epochs"] += 1
            patience = t.config.early_stopping_patience
            stop = bool(patience) and state["bad_epochs"] >= patience
            if stop:
                row["early_stop"] = True
    stop, improved = broadcast_object_list([stop, improved])
    return stop, improved


class EpochMeter:
    """Loss and token sums of one epoch, kept on the device.

    Reading a sum (`.item()`) makes the host wait for the GPU, so they are read only at logging steps
    and at the epoch end; a logging window's sums are the epoch sums less their values at the previous
    logging step.
    """

    def __init__(self, device):
        zero = torch.zeros((), dtype=torch.float64, device=device)
        self.loss, self.tokens, self.batches, self.start = zero.clone(), zero.clone(), 0, time.perf_counter()
        self.mark()

    def add(self, loss: torch.Tensor, attention_mask: torch.Tensor) -> None:
        self.loss += loss.detach().double()
        self.tokens += attention_mask.sum()  # real (non-padding) tokens
        self.batches += 1

    def window(self) -> tuple[float, float, int, float]:
        """(loss sum, tokens, optimizer steps, seconds) since the previous call; a new window starts."""
        elapsed = time.perf_counter() - self.window_start
        loss, tokens, steps = (self.loss - self.mark_loss).item(), (self.tokens - self.mark_tokens).item(), self.window_steps
        self.mark()
        return loss, tokens, steps, elapsed

    def mark(self) -> None:
        """Start a logging window here."""
        self.mark_loss, self.mark_tokens = self.loss.clone(), self.tokens.clone()
        self.window_steps, self.window_start = 0, time.perf_counter()


def train_epoch(t: Training, epoch: int) -> dict:
    """One pass over the batches (cut short once `total_steps` are done); returns the epoch's log row."""
    accelerator, model, config = t.accelerator, t.model, t.config
    t.loader.set_epoch(epoch)  # accelerate passes its own epoch count to the sampler on every pass
    t.sampler.set_epoch(epoch)
    model.train()
    meter = EpochMeter(accelerator.device)
    for batch in t.loader:
        with accelerator.accumulate(model):
            outputs = model(**batch)
            accelerator.backward(outputs.loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            t.optimizer.step()  # accelerate skips it between accumulation boundaries
            if accelerator.sync_gradients:
                t.scheduler.step()
            t.optimizer.zero_grad()
        meter.add(outputs.loss, batch["attention_mask"])
        if not accelerator.sync_gradients:
            continue
        t.state["global_step"] += 1
        meter.window_steps += 1
        t.progress.update(1)
        if t.state["global_step"] % config.logging_steps == 0:
            check_finite(t, epoch, meter, weights=False)
            row = step_row(t, epoch, meter)
            t.log.write(row)
            tracking.log_step(accelerator, config, row)
        if t.done:  # max_steps: this epoch ends here, checkpointed like any other
            break
    check_finite(t, epoch, meter, weights=True)
    return epoch_row(t, epoch, meter)


def check_finite(t: Training, epoch: int, meter: EpochMeter, weights: bool) -> None:
    """Raise TrainingDiverged if the epoch's loss sum (or, at its end, a weight) is NaN or inf on any process.

    Called where the sums are read anyway (logging steps, epoch end), so it adds no host sync to the
    steps between. The loss sum stays NaN or inf once one batch's loss is; the weights are checked too
    at the epoch end, as an update can break them after the last loss was computed. The flags are
    reduced over the processes so that all of them stop together. Under fp16 the loss scaler skips a
    step whose batch overflowed and training goes on, so there only the weights count.
    """
    fp16 = t.accelerator.mixed_precision == "fp16"
    if fp16 and not weights:
        return
    flags = [torch.zeros((), dtype=torch.bool, device=meter.loss.device) if fp16 else ~torch.isfinite(meter.loss)]
    if weights:
        flags.append(~torch.stack([torch.isfinite(p).all() for p in t.model.parameters()]).all())
    bad_loss, *bad_weights = t.accelerator.reduce(torch.stack(flags).float(), "sum").tolist()
    if not (bad_loss or any(bad_weights)):
        return
    what = "the training loss" if bad_loss else "the weights"
    kept = f" (the checkpoint of epoch {t.state['epoch']} is kept)" if t.state["epoch"] else ""
    raise TrainingDiverged(
        f"training diverged: {what} turned NaN or inf by step {t.state['global_step']} (epoch {epoch + 1}); "
        f"nothing was published to {t.log.output}{kept}. "
        "Lower learning_rate or raise warmup_ratio, or train with mixed_precision bf16 or no rather than fp16"
    )


def step_row(t: Training, epoch: int, meter: EpochMeter) -> dict:
    """The log row of a logging step: mean loss per batch and tokens per second over the window since the last one."""
    loss, tokens, steps, seconds = meter.window()
    row = {
        "type": "step",
        "epoch": epoch + 1,
        "step": t.state["global_step"],
        "loss": loss / max(1, steps * t.config.gradient_accumulation_steps),
        "learning_rate": t.scheduler.get_last_lr()[0],
        "tokens_per_second": tokens * t.accelerator.num_processes / max(seconds, 1e-9),
    }
    t.progress.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{row['tokens_per_second']:.0f}")
    return row


def epoch_row(t: Training, epoch: int, meter: EpochMeter) -> dict:
    """The log row of an epoch (held-out scores are added by `judge`)."""
    elapsed = time.perf_counter() - meter.start
    processes = t.accelerator.num_processes
    row = {
        "type": "epoch",
        "epoch": epoch + 1,
        "step": t.state["global_step"],
        "loss": meter.loss.item() / max(1, meter.batches),
        "learning_rate": t.scheduler.get_last_lr()[0],
        "tokens_per_second": meter.tokens.item() * processes / max(elapsed, 1e-9),
        "tokens": round(meter.tokens.item() * processes),  # real (non-padding) tokens trained on
        "seconds": elapsed,
    }
    if t.done and epoch + 1 < t.config.epochs:
        row["max_steps_reached"] = True
    return row
