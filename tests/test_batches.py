"""The loop's batch sampler: transformers' length grouping, in the order the loop always had."""

from __future__ import annotations

import random

import pytest
import torch

from arner.train.batches import MEGA_BATCH_MULT, EpochBatches, epoch_batches


def old_order(lengths: list[int], batch_size: int, seed: int, epoch: int, group: bool) -> tuple[list[int], list[list[int]]]:
    """The sampler as it was before it used transformers (kept here to pin the order): (grouped order, batches)."""
    g = torch.Generator().manual_seed(seed * 1000 + epoch)
    order = torch.randperm(len(lengths), generator=g).tolist()
    if group:
        mega = batch_size * 50
        order = [i for k in range(0, len(order), mega) for i in sorted(order[k : k + mega], key=lambda i: -lengths[i])]
    chunks = [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    perm = torch.randperm(len(chunks), generator=g).tolist()
    return order, [chunks[i] for i in perm]


def random_lengths(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(5, 128) for _ in range(n)]


@pytest.mark.parametrize("n", [1, 7, 30, 300, 400])
@pytest.mark.parametrize("group", [True, False])
def test_one_mega_batch_gives_the_old_order(n, group):
    lengths = random_lengths(n, seed=n)
    assert n <= 8 * MEGA_BATCH_MULT  # one mega-batch
    for epoch in range(4):
        assert epoch_batches(lengths, 8, 42, epoch, group) == old_order(lengths, 8, 42, epoch, group)[1]


def test_plain_shuffle_is_the_old_order_at_any_size():
    lengths = random_lengths(1000, seed=1)
    for epoch in range(4):
        assert epoch_batches(lengths, 8, 7, epoch, group_by_length=False) == old_order(lengths, 8, 7, epoch, False)[1]


@pytest.mark.parametrize("n, batch_size", [(1000, 8), (300, 2), (1001, 3)])
def test_several_mega_batches_differ_only_by_the_longest_sequence_moved_first(n, batch_size):
    """transformers swaps the longest sequence into first place, trading it with the first of mega-batch 0."""
    lengths = random_lengths(n, seed=n)
    mega = batch_size * MEGA_BATCH_MULT
    for epoch in range(4):
        order, old = old_order(lengths, batch_size, 42, epoch, True)
        heads = list(range(0, n, mega))  # each mega-batch starts with its longest sequence
        longest = max(heads, key=lambda k: (lengths[order[k]], -k))  # the first of the longest (argmax)
        a, b = order[0], order[longest]
        assert lengths[b] == max(lengths)
        swapped = [[{a: b, b: a}.get(i, i) for i in batch] for batch in old]
        new = epoch_batches(lengths, batch_size, 42, epoch, True)
        assert new == swapped
        assert sorted(i for batch in new for i in batch) == list(range(n))


def test_order_is_a_function_of_seed_and_epoch():
    lengths = random_lengths(300, seed=3)
    sampler = EpochBatches(lengths, 8, seed=5, group_by_length=True)
    sampler.set_epoch(2)
    again = EpochBatches(lengths, 8, seed=5, group_by_length=True)  # a resumed run: a fresh sampler
    again.set_epoch(2)
    assert list(sampler) == list(again) == epoch_batches(lengths, 8, 5, 2)
    sampler.set_epoch(3)
    assert list(sampler) != list(again)
    assert EpochBatches(lengths, 8, seed=6, group_by_length=True).batches() != EpochBatches(lengths, 8, 5, True).batches()


def test_batches_cover_every_item_once_and_group_lengths():
    lengths = random_lengths(300, seed=4)
    grouped, plain = EpochBatches(lengths, 8, 42, True), EpochBatches(lengths, 8, 42, False)
    assert len(grouped) == len(grouped.batches()) == 38
    for sampler in (grouped, plain):
        assert sorted(i for b in sampler for i in b) == list(range(300))

    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    assert padding(grouped.batches()) < padding(plain.batches()) / 5


def test_no_items_no_batches():
    assert EpochBatches([], 8, 42, True).batches() == [] and len(EpochBatches([], 8, 42, True)) == 0
