"""`arner train`: fine-tune a token classifier on the annotations (the loop is `loop.fit`)."""

from __future__ import annotations

from pathlib import Path

from arner import corpus, external
from arner.conventions import ID2TAG, TAG2ID
from arner.train.config import TrainConfig
from arner.train.data import IGNORE, fingerprint, split, window_examples
from arner.train.loop import fit, make_accelerator, prepare_output, publish, save_model
from arner.train.model import resolve


def make_tagger(model, tokenizer, config: TrainConfig, device):
    """A `Tagger` over the model being trained, with the config's inference settings."""
    from arner.inference import Tagger

    return Tagger(model, tokenizer, device, config.eval_batch_size, config.stride, config.max_length, config.trim_proclitics)


def heldout_scores(model, tokenizer, documents: list[corpus.Document], config: TrainConfig, device) -> dict:
    """Strict and partial span scores on held-out documents, as the evaluation computes them."""
    from arner.spanscore import span_scores

    was_training = model.training
    tagger = make_tagger(model, tokenizer, config, device)
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


def external_test_scores(model, tokenizer, config: TrainConfig, device) -> dict:
    """Headline scores on each configured public test corpus (strict per label and loose)."""
    from arner.eval.external import headline, score_corpus

    tagger = make_tagger(model, tokenizer, config, device)

    def predict(texts):
        return [[e.span() for e in doc] for doc in tagger.predict(texts)]

    return {e.name or e.files[0]: headline(score_corpus(predict, e, config.external_root)) for e in config.external_test}


def train(config: TrainConfig, output: str | Path, fold: int | None = None, resume: bool = False, config_path: str = "config") -> dict:
    """Train, write a Hugging Face model folder at `output`, and return the final metrics."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification

    output = Path(output)
    accelerator = make_accelerator(config)
    documents = corpus.load(config.annotations)
    train_docs, heldout_docs = split(documents, fold)
    extra = {entry.name or entry.files[0]: external.load(entry, config.external_root) for entry in config.extra_train}
    article_docs = train_docs if config.train_on_articles else []
    train_docs = article_docs + [d for docs in extra.values() for d in docs]
    checkpoints = prepare_output(accelerator, output, resume)
    if accelerator.is_main_process:
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
    collator = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=config.pad_to_multiple_of, label_pad_token_id=IGNORE)

    def evaluate(m):
        return heldout_scores(m, tokenizer, heldout_docs, config, accelerator.device)

    best = checkpoints / "best"
    model, state = fit(
        accelerator,
        model,
        features,
        collator,
        config,
        output,
        resume,
        evaluate=evaluate if heldout_docs else None,
        score_key="strict_f1",
        on_improve=(lambda m: save_model(m, tokenizer, best)) if config.load_best_model_at_end else None,
    )

    history = state["history"]
    final = {"epochs_run": state["epoch"], "global_step": state["global_step"], "final_loss": history[-1]["loss"] if history else None}
    if accelerator.is_main_process:
        reloaded = bool(heldout_docs) and config.load_best_model_at_end and best.is_dir()
        if reloaded:
            model = AutoModelForTokenClassification.from_pretrained(str(best))
            final["model_epoch"] = state["best_epoch"]
        if heldout_docs:
            final["best_epoch"] = state["best_epoch"]
            # the last epoch's row already scored these weights (unless the best epoch's were reloaded)
            final["heldout"] = evaluate(model) if reloaded or not history else history[-1]["heldout"]
        if config.external_test:
            final["external"] = external_test_scores(model, tokenizer, config, accelerator.device)
        model.config.id2label, model.config.label2id = dict(ID2TAG), dict(TAG2ID)
        meta = {
            "config": config.to_dict(),
            "base_model": config.model
            if config.model != "tiny"
            else "tiny (built offline: WordPiece on the training articles + random BertConfig)",
            "fold": fold,
            "train_docs": [d.doc for d in article_docs],
            "extra_train": {name: {"documents": len(docs), "spans": sum(len(d.spans) for d in docs)} for name, docs in extra.items()},
            "heldout_docs": [d.doc for d in heldout_docs],
            "data_fingerprint": fingerprint(train_docs + heldout_docs),
            "train_fingerprint": fingerprint(train_docs),
            "metrics": final,
        }
        publish(model, tokenizer, output, meta, config.max_length)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return final
