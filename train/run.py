"""`arner train`: fine-tune a token classifier on the annotations with accelerate.

Plain loop in the spirit of the transformers `run_ner_no_trainer.py` example: accelerate
for devices, mixed precision and several processes; AdamW with warmup then linear decay;
length-grouped, dynamically padded batches; an atomic checkpoint at every epoch end.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from arner import atomic, corpus
from arner.conventions import ID2TAG, TAG2ID
from arner.train.config import TrainConfig
from arner.train.data import IGNORE, fingerprint, split, window_examples
from arner.train.model import resolve

STATE_FILE = "trainer_state.json"


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


def mixed_precision(config: TrainConfig) -> str:
    if config.mixed_precision != "auto":
        return config.mixed_precision
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def versions() -> dict:
    import accelerate
    import datasets
    import tokenizers
    import transformers

    import arner

    return {
        "arner": arner.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "tokenizers": tokenizers.__version__,
        "datasets": datasets.__version__,
    }


def heldout_scores(model, tokenizer, documents: list[corpus.Document], config: TrainConfig, device) -> dict:
    """Strict span P/R/F1 and word-level micro F1 on held-out documents."""
    from arner.inference import Tagger
    from arner.spanscore import span_scores

    was_training = model.training
    tagger = Tagger(model, tokenizer, device, config.eval_batch_size, config.stride, config.max_length, config.trim_proclitics)
    predicted = tagger.predict([d.text for d in documents])
    model.train(was_training)
    scores = span_scores([d.spans for d in documents], [[e.span() for e in doc] for doc in predicted])
    strict = scores["strict"]["micro"]
    return {
        "strict_precision": strict["precision"],
        "strict_recall": strict["recall"],
        "strict_f1": strict["f1"],
        "partial_f1": scores["partial"]["micro"]["f1"],
    }


def last_checkpoint(checkpoints: Path) -> Path | None:
    done = sorted(checkpoints.glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))
    return done[-1] if done else None


def train(config: TrainConfig, output: str | Path, fold: int | None = None, resume: bool = False, config_path: str = "config") -> dict:
    """Train, write a Hugging Face model folder at `output`, and return the final metrics."""
    import transformers
    from accelerate import Accelerator
    from accelerate.utils import broadcast_object_list, set_seed
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        get_linear_schedule_with_warmup,
    )

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    output = Path(output)
    checkpoints = output / "checkpoints"
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=mixed_precision(config),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
    )
    set_seed(config.seed)
    documents = corpus.load(config.annotations)
    train_docs, heldout_docs = split(documents, fold)

    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        if not resume:
            shutil.rmtree(checkpoints, ignore_errors=True)
            (output / "log.jsonl").unlink(missing_ok=True)
        base = resolve(config, config_path, [d.text for d in train_docs], checkpoints)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        base = str(checkpoints / "base-model") if config.model == "tiny" else resolve(config, config_path, [], checkpoints)

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(TAG2ID), id2label=dict(ID2TAG), label2id=dict(TAG2ID), attn_implementation="sdpa"
    )
    examples = [ex for d in train_docs for ex in window_examples(tokenizer, d, config.max_length, config.stride, config.label_all_subwords)]
    features = [{"input_ids": ex["input_ids"], "labels": ex["labels"]} for ex in examples]
    sampler = EpochBatches([len(f["input_ids"]) for f in features], config.batch_size, config.seed, config.group_by_length)
    collator = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=config.pad_to_multiple_of, label_pad_token_id=IGNORE)
    loader = torch.utils.data.DataLoader(features, batch_sampler=sampler, collate_fn=collator)

    decay = [p for n, p in model.named_parameters() if not any(k in n for k in ("bias", "LayerNorm", "layer_norm"))]
    no_decay = [p for n, p in model.named_parameters() if any(k in n for k in ("bias", "LayerNorm", "layer_norm"))]
    fused = torch.cuda.is_available()
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        fused=fused,
    )
    steps_per_epoch = math.ceil(len(sampler) / accelerator.num_processes / config.gradient_accumulation_steps)
    total_steps = steps_per_epoch * config.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    if config.torch_compile:
        model = torch.compile(model)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    accelerator.register_for_checkpointing(scheduler)

    state = {"epoch": 0, "global_step": 0, "best_f1": -1.0, "best_epoch": None, "bad_epochs": 0, "history": []}
    if resume and (ckpt := last_checkpoint(checkpoints)):
        accelerator.load_state(str(ckpt))
        state = json.loads((ckpt / STATE_FILE).read_text())
        if accelerator.is_main_process:
            print(f"resumed from {ckpt} (epoch {state['epoch']})", file=sys.stderr)

    log = output / "log.jsonl"
    if resume and accelerator.is_main_process and log.exists():  # drop rows of the interrupted epoch
        rows = [r for r in log.read_text(encoding="utf-8").splitlines() if r and json.loads(r)["step"] <= state["global_step"]]
        atomic.write_text(log, "".join(r + "\n" for r in rows))
    crash_at = int(os.environ.get("ARNER_CRASH_AT_STEP", "0"))  # fault injection for the resume test

    def write_log(row: dict) -> None:
        if accelerator.is_main_process:
            with log.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    from tqdm.auto import tqdm

    progress = tqdm(
        total=total_steps,
        initial=state["global_step"],
        disable=not (config.progress_bar and accelerator.is_local_main_process),
        desc="train",
    )
    stop = False
    for epoch in range(state["epoch"], config.epochs):
        if stop:
            break
        loader.set_epoch(epoch)  # accelerate passes its own epoch count to the sampler on every pass
        sampler.set_epoch(epoch)
        model.train()
        window_loss, window_tokens, window_steps, window_start = 0.0, 0, 0, time.perf_counter()
        epoch_loss, epoch_batches, epoch_tokens, epoch_start = 0.0, 0, 0, time.perf_counter()
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
            tokens = int(batch["attention_mask"].sum())
            loss = float(outputs.loss.detach())
            window_loss, window_tokens = window_loss + loss, window_tokens + tokens
            epoch_loss, epoch_batches, epoch_tokens = epoch_loss + loss, epoch_batches + 1, epoch_tokens + tokens
            if accelerator.sync_gradients:
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
                        "loss": window_loss / max(1, window_steps * config.gradient_accumulation_steps),
                        "learning_rate": scheduler.get_last_lr()[0],
                        "tokens_per_second": window_tokens * accelerator.num_processes / max(elapsed, 1e-9),
                    }
                    progress.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{row['tokens_per_second']:.0f}")
                    write_log(row)
                    window_loss, window_tokens, window_steps, window_start = 0.0, 0, 0, time.perf_counter()
        elapsed = time.perf_counter() - epoch_start
        row = {
            "type": "epoch",
            "epoch": epoch + 1,
            "step": state["global_step"],
            "loss": epoch_loss / max(1, epoch_batches),
            "learning_rate": scheduler.get_last_lr()[0],
            "tokens_per_second": epoch_tokens * accelerator.num_processes / max(elapsed, 1e-9),
            "seconds": elapsed,
        }
        improved = False
        if heldout_docs and accelerator.is_main_process:
            row["heldout"] = heldout_scores(accelerator.unwrap_model(model), tokenizer, heldout_docs, config, accelerator.device)
            f1 = row["heldout"]["strict_f1"]
            improved = f1 > state["best_f1"]
            if improved:
                state.update(best_f1=f1, best_epoch=epoch + 1, bad_epochs=0)
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
        if improved and config.load_best_model_at_end and accelerator.is_main_process:
            save_model(accelerator.unwrap_model(model), tokenizer, checkpoints / "best")
        accelerator.wait_for_everyone()
    progress.close()

    final = {
        "epochs_run": state["epoch"],
        "global_step": state["global_step"],
        "final_loss": state["history"][-1]["loss"] if state["history"] else None,
    }
    if accelerator.is_main_process:
        source = accelerator.unwrap_model(model)
        if heldout_docs and config.load_best_model_at_end and (checkpoints / "best").is_dir():
            source = AutoModelForTokenClassification.from_pretrained(str(checkpoints / "best"))
            final["model_epoch"] = state["best_epoch"]
        if heldout_docs:
            final["best_epoch"] = state["best_epoch"]
            final["heldout"] = heldout_scores(source, tokenizer, heldout_docs, config, accelerator.device)
        publish(source, tokenizer, output, config, train_docs, heldout_docs, fold, final)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return final


def save_model(model, tokenizer, out: Path) -> None:
    with atomic.directory(out) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))


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
        old = sorted(checkpoints.glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))[:-keep]
        for p in old:
            shutil.rmtree(p, ignore_errors=True)
    accelerator.wait_for_everyone()


def publish(model, tokenizer, output: Path, config: TrainConfig, train_docs, heldout_docs, fold, final: dict) -> None:
    """Write the model files and arner.json into `output` (each file renamed into place)."""
    staging = output / ".final.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    model.config.id2label, model.config.label2id = dict(ID2TAG), dict(TAG2ID)
    model.save_pretrained(str(staging), safe_serialization=True)
    tokenizer.model_max_length = config.max_length
    tokenizer.save_pretrained(str(staging))
    meta = {
        "config": config.to_dict(),
        "base_model": config.model
        if config.model != "tiny"
        else "tiny (built offline: WordPiece on the training articles + random BertConfig)",
        "fold": fold,
        "train_docs": [d.doc for d in train_docs],
        "heldout_docs": [d.doc for d in heldout_docs],
        "data_fingerprint": fingerprint(train_docs + heldout_docs),
        "train_fingerprint": fingerprint(train_docs),
        "git_commit": git_commit(),
        "versions": versions(),
        "device": str(next(model.parameters()).device),
        "metrics": final,
    }
    (staging / "arner.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    for f in staging.iterdir():
        os.replace(f, output / f.name)
    staging.rmdir()
