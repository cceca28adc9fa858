"""The training loop shared by `arner train` (token classification) and `arner pretrain` (MLM).

Plain accelerate, in the spirit of the transformers `*_no_trainer.py` examples: device
placement, mixed precision, several processes; AdamW (fused on GPU) with warmup then
linear decay; gradient accumulation and clipping; length-grouped, dynamically padded
batches; a progress bar; `log.jsonl`; an atomic checkpoint at every epoch end and resume.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from arner.core import atomic
from arner.core.machine import git_commit, versions
from arner.train.config import LoopConfig

STATE_FILE = "trainer_state.json"
LOG_FILE = "log.jsonl"


class EpochBatches:
    """Length-grouped batches, reshuffled by (seed, epoch) so a resumed run sees the same order."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int, group_by_length: bool):
        self.lengths, self.batch_size, self.seed, self.group = lengths, batch_size, seed, group_by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=g).tolist()
        if self.group:  # sort within mega-batches, as transformers' LengthGroupedSampler does
            mega = self.batch_size * 50
            order = [i for k in range(0, len(order), mega) for i in sorted(order[k : k + mega], key=lambda i: -self.lengths[i])]
        chunks = [order[k : k + self.batch_size] for k in range(0, len(order), self.batch_size)]
        perm = torch.randperm(len(chunks), generator=g).tolist()
        return [chunks[i] for i in perm]

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)


def mixed_precision(config: LoopConfig) -> str:
    if config.mixed_precision != "auto":
        return config.mixed_precision
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def make_accelerator(config: LoopConfig):
    import transformers
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=mixed_precision(config),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
    )
    set_seed(config.seed)
    return accelerator


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


def read_log(output: Path, type: str | None = None) -> list[dict]:
    """The rows of `output/log.jsonl` (those of one `type`, "step" or "epoch", when given)."""
    rows = [json.loads(line) for line in (Path(output) / LOG_FILE).read_text(encoding="utf-8").splitlines() if line]
    return rows if type is None else [r for r in rows if r["type"] == type]


def epoch_checkpoints(checkpoints: Path) -> list[Path]:
    """The `epoch-N` folders under `checkpoints`, oldest first."""
    return sorted(checkpoints.glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))


def last_checkpoint(checkpoints: Path) -> Path | None:
    done = epoch_checkpoints(checkpoints)
    return done[-1] if done else None


def save_checkpoint(accelerator, checkpoints: Path, state: dict, keep: int) -> None:
    """Accelerate state (model, optimizer, scheduler, RNG) + our counters, written to a temp dir then renamed."""
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
    from accelerate.utils import broadcast_object_list
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    checkpoints = output / "checkpoints"
    lengths = list(lengths) if lengths is not None else [len(f["input_ids"]) for f in features]
    sampler = EpochBatches(lengths, config.batch_size, config.seed, config.group_by_length)
    loader = torch.utils.data.DataLoader(features, batch_sampler=sampler, collate_fn=collator)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if any(k in n for k in ("bias", "LayerNorm", "layer_norm")) else decay).append(p)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        fused=torch.cuda.is_available(),
    )
    steps_per_epoch = math.ceil(len(sampler) / accelerator.num_processes / config.gradient_accumulation_steps)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    if config.torch_compile:
        model = torch.compile(model)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    accelerator.register_for_checkpointing(scheduler)

    state = {"epoch": 0, "global_step": 0, "best_score": None, "best_epoch": None, "bad_epochs": 0, "history": []}
    if resume and (ckpt := last_checkpoint(checkpoints)):
        accelerator.load_state(str(ckpt))
        state = json.loads((ckpt / STATE_FILE).read_text())
        if accelerator.is_main_process:
            print(f"resumed from {ckpt} (epoch {state['epoch']})", file=sys.stderr)

    log = output / LOG_FILE
    if resume and accelerator.is_main_process and log.exists():  # drop rows of the interrupted epoch
        rows = [r for r in read_log(output) if r["step"] <= state["global_step"]]
        atomic.write_text(log, "".join(json.dumps(r) + "\n" for r in rows))
    crash_at = int(os.environ.get("ARNER_CRASH_AT_STEP", "0"))  # fault injection for the resume test

    def write_log(row: dict) -> None:
        if accelerator.is_main_process:
            with log.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    progress = tqdm(
        total=total_steps, initial=state["global_step"], disable=not (config.progress_bar and accelerator.is_local_main_process), desc=desc
    )
    stop = False
    for epoch in range(state["epoch"], config.epochs):
        if stop or state["global_step"] >= total_steps:  # early stop, or max_steps reached in an earlier (cut) epoch
            break
        loader.set_epoch(epoch)  # accelerate passes its own epoch count to the sampler on every pass
        sampler.set_epoch(epoch)
        model.train()
        # running sums stay on the device: reading them every step would make the host wait for the GPU; a logging
        # window's sums are the epoch sums less their values at the previous logging step (`mark_*`)
        zero = torch.zeros((), dtype=torch.float64, device=accelerator.device)
        epoch_loss, epoch_batches, epoch_tokens, epoch_start = zero.clone(), 0, zero.clone(), time.perf_counter()
        mark_loss, mark_tokens, window_steps, window_start = zero.clone(), zero.clone(), 0, time.perf_counter()
        for batch in loader:
            with accelerator.accumulate(model):
                outputs = model(**batch)
                accelerator.backward(outputs.loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad()
            epoch_loss += outputs.loss.detach().double()
            epoch_tokens += batch["attention_mask"].sum()
            epoch_batches += 1
            if not accelerator.sync_gradients:
                continue
            state["global_step"] += 1
            if state["global_step"] == crash_at:
                os._exit(137)  # like SIGKILL: no cleanup, no checkpoint
            window_steps += 1
            progress.update(1)
            if state["global_step"] % config.logging_steps == 0:
                elapsed = time.perf_counter() - window_start
                row = {
                    "type": "step",
                    "epoch": epoch + 1,
                    "step": state["global_step"],
                    "loss": (epoch_loss - mark_loss).item() / max(1, window_steps * config.gradient_accumulation_steps),
                    "learning_rate": scheduler.get_last_lr()[0],
                    "tokens_per_second": (epoch_tokens - mark_tokens).item() * accelerator.num_processes / max(elapsed, 1e-9),
                }
                progress.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{row['tokens_per_second']:.0f}")
                write_log(row)
                mark_loss, mark_tokens, window_steps, window_start = epoch_loss.clone(), epoch_tokens.clone(), 0, time.perf_counter()
            if state["global_step"] >= total_steps:  # max_steps: this epoch ends here, checkpointed like any other
                break
        elapsed = time.perf_counter() - epoch_start
        row = {
            "type": "epoch",
            "epoch": epoch + 1,
            "step": state["global_step"],
            "loss": epoch_loss.item() / max(1, epoch_batches),
            "learning_rate": scheduler.get_last_lr()[0],
            "tokens_per_second": epoch_tokens.item() * accelerator.num_processes / max(elapsed, 1e-9),
            "tokens": round(epoch_tokens.item() * accelerator.num_processes),  # real (non-padding) tokens trained on
            "seconds": elapsed,
        }
        if state["global_step"] >= total_steps and epoch + 1 < config.epochs:
            row["max_steps_reached"] = True
        improved = False
        if evaluate is not None and accelerator.is_main_process:
            row["heldout"] = evaluate(accelerator.unwrap_model(model))
            if score_key is not None:
                score = row["heldout"][score_key]
                improved = state["best_score"] is None or score > state["best_score"]
                if improved:
                    state.update(best_score=score, best_epoch=epoch + 1, bad_epochs=0)
                else:
                    state["bad_epochs"] += 1
                stop = bool(config.early_stopping_patience) and state["bad_epochs"] >= config.early_stopping_patience
                if stop:
                    row["early_stop"] = True
        stop, improved = broadcast_object_list([stop, improved])
        state["epoch"] = epoch + 1
        state["history"].append(row)
        write_log(row)
        save_checkpoint(accelerator, checkpoints, state, config.keep_checkpoints)
        if improved and on_improve is not None and accelerator.is_main_process:
            on_improve(accelerator.unwrap_model(model))
        accelerator.wait_for_everyone()
    progress.close()
    return accelerator.unwrap_model(model), state


def save_model(model, tokenizer, out: Path) -> None:
    with atomic.directory(out) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))


def publish(model, tokenizer, output: Path, meta: dict, max_length: int) -> None:
    """Write the model files and arner.json into `output` (each file renamed into place)."""
    staging = output / ".final.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    model.save_pretrained(str(staging), safe_serialization=True)
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(str(staging))
    meta = {**meta, "git_commit": git_commit(), "versions": versions(), "device": str(next(model.parameters()).device)}
    (staging / "arner.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    for f in staging.iterdir():
        os.replace(f, output / f.name)
    staging.rmdir()
