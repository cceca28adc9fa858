"""Optimizer and learning-rate schedule of the loop, as the transformers `*_no_trainer.py` examples set them up.

AdamW without weight decay on biases and LayerNorm weights; warmup then linear decay to zero over
the run's planned optimizer steps (all epochs, or `max_steps` when that is fewer).
"""

from __future__ import annotations

import math

import torch

from arner.train.config import LoopConfig

NO_DECAY = ("bias", "LayerNorm", "layer_norm")  # parameter-name parts that take no weight decay


def make_optimizer(model: torch.nn.Module, config: LoopConfig) -> torch.optim.Optimizer:
    """AdamW over two groups (decayed, not decayed); the fused kernel on CUDA, where it is faster."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if any(k in name for k in NO_DECAY) else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        fused=torch.cuda.is_available(),
    )


def planned_steps(batches_per_epoch: int, processes: int, config: LoopConfig) -> int:
    """Optimizer steps of the whole run: each process takes its share of the batches, `gradient_accumulation_steps` a step."""
    steps_per_epoch = math.ceil(batches_per_epoch / processes / config.gradient_accumulation_steps)
    total = steps_per_epoch * config.epochs
    return min(total, config.max_steps) if config.max_steps else total


def make_scheduler(optimizer: torch.optim.Optimizer, config: LoopConfig, total_steps: int):
    """Linear warmup over `warmup_ratio` of the steps, then linear decay, reaching zero at the last planned step."""
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
