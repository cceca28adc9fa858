"""The model of `arner pretrain`: a BERT built from the config's shape or loaded, its MLM head run on masked positions only."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from arner.train.config import SCRATCH, ConfigError, PretrainConfig


class MaskedPositionsMLM(torch.nn.Module):
    """Wraps a `*ForMaskedLM`: the encoder runs on all positions, the MLM head on the masked ones only.

    The loss is the same mean cross-entropy over masked positions as the wrapped model's own;
    the output layer (hidden x vocabulary, most of a small model's cost) runs on about
    `mlm_probability` of the positions. A model whose head is not a single module beside its
    encoder is run whole.
    """

    def __init__(self, mlm):
        super().__init__()
        self.mlm = mlm
        base = mlm.base_model
        heads = [name for name, child in mlm.named_children() if child is not base]
        self.head_name = heads[0] if len(heads) == 1 else None

    def save_pretrained(self, folder, **kwargs) -> None:
        """What `publish` calls: the wrapped model's own folder (the wrapper adds no weights)."""
        self.mlm.save_pretrained(folder, **kwargs)

    def forward(self, input_ids, attention_mask=None, labels=None, **kwargs):
        from transformers.modeling_outputs import MaskedLMOutput

        if self.head_name is None or labels is None:
            return self.mlm(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        hidden = self.mlm.base_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)[0]
        picked = labels != -100
        logits = getattr(self.mlm, self.head_name)(hidden[picked])
        loss = torch.nn.functional.cross_entropy(logits.float(), labels[picked], reduction="sum") / picked.sum().clamp(min=1)
        return MaskedLMOutput(loss=loss, logits=logits)


def heldout_loss(model: MaskedPositionsMLM, rows, collator, batch_size: int, device) -> dict:
    """Mean MLM loss on the held-out `rows` (a dataset of `input_ids`), with the same masks every time (the collator is seeded)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for chunk in rows.iter(batch_size=batch_size):
            batch = collator([{"input_ids": ids} for ids in chunk["input_ids"]])
            batch = {k: v.to(device) for k, v in batch.items()}
            n = int((batch["labels"] != -100).sum())
            total += float(model(**batch).loss) * n
            count += n
    model.train(was_training)
    loss = total / max(count, 1)
    return {"mlm_loss": loss, "perplexity": math.exp(min(loss, 50)), "masked_tokens": count}


def resolve_base(config: PretrainConfig, where: str, work: Path) -> str | None:
    """None for scratch; else a loadable folder or hub id (a hub id not to be had fails at once, as in `arner train`)."""
    if config.model == SCRATCH:
        return None
    from arner.train.model import resolve

    return resolve(config, where, [], work)  # only reads config.model for anything but "tiny"


def load_mlm(config: PretrainConfig, tokenizer, base: str | None, where: str):
    """A `BertForMaskedLM` of the config's shape with random weights (scratch), or the checkpoint `base`."""
    from transformers import AutoModelForMaskedLM, BertForMaskedLM

    from arner.train.model import bert_config

    if base is None:
        torch.manual_seed(config.seed)
        return BertForMaskedLM(bert_config(config.bert, len(tokenizer), tokenizer.pad_token_id))
    mlm = AutoModelForMaskedLM.from_pretrained(base, attn_implementation="sdpa", dtype=torch.float32)
    if config.max_length > mlm.config.max_position_embeddings:
        raise ConfigError(f"{where}: max_length {config.max_length} > the model's {mlm.config.max_position_embeddings} positions")
    return mlm
