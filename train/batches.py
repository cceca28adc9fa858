"""The loop's batch sampler: length-grouped batches in an order fixed by (seed, epoch).

Grouping is transformers' `get_length_grouped_indices` (the `Trainer`'s `group_by_length`): a random
permutation, sorted by length within mega-batches of 50 batches, so a batch holds sequences of
similar length and little padding. The batches are then shuffled, with the same generator, so the
model does not see them longest first.

With one mega-batch (up to 50 batches an epoch) the order is the one this loop always had. With
more, transformers swaps the longest sequence into the first place of the first mega-batch (to hit
an out-of-memory error at once); the batch shuffle that follows moves that batch anywhere, so the
only effect here is that two sequences trade batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch

MEGA_BATCH_MULT = 50  # batches sorted together, as in transformers' LengthGroupedSampler


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_by_length: bool = True) -> list[list[int]]:
    """Indices into `lengths`, cut into batches; a function of (seed, epoch) only, so a resumed run repeats it."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    # one generator draws the order, then the batch shuffle: seeding per epoch is what makes resuming exact
    g = torch.Generator().manual_seed(seed * 1000 + epoch)
    if group_by_length and len(lengths):  # (transformers' grouping fails on an empty list)
        order = get_length_grouped_indices(lengths, batch_size, mega_batch_mult=MEGA_BATCH_MULT, generator=g)
    else:
        order = torch.randperm(len(lengths), generator=g).tolist()
    chunks = [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    perm = torch.randperm(len(chunks), generator=g).tolist()
    return [chunks[i] for i in perm]


class EpochBatches:
    """A DataLoader `batch_sampler` over `epoch_batches`; the loop calls `set_epoch` before each pass."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool):
        self.lengths, self.batch_size, self.seed, self.group = list(lengths), batch_size, seed, group_by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        return epoch_batches(self.lengths, self.batch_size, self.seed, self.epoch, self.group)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)
