"""Replaced-token detection (ELECTRA, Clark et al. 2020) for `arner pretrain --objective electra`.

A small generator (an `ElectraForMaskedLM`) fills the masked positions with samples from its own
predictions; the discriminator (an `ElectraForPreTraining`) sees the filled-in text and says, for
every position, whether its subword was replaced. The discriminator learns from every position,
not only the 15% masked, which is why it learns more per FLOP than masked LM at small sizes.
The loss is the generator's MLM loss + `discriminator_weight` x the discriminator's (50 in the paper);
no gradient flows through the sampling. The two share one embeddings module (tokens, positions, type),
as ELECTRA does when the generator is smaller than the discriminator.

The discriminator is the encoder that is kept: saved as a standard Hugging Face folder
(`ElectraForPreTraining`; `AutoModelForTokenClassification` loads its encoder). The generator is saved
beside it in `generator/` without the shared embeddings (they are the discriminator's), so that a
later run continues both where this one stopped.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from arner.train.config import ConfigError, PretrainConfig

GENERATOR_DIR = "generator"
GENERATOR_WEIGHTS = "model.safetensors"
SHARED = "electra.embeddings."  # the generator's keys that are the discriminator's embeddings
TIED = "generator_lm_head.weight"  # the generator's output layer: the (shared) word embeddings


def electra_configs(config: PretrainConfig, vocab_size: int, pad_token_id: int):
    """(discriminator, generator) `ElectraConfig`s: the `bert` shape, and that shape scaled by `generator_size`."""
    from transformers import ElectraConfig

    shape, electra = config.bert, config.electra
    common = dict(
        vocab_size=vocab_size,
        embedding_size=electra.embedding_size,
        max_position_embeddings=shape.max_position_embeddings,
        hidden_dropout_prob=shape.hidden_dropout_prob,
        attention_probs_dropout_prob=shape.attention_probs_dropout_prob,
        pad_token_id=pad_token_id,
    )
    discriminator = ElectraConfig(
        hidden_size=shape.hidden_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        intermediate_size=shape.intermediate_size,
        **common,
    )
    heads = max(1, round(shape.num_attention_heads * electra.generator_size))  # whole heads of the discriminator's width
    hidden = heads * (shape.hidden_size // shape.num_attention_heads)
    generator = ElectraConfig(
        hidden_size=hidden,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=heads,
        intermediate_size=max(1, shape.intermediate_size * hidden // shape.hidden_size),  # the same ratio to hidden
        **common,
    )
    return discriminator, generator


def build_electra(config: PretrainConfig, tokenizer) -> ReplacedTokenDetection:
    """A generator and a discriminator with random weights, of the config's shapes (scratch)."""
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    torch.manual_seed(config.seed)
    disc_config, gen_config = electra_configs(config, len(tokenizer), tokenizer.pad_token_id)
    disc_config.architectures = ["ElectraForPreTraining"]
    return ReplacedTokenDetection(
        ElectraForMaskedLM(gen_config), ElectraForPreTraining(disc_config), config.electra.discriminator_weight, config.electra.temperature
    )


def load_electra(config: PretrainConfig, base: str, where: str) -> ReplacedTokenDetection:
    """Continue from a folder written by `save_electra`: the discriminator, and the generator of `generator/`."""
    from safetensors.torch import load_file
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    folder = Path(base)
    gen_dir = folder / GENERATOR_DIR
    if not (gen_dir / GENERATOR_WEIGHTS).is_file():
        raise ConfigError(
            f"{where}: {base} has no {GENERATOR_DIR}/{GENERATOR_WEIGHTS}: objective electra continues from a folder `arner pretrain` wrote with it"
        )
    discriminator = ElectraForPreTraining.from_pretrained(str(folder), dtype=torch.float32)  # shipped weights are fp16: train in fp32
    generator = ElectraForMaskedLM(ElectraConfig.from_pretrained(str(gen_dir)))
    missing, unexpected = generator.load_state_dict(load_file(str(gen_dir / GENERATOR_WEIGHTS)), strict=False)
    if unexpected or any(not (k.startswith(SHARED) or k == TIED) for k in missing):
        raise ConfigError(f"{where}: {gen_dir} does not match its config.json (missing {missing[:3]}, unexpected {unexpected[:3]})")
    if config.max_length > discriminator.config.max_position_embeddings:
        raise ConfigError(f"{where}: max_length {config.max_length} > the model's {discriminator.config.max_position_embeddings} positions")
    return ReplacedTokenDetection(generator.float(), discriminator, config.electra.discriminator_weight, config.electra.temperature)


def save_electra(model: ReplacedTokenDetection, folder: Path, dtype: torch.dtype | None = None) -> None:
    """The discriminator as a Hugging Face folder, the generator (its own weights only) in `folder/generator/`."""
    from safetensors.torch import save_file

    discriminator = model.discriminator if dtype is None else copy.deepcopy(model.discriminator).to(dtype)
    discriminator.save_pretrained(str(folder), safe_serialization=True)
    gen_dir = folder / GENERATOR_DIR
    gen_dir.mkdir(exist_ok=True)
    weights = {
        k: (v if dtype is None else v.to(dtype)).detach().contiguous().cpu()
        for k, v in model.generator.state_dict().items()
        if not (k.startswith(SHARED) or k == TIED)
    }
    save_file(weights, str(gen_dir / GENERATOR_WEIGHTS), metadata={"format": "pt"})
    if dtype is not None:  # the stored weights are fp16, but a plain from_pretrained (dtype "auto") should load float32
        _set_config_dtype(folder / "config.json", "float32")
    gen_config = model.generator.config.to_dict()
    gen_config["dtype"] = "float32"
    gen_config["architectures"] = ["ElectraForMaskedLM"]
    gen_config["arner_note"] = (
        "embeddings shared with the discriminator in the folder above; load with arner.train.pretrain.electra.load_electra"
    )
    (gen_dir / "config.json").write_text(json.dumps(gen_config, indent=2, sort_keys=True), encoding="utf-8")


def _set_config_dtype(path: Path, dtype: str) -> None:
    config = json.loads(path.read_text(encoding="utf-8"))
    config.pop("torch_dtype", None)
    config["dtype"] = dtype
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@dataclass
class RTDOutput:
    loss: torch.Tensor
    generator_loss: torch.Tensor
    discriminator_loss: torch.Tensor
    logits: torch.Tensor  # the discriminator's, one per position: > 0 says "replaced"
    replaced: torch.Tensor  # where the generator's sample differs from the original subword


def gumbel_sample(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One sample per row of `logits` (argmax of logits + Gumbel noise, i.e. a draw from their softmax)."""
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_(1e-9, 1 - 1e-9)
    return (logits - torch.log(-torch.log(uniform))).argmax(dim=-1)


class ReplacedTokenDetection(torch.nn.Module):
    """Generator + discriminator, trained together; `forward` takes an MLM collator's batch."""

    def __init__(self, generator, discriminator, discriminator_weight: float = 50.0, temperature: float = 1.0):
        super().__init__()
        if (
            generator.config.embedding_size != discriminator.config.embedding_size
            or generator.config.vocab_size != discriminator.config.vocab_size
        ):
            raise ValueError("the generator and discriminator must have the same vocabulary and embedding size to share embeddings")
        generator.electra.embeddings = discriminator.electra.embeddings
        generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight
        self.generator, self.discriminator = generator, discriminator
        self.discriminator_weight, self.temperature = discriminator_weight, temperature
        self.sampler: torch.Generator | None = None  # set for reproducible samples (held-out evaluation)

    def save_pretrained(self, folder: str | Path, **kwargs) -> None:
        """What `publish` calls: the discriminator's folder with the generator beside it (`save_electra`)."""
        save_electra(self, Path(folder))

    def forward(self, input_ids, attention_mask=None, labels=None, **kwargs) -> RTDOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        masked = labels != -100
        hidden = self.generator.electra(input_ids=input_ids, attention_mask=attention_mask)[0]
        # The generator's output layer runs on the masked positions only: it is most of a small model's cost.
        logits = self.generator.generator_lm_head(self.generator.generator_predictions(hidden[masked])).float()
        generator_loss = F.cross_entropy(logits, labels[masked]) if masked.any() else logits.sum() * 0
        with torch.no_grad():
            sampled = gumbel_sample(logits / self.temperature, self.sampler)
            fake = input_ids.clone()
            fake[masked] = sampled
            original = torch.where(masked, labels, input_ids)
            replaced = fake != original
        scores = self.discriminator(input_ids=fake, attention_mask=attention_mask).logits.float()
        real = attention_mask.bool()
        discriminator_loss = F.binary_cross_entropy_with_logits(scores[real], replaced[real].float())
        loss = generator_loss + self.discriminator_weight * discriminator_loss
        return RTDOutput(loss, generator_loss.detach(), discriminator_loss.detach(), scores, replaced)


def position_cosine(hidden: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean cosine similarity between the vectors of distinct real positions of each row (`hidden`: rows x positions x width).

    Near 1, every position carries the same vector: the encoder has collapsed and holds no token identity
    for fine-tuning to use (a randomly initialized encoder of the shipped shape: about 0.37).
    """
    total, pairs = 0.0, 0
    for row, real in zip(hidden.float(), mask.bool()):
        unit = F.normalize(row[real], dim=-1)
        n = len(unit)
        if n > 1:
            total += float((unit @ unit.T).sum() - n)
            pairs += n * (n - 1)
    return total / max(pairs, 1)


def heldout_electra(model: ReplacedTokenDetection, rows, collator, batch_size: int, device, seed: int = 0) -> dict:
    """Held-out losses and how well the discriminator spots replaced subwords, with the same masks and samples each time."""
    was_training = model.training
    model.eval()
    model.sampler = torch.Generator(device=device).manual_seed(seed)
    sums = dict(gen=0.0, disc=0.0, masked=0, positions=0, tp=0, fp=0, fn=0, correct=0)
    cosine = None
    with torch.no_grad():
        for chunk in rows.iter(batch_size=batch_size):
            batch = {k: v.to(device) for k, v in collator([{"input_ids": ids} for ids in chunk["input_ids"]]).items()}
            if cosine is None:  # on the original text of the first batch
                ids = torch.where(batch["labels"] != -100, batch["labels"], batch["input_ids"])
                hidden = model.discriminator.electra(input_ids=ids, attention_mask=batch["attention_mask"])[0]
                cosine = position_cosine(hidden, batch["attention_mask"])
            out = model(**batch)
            real = batch["attention_mask"].bool()
            n_masked, n_real = int((batch["labels"] != -100).sum()), int(real.sum())
            said, truth = (out.logits > 0)[real], out.replaced[real]
            sums["gen"] += float(out.generator_loss) * n_masked
            sums["disc"] += float(out.discriminator_loss) * n_real
            sums["masked"] += n_masked
            sums["positions"] += n_real
            sums["tp"] += int((said & truth).sum())
            sums["fp"] += int((said & ~truth).sum())
            sums["fn"] += int((~said & truth).sum())
            sums["correct"] += int((said == truth).sum())
    model.sampler = None
    model.train(was_training)
    gen = sums["gen"] / max(sums["masked"], 1)
    precision = sums["tp"] / max(sums["tp"] + sums["fp"], 1)
    recall = sums["tp"] / max(sums["tp"] + sums["fn"], 1)
    return {
        "generator_mlm_loss": gen,
        "generator_perplexity": math.exp(min(gen, 50)),
        "discriminator_loss": sums["disc"] / max(sums["positions"], 1),
        "replaced_accuracy": sums["correct"] / max(sums["positions"], 1),
        "replaced_f1": 2 * precision * recall / max(precision + recall, 1e-12),
        "replaced_share": (sums["tp"] + sums["fn"]) / max(sums["positions"], 1),
        "position_cosine": cosine,
        "positions": sums["positions"],
    }
