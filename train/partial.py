"""Partial-label (marginal likelihood) training of a token classifier.

A public corpus's tag often says only that a word is one of several of our tags: ANERcorp's `LOC`
is ACTOR or PLACE by the role the place plays, and ANERcorp annotates no dates, so any of its O
words may be a DATE. Training toward one of them would teach the model wrong answers; instead a
word allowed the set S of tags contributes

    loss = -log sum_{y in S} p(y | x)

the negative log of the probability the model gives to the whole set. Minimizing it raises the
set's total and leaves the split inside the set to the model (and to the words whose label is
definite): the gradient on logit j is p_j - p_j / P(S) for j in S and p_j outside it, so no mass
is pushed toward any particular member. With S a single tag this is exactly the cross-entropy.

This is the marginal likelihood of the observed (partial) annotation: Tsuboi et al. 2008, "Training
Conditional Random Fields Using Incomplete Annotations" (COLING), and Greenberg et al. 2018,
"Marginal Likelihood Training of BiLSTM-CRF for Biomedical Named Entity Recognition from Disjoint
Label Sets" (EMNLP), marginalize a CRF over the label sequences consistent with the annotation;
with a per-token softmax and no transitions (our token classifier) that sum factorizes into the
per-token sums above, the candidate-set likelihood of Jin & Ghahramani 2003, "Learning with
Multiple Labels" (NIPS). Jie et al. 2019 (NAACL) instead learn a soft distribution over the
missing labels; we keep the plain marginal, which needs no extra model.

Labels arrive as integers (arner.train.data.TagSets): below the number of tags a single tag, from
there up a row of the mask table. `PartialLabelModel` wraps the Hugging Face model so that the
loop (`loop.fit`) runs unchanged; the model that is saved and published is the inner one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from arner.train.data import IGNORE


class PartialLabelLoss(nn.Module):
    """Mean over labelled tokens of -log sum of the allowed tags' probabilities; `masks[id]` lists label id's tags."""

    def __init__(self, masks: Sequence[Sequence[bool]] | torch.Tensor):
        super().__init__()
        # not persistent: the table comes from the label maps, not from a checkpoint
        self.register_buffer("masks", torch.as_tensor(masks, dtype=torch.bool), persistent=False)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        active = labels != IGNORE
        return self.per_token(logits, labels, active).sum() / active.sum()

    def per_token(self, logits: torch.Tensor, labels: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        """Each position's loss, 0 where the label is IGNORE (static shapes: no boolean indexing, for torch.compile)."""
        active = labels != IGNORE if active is None else active
        # in fp32 under mixed precision, as transformers' cross-entropy is
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        allowed = self.masks[labels.masked_fill(~active, 0)]
        # logsumexp of one finite entry is that entry, so a single-tag label gives exactly -log_softmax: the cross-entropy
        token = -torch.logsumexp(log_probs.masked_fill(~allowed, float("-inf")), dim=-1)
        return token.masked_fill(~active, 0.0)


class PartialLabelModel(nn.Module):
    """A token classifier whose loss is `PartialLabelLoss`: `model(**batch).loss` as the loop expects.

    `.model` is the Hugging Face model (7 IOB2 labels in its config), the one to save and publish.
    """

    def __init__(self, model: nn.Module, masks: Sequence[Sequence[bool]] | torch.Tensor):
        super().__init__()
        self.model = model
        self.loss = PartialLabelLoss(masks)

    def forward(self, labels: torch.Tensor | None = None, **inputs):
        from transformers.modeling_outputs import TokenClassifierOutput

        logits = self.model(**inputs).logits
        loss = self.loss(logits, labels) if labels is not None else None
        return TokenClassifierOutput(loss=loss, logits=logits)


def inner(model: nn.Module) -> nn.Module:
    """The Hugging Face model inside a `PartialLabelModel` (any other model as it is)."""
    return model.model if isinstance(model, PartialLabelModel) else model
