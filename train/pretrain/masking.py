"""Masking for `arner pretrain`: dynamic, a new mask every time a row is drawn.

Token-level masking is transformers' `DataCollatorForLanguageModeling`; whole-word masking is
the same collator with its `torch_mask_tokens` replaced, finding words by WordPiece's `##` prefix.
"""

from __future__ import annotations

import functools

import torch

from arner.train.config import PretrainConfig


def make_collator(tokenizer, config: PretrainConfig, seed: int | None = None):
    """The MLM collator: token-level (`DataCollatorForLanguageModeling`) or whole-word."""
    from transformers import DataCollatorForLanguageModeling

    cls = whole_word_collator_class() if config.whole_word_masking else DataCollatorForLanguageModeling
    return cls(
        tokenizer,
        mlm_probability=config.mlm_probability,
        mask_replace_prob=config.mask_replace_prob,
        random_replace_prob=config.random_replace_prob,
        pad_to_multiple_of=config.pad_to_multiple_of,
        seed=seed,
    )


@functools.cache
def whole_word_collator_class():
    """`DataCollatorForLanguageModeling` that masks whole words, found by the `##` continuation prefix.

    Each word is picked with probability `mlm_probability` and all its subwords are then masked
    (each replaced by [MASK], by a random subword or kept, as `mask_replace_prob` and
    `random_replace_prob` say). Works on packed rows, which have no word ids: a subword starting
    with `##` continues the word before it, unless a special token comes between. (A function,
    so that importing this module does not import transformers.)
    """
    from transformers import DataCollatorForLanguageModeling

    class WholeWordMaskCollator(DataCollatorForLanguageModeling):
        def __post_init__(self):
            super().__post_init__()
            vocab = self.tokenizer.get_vocab()
            self.continuation = torch.zeros(max(len(self.tokenizer), max(vocab.values()) + 1), dtype=torch.bool)
            self.continuation[[i for t, i in vocab.items() if t.startswith("##")]] = True

        def word_ids(self, inputs: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
            """Per position, 1 + the index of its word in the row (special tokens are words of their own)."""
            after_special = torch.ones_like(special)
            after_special[:, 1:] = special[:, :-1]
            starts = ~self.continuation[inputs] | special | after_special
            return starts.long().cumsum(dim=1)

        def torch_mask_tokens(self, inputs, special_tokens_mask=None, offset_mapping=None):
            labels = inputs.clone()
            if special_tokens_mask is None:
                special_tokens_mask = torch.tensor(
                    [self.tokenizer.get_special_tokens_mask(v, already_has_special_tokens=True) for v in labels.tolist()]
                )
            special = special_tokens_mask.bool()
            word = self.word_ids(inputs, special)
            picked = torch.bernoulli(torch.full((inputs.shape[0], inputs.shape[1] + 1), self.mlm_probability), generator=self.generator)
            masked = picked.bool().gather(1, word) & ~special
            labels[~masked] = -100
            replaced = torch.bernoulli(torch.full(labels.shape, self.mask_replace_prob), generator=self.generator).bool() & masked
            inputs[replaced] = self.tokenizer.mask_token_id
            rest = 1 - self.mask_replace_prob
            if rest > 0 and self.random_replace_prob > 0:
                p = self.random_replace_prob / rest
                swap = torch.bernoulli(torch.full(labels.shape, p), generator=self.generator).bool() & masked & ~replaced
                words = torch.randint(len(self.tokenizer), labels.shape, dtype=torch.long, generator=self.generator)
                inputs[swap] = words[swap]
            return inputs, labels

    return WholeWordMaskCollator
