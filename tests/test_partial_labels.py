"""Partial-label (marginal likelihood) training: the loss by hand, the label-set registry, the wrapper model."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from arner.core.conventions import TAG2ID, TAGS, words
from arner.core.public import PartialDocument, allowed_tags
from arner.train.data import IGNORE, TagSets, continuation, window_examples
from arner.train.partial import PartialLabelLoss, PartialLabelModel, inner

from conftest import ANNOTATIONS, REPO

# a 3-tag toy: ids 0-2 the tags, 3 = {0, 1}, 4 = {1, 2}
TOY_MASKS = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]]
# logits log(1), log(2), log(1): probabilities exactly 1/4, 1/2, 1/4
TOY_LOGITS = torch.log(torch.tensor([[[1.0, 2.0, 1.0]]]))


def toy_loss(label: int, logits: torch.Tensor = TOY_LOGITS) -> torch.Tensor:
    return PartialLabelLoss(torch.tensor(TOY_MASKS, dtype=torch.bool))(logits, torch.tensor([[label]]))


def test_toy_losses_by_hand():
    assert toy_loss(1).item() == pytest.approx(-math.log(0.5))
    assert toy_loss(0).item() == pytest.approx(-math.log(0.25))
    assert toy_loss(3).item() == pytest.approx(-math.log(0.75))  # p(0) + p(1)
    assert toy_loss(4).item() == pytest.approx(-math.log(0.75))  # p(1) + p(2)
    # a mean over the labelled tokens: (-log .5 - log .75) / 2, the IGNORE position left out
    logits = TOY_LOGITS.repeat(1, 3, 1)
    loss = PartialLabelLoss(torch.tensor(TOY_MASKS, dtype=torch.bool))(logits, torch.tensor([[1, IGNORE, 3]]))
    assert loss.item() == pytest.approx((-math.log(0.5) - math.log(0.75)) / 2)


def test_single_tag_labels_are_exactly_the_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(4, 9, len(TAGS)) * 3
    labels = torch.randint(0, len(TAGS), (4, 9))
    labels[0, :3] = IGNORE
    labels[2, -1] = IGNORE
    loss = PartialLabelLoss(TagSets().masks())
    expected = F.cross_entropy(logits.view(-1, len(TAGS)), labels.view(-1), ignore_index=IGNORE, reduction="none").view(4, 9)
    assert torch.equal(loss.per_token(logits, labels), expected)  # token by token, bit for bit
    mean = F.cross_entropy(logits.view(-1, len(TAGS)), labels.view(-1), ignore_index=IGNORE)
    assert torch.allclose(loss(logits, labels), mean, rtol=1e-6, atol=0)


def test_ignored_positions_change_nothing_and_get_no_gradient():
    logits = TOY_LOGITS.repeat(1, 2, 1).clone().requires_grad_(True)
    labels = torch.tensor([[3, IGNORE]])
    loss_fn = PartialLabelLoss(torch.tensor(TOY_MASKS, dtype=torch.bool))
    loss = loss_fn(logits, labels)
    loss.backward()
    assert loss.item() == pytest.approx(toy_loss(3).item())
    assert torch.equal(logits.grad[0, 1], torch.zeros(3))
    other = logits.detach().clone()
    other[0, 1] = torch.tensor([50.0, -50.0, 7.0])  # anything at the ignored position
    assert loss_fn(other, labels).item() == loss.item()


def test_gradient_moves_only_the_allowed_sets_total():
    logits = TOY_LOGITS.clone().requires_grad_(True)
    toy_loss(3, logits).backward()
    # d/dz_j of -log P(S): p_j - p_j / P(S) inside S, p_j outside: p = (1/4, 1/2, 1/4), P(S) = 3/4
    assert logits.grad[0, 0].tolist() == pytest.approx([0.25 - 0.25 / 0.75, 0.5 - 0.5 / 0.75, 0.25])
    assert logits.grad.sum().item() == pytest.approx(0.0, abs=1e-7)
    # inside S the gradient keeps the model's own split: proportional to p, so no member is favoured
    assert (logits.grad[0, 0, 0] / logits.grad[0, 0, 1]).item() == pytest.approx(0.25 / 0.5)
    # moving mass between the members of S leaves the loss where it was
    swapped = torch.log(torch.tensor([[[2.0, 1.0, 1.0]]]))
    assert toy_loss(3, swapped).item() == pytest.approx(toy_loss(3).item())


def test_registry_ids_are_deterministic_and_tags_map_to_themselves():
    maps = [{"LOC": ("ACTOR", "PLACE"), "O": ("O", "DATE")}, {"PER": ("ACTOR",), "MIS": ("ACTOR", "O")}]
    a, b = TagSets.from_maps(maps), TagSets.from_maps(list(reversed(maps)))
    assert a.sets == b.sets and a.ids == b.ids
    assert a.encode(["B-PLACE", "B-ACTOR"]) == a.encode(("B-ACTOR", "B-PLACE")) >= len(TAGS)
    assert a.encode(["I-ACTOR"]) == TAG2ID["I-ACTOR"]
    assert a.encode(TAGS) == IGNORE  # every tag allowed: nothing to learn
    with pytest.raises(KeyError, match="not in the registry"):
        a.encode(["B-DATE", "B-PLACE"])
    masks = a.masks()
    assert masks[: len(TAGS)] == [[i == j for j in range(len(TAGS))] for i in range(len(TAGS))]
    for tags, i in a.ids.items():
        assert [t for t, on in zip(TAGS, masks[i]) if on] == list(tags)
    assert continuation(allowed_tags("B", ("ACTOR", "PLACE"))) == allowed_tags("I", ("ACTOR", "PLACE"))


def test_partial_document_labels_its_words_first_subwords():
    from arner.train.model import train_wordpiece

    text = "زار موسكو يوم الجمعة"
    ws = words(text)
    sets = [allowed_tags("B", ("O", "DATE")), allowed_tags("B", ("ACTOR", "PLACE"))] + [allowed_tags("B", ("O", "DATE"))] * 2
    doc = PartialDocument("d", text, [], sets)
    registry = TagSets.from_maps([{"LOC": ("ACTOR", "PLACE"), "O": ("O", "DATE")}])
    with pytest.raises(ValueError, match="needs the run's TagSets registry"):
        window_examples(train_wordpiece([text], vocab_size=40), doc, 64, 8)
    tokenizer = train_wordpiece([text], vocab_size=40)
    (ex,) = window_examples(tokenizer, doc, 64, 8, label_sets=registry)
    labelled = [label for label in ex["labels"] if label != IGNORE]
    assert labelled == [registry.encode(s) for s in sets] and len(ws) == 4
    (all_subwords,) = window_examples(tokenizer, doc, 64, 8, label_all_subwords=True, label_sets=registry)
    pieces = len(tokenizer.tokenize("موسكو"))
    assert pieces > 1  # the tiny vocabulary splits it, so its later subwords take the continuation set
    assert all_subwords["labels"].count(registry.encode(continuation(sets[1]))) == pieces - 1


def tiny_bert():
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=len(TAGS)
    )
    return BertForTokenClassification(config).eval()


def test_wrapper_gives_the_inner_models_loss_on_single_tags_and_saves_only_the_inner_model():
    model = tiny_bert()
    wrapped = PartialLabelModel(model, TagSets().masks())
    ids = torch.randint(0, 50, (2, 7))
    labels = torch.randint(0, len(TAGS), (2, 7))
    labels[:, 0] = IGNORE
    out = wrapped(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
    plain = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
    assert torch.allclose(out.loss, plain.loss, rtol=1e-6) and torch.equal(out.logits, plain.logits)
    assert inner(wrapped) is model and inner(model) is model
    assert not any("masks" in k for k in wrapped.state_dict())  # checkpoints hold the weights only
    assert wrapped(input_ids=ids).loss is None


def test_a_run_with_set_valued_maps_publishes_a_plain_seven_label_model(tmp_path):
    """A tiny end-to-end run: articles plus a toy corpus whose LOC is ACTOR|PLACE and whose O may be DATE."""
    from transformers import AutoModelForTokenClassification

    from arner.eval.training import train
    from arner.train.config import load_config

    corpus = tmp_path / "ext" / "toy"
    corpus.mkdir(parents=True)
    sentence = "قال O\nفلاديمير B-PERS\nبوتين I-PERS\nفي O\nموسكو B-LOC\nأمس O\n\n"
    (corpus / "train.conll").write_text(sentence * 30, encoding="utf-8")
    (corpus / "sets.tsv").write_text("source\ttargets\tnote\nPERS\tACTOR\tx\nLOC\tACTOR|PLACE\tx\nO\tO|DATE\tx\n", encoding="utf-8")
    entry = "{name: toy, files: [toy/train.conll], label_map: toy/sets.tsv, weight: 0.5}"
    overrides = [f"annotations={ANNOTATIONS}", f"external_root={tmp_path / 'ext'}", f"extra_train=[{entry}]"]
    overrides += ["epochs=1", "progress_bar=false", "tiny.hidden_size=32", "tiny.intermediate_size=64", "max_length=64", "stride=16"]
    out = tmp_path / "run"
    train(load_config(REPO / "configs" / "tiny.yaml", overrides), out)
    model = AutoModelForTokenClassification.from_pretrained(out)
    assert model.config.id2label == dict(enumerate(TAGS))
    meta = json.loads((out / "arner.json").read_text(encoding="utf-8"))
    toy = meta["extra_train"]["toy"]
    # 30 sentences make 2 documents, weight 0.5 keeps one; 4 of each sentence's 6 words allow several tags
    assert toy["documents"] == 1 and toy["words_with_tag_sets"] * 6 == toy["words"] * 4
    assert math.isfinite(meta["metrics"]["final_loss"])
