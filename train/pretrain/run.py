"""`arner pretrain`: pretraining an encoder on raw text (the loop is `loop.fit`).

Two objectives: masked LM (`objective: mlm`, a BERT) and replaced-token detection
(`objective: electra`, a generator and a discriminator, `electra.py`).

From scratch (`model: scratch`), a WordPiece vocabulary is learned from the text first
(`model.train_wordpiece`) and a `BertForMaskedLM` is built from the config's `bert` shape; from
a checkpoint (a local folder or a hub id, resolved like `arner train`'s `model:`), its tokenizer
is kept and its weights continue training (domain-adaptive pretraining). The data is in `data.py`,
the masking in `masking.py`, the model wrapper in `model.py`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from arner.train.config import ConfigError, PretrainConfig, TextInput
from arner.train.loop import finish_output, finished_run, fit, make_accelerator, prepare_output, publish
from arner.train.model import check_positions
from arner.train.pretrain.card import pretrain_card
from arner.train.pretrain.data import (
    check_packed,
    load_rows,
    log,
    prepare_data,
    prepare_tokenizer,
    row_lengths,
    split_heldout,
    tokenizer_fingerprint,
)
from arner.train.pretrain.electra import build_electra, heldout_electra, load_electra
from arner.train.pretrain.masking import make_collator
from arner.train.pretrain.model import MaskedPositionsMLM, heldout_loss, load_mlm, resolve_base
from arner.train.pretrain.text import as_inputs, check_inputs


def prepare(accelerator, config: PretrainConfig, inputs: Sequence[TextInput], work: Path, resume: bool, base: str | None, where: str):
    """(tokenizer, folder of the packed rows): built or reused by the main process, then loaded by every process."""
    from transformers import AutoTokenizer

    if config.packed_rows:  # rows packed elsewhere (`--prepare-only`) by the base model's tokenizer
        tokenizer = AutoTokenizer.from_pretrained(base)
        data_dir = check_packed(Path(config.packed_rows), tokenizer, config.max_length, where)
    elif accelerator.is_main_process:
        tokenizer_dir = prepare_tokenizer(config, inputs, work, resume, base)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        data_dir = prepare_data(config, inputs, tokenizer, work, resume, where)
    accelerator.wait_for_everyone()
    if not config.packed_rows and not accelerator.is_main_process:
        tokenizer_dir, data_dir = base or str(work / "tokenizer"), work / "data"
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if tokenizer.mask_token is None or tokenizer.cls_token is None or tokenizer.sep_token is None:
        raise ConfigError(f"{where}: the tokenizer of {config.model!r} has no [MASK], [CLS] or [SEP] token")
    if config.whole_word_masking and accelerator.is_main_process and not any(t.startswith("##") for t in tokenizer.get_vocab()):
        log("warning: whole_word_masking finds words by the ## prefix of WordPiece, which this tokenizer lacks: every subword is a word")
    return tokenizer, data_dir


def build_model(config: PretrainConfig, tokenizer, base: str | None, where: str):
    """What the loop trains: the MLM (its head on masked positions only), or ELECTRA's generator + discriminator."""
    if config.objective == "electra":
        return build_electra(config, tokenizer) if base is None else load_electra(config, base, where)
    return MaskedPositionsMLM(load_mlm(config, tokenizer, base, where))


def summary(state: dict, train_lengths: list[int], heldout_rows: int, started: float) -> dict:
    """The metrics `pretrain` returns (and writes into arner.json), from the loop's state."""
    history = state["history"]
    tokens_per_epoch = int(sum(train_lengths))
    final = {
        "epochs_run": state["epoch"],
        "global_step": state["global_step"],
        "sequences": len(train_lengths),
        "heldout_sequences": heldout_rows,
        "tokens_per_epoch": tokens_per_epoch,
        "tokens_seen": sum(r.get("tokens", tokens_per_epoch) for r in history),
        "first_loss": history[0]["loss"] if history else None,
        "final_loss": history[-1]["loss"] if history else None,
        "train_seconds": round(sum(r.get("seconds", 0.0) for r in history), 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    if history and "heldout" in history[-1]:
        final["first_heldout"] = history[0]["heldout"]
        final["heldout"] = history[-1]["heldout"]
    return final


def cumulative(base: str | None, final: dict, command: str) -> dict:
    """Tokens, steps, runs and commands of pretraining behind the published weights: the base folder's (its arner.json) plus this run's."""
    before = {"tokens_seen": 0, "optimizer_steps": 0, "runs": 0, "commands": []}
    if base is not None and (Path(base) / "arner.json").is_file():
        meta = json.loads((Path(base) / "arner.json").read_text(encoding="utf-8"))
        before.update(meta.get("pretraining_total", {}))
    return {
        "tokens_seen": before["tokens_seen"] + final["tokens_seen"],
        "optimizer_steps": before["optimizer_steps"] + final["global_step"],
        "runs": before["runs"] + 1,
        "commands": [*before["commands"], command],
    }


TASKS = {
    "mlm": "masked-language-model pretraining (arner pretrain)",
    "electra": "replaced-token detection pretraining, ELECTRA (arner pretrain)",
}


def metadata(
    config: PretrainConfig, base: str | None, manifest: dict, tokenizer, accelerator, final: dict, command: str, config_path: str = "config"
) -> dict:
    """What `arner.json` records about a run besides the model (git commit, versions and device are added by `publish`)."""
    return {
        "task": TASKS[config.objective],
        "config": config.to_dict(),
        "config_file": config_path,
        "base_model": config.model
        if base is not None
        else f"scratch (WordPiece learned from the text + random {'ElectraConfig' if config.objective == 'electra' else 'BertConfig'})",
        "inputs": manifest["inputs"],
        "data": {k: v for k, v in manifest.items() if k != "inputs"},
        "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
        "processes": accelerator.num_processes,
        "torch_threads": torch.get_num_threads(),
        "metrics": final,
        "pretraining_total": cumulative(base, final, command),  # its last command is this run's
    }


def finished(output: Path, config: PretrainConfig, inputs: Sequence[TextInput]) -> dict | None:
    """arner.json of a finished run in `output` of this config that read these inputs (its checkpoints removed), if any."""
    meta = finished_run(output, config.to_dict())
    if meta is None or config.packed_rows:  # packed rows: the inputs are the packing run's, not checked here
        return meta
    read = [(x.get("path"), x.get("exclude") or "") for x in meta.get("inputs", [])]
    return meta if read == [(x.path, x.exclude or "") for x in inputs] else None


def pretrain(
    config: PretrainConfig,
    texts: Sequence[str | TextInput | Path] | None,
    output: str | Path,
    resume: bool = False,
    config_path: str = "config",
    command: str = "",
    prepare_only: bool = False,
) -> dict:
    """Pretrain, write a Hugging Face model folder (MLM head, or ELECTRA's generator, included) at `output`, return the metrics.

    `command` (the command line that ran it) is recorded in `arner.json`, with those of the runs the base continued.
    With `prepare_only`, the tokenizer and packed rows are made in `output/work` and nothing is trained: pack on
    a CPU machine, carry `output/work/data` to the GPU machine and train there with `packed_rows` set to it.
    """
    started = time.perf_counter()
    logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)  # "Removed shared tensor" at each checkpoint: the tied MLM decoder
    output = Path(output)
    work = output / "work"
    base = resolve_base(config, config_path, work)  # first: a model that cannot be had fails at once
    if base is not None:
        check_positions(base, config.max_length, config_path)
    inputs = as_inputs(texts) if texts else list(config.text)
    if not config.packed_rows:
        check_inputs(inputs, config_path)
    accelerator = make_accelerator(config, output, config_path)
    if resume and not prepare_only and (done := finished(output, config, inputs)) is not None:
        if accelerator.is_main_process:
            log(f"{output} holds a finished run of this config and text: nothing to resume")
        accelerator.end_training()
        return done["metrics"]
    if prepare_only:
        (output / "work").mkdir(parents=True, exist_ok=True)
    else:
        prepare_output(accelerator, output, resume)
    tokenizer, data_dir = prepare(accelerator, config, inputs, work, resume, base, config_path)
    if prepare_only:
        log(f"prepared {data_dir} (packed rows) for `--set packed_rows={data_dir}`; nothing trained")
        return {"packed_rows": str(data_dir), **json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))}
    model = build_model(config, tokenizer, base, config_path)

    rows, manifest = load_rows(data_dir)
    train_rows, held_rows = split_heldout(len(rows), config.heldout_sequences)
    if not len(train_rows):
        raise ConfigError(f"{config_path}: the text inputs gave no tokens to train on")
    lengths = row_lengths(rows, config.max_length)
    train_lengths = [lengths[i] for i in train_rows]
    held_data = rows.select(held_rows)

    def evaluate(m):
        score = heldout_electra if config.objective == "electra" else heldout_loss
        return score(m, held_data, make_collator(tokenizer, config, seed=config.seed), config.eval_batch_size, accelerator.device)

    model, state = fit(
        accelerator,
        model,
        rows.select(train_rows),
        make_collator(tokenizer, config),
        config,
        output,
        resume,
        evaluate=evaluate if len(held_data) else None,
        desc="pretrain",
        lengths=train_lengths,
    )
    final = summary(state, train_lengths, len(held_data), started)
    if accelerator.is_main_process:
        meta = metadata(config, base, manifest, tokenizer, accelerator, final, command, config_path)
        publish(model, tokenizer, output, meta, config.max_length, card=lambda m: pretrain_card(output.name, m, str(output)))
    finish_output(accelerator, output, config.keep_checkpoints_after_training)
    accelerator.end_training()
    return final
