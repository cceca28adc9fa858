"""Model cards (README.md, Hugging Face format) of pretrained encoders: an `arner pretrain` run folder, the shipped encoder.

Everything in them comes from the run's `arner.json` (config, inputs read, metrics, cumulative
tokens and steps); the shipped encoder's card adds the probes run at shipping time and the
fingerprints of the shipped files.
"""

from __future__ import annotations

from arner.core.tables import table
from arner.train import cards

FRONT_MATTER = {  # the shipped encoder: its terms are the narrowest of its sources' (see "Data and terms")
    "language": ["ar"],
    "license": "other",
    "license_name": "research-non-commercial",
    "library_name": "transformers",
    "tags": ["electra", "arabic", "replaced-token-detection", "arner"],
}


def data_table(inputs: list[dict]) -> str:
    rows = []
    for x in inputs:
        source = cards.source_of(x.get("path", ""))
        rows.append([f"`{x.get('path', '')}`", source.what, f"{x.get('units', 0):,}", f"{x.get('chars', 0):,}", source.terms])
    return "\n".join(table(["input", "what", "units read", "characters", "terms"], rows, "llrrl"))


def heads(n: int) -> str:
    return f"{n} head" if n == 1 else f"{n} heads"


def shape_line(discriminator, generator) -> str:
    """The shapes, read from the models' own configs (a continued run's config does not restate them)."""
    d, g = discriminator, generator
    return (
        f"{d.num_hidden_layers} layers of hidden {d.hidden_size} ({heads(d.num_attention_heads)}, feed-forward "
        f"{d.intermediate_size}), embeddings factorized to {d.embedding_size}, {d.max_position_embeddings} positions; "
        f"generator: hidden {g.hidden_size} ({heads(g.num_attention_heads)}, feed-forward {g.intermediate_size}), the same depth"
    )


def heldout_lines(metrics: dict) -> list[str]:
    held = metrics.get("heldout")
    if not held:
        return ["- No held-out rows were kept in this run."]
    first = metrics.get("first_heldout", {})
    keys = [
        ("mlm_loss", "MLM loss (nats per masked subword)"),
        ("perplexity", "perplexity of the masked subwords"),
        ("discriminator_loss", "discriminator loss (binary cross-entropy per subword)"),
        ("replaced_f1", "replaced-subword detection F1"),
        ("replaced_accuracy", "replaced-subword detection accuracy"),
        ("generator_mlm_loss", "generator MLM loss (nats per masked subword)"),
    ]
    lines = []
    for key, what in keys:
        if key in held:
            before = f" (after the first epoch of this run: {first[key]:.4f})" if key in first and metrics.get("epochs_run", 1) > 1 else ""
            lines.append(f"- {what}: **{held[key]:.4f}**{before}")
    cosine = held.get("position_cosine")
    if cosine is not None:
        verdict = "collapsed: every position nearly the same vector" if cosine > 0.9 else "not collapsed"
        lines.append(
            f"- mean cosine between the last-layer vectors of distinct positions: {cosine:.3f} ({verdict}; random weights: about 0.37)"
        )
    share = held.get("replaced_share")
    if share is not None:
        lines.append(
            f'- share of subwords the generator replaced: {share:.4f} (always answering "original" scores accuracy {1 - share:.4f})'
        )
    return lines


def probe_lines(found: dict) -> list[str]:
    lines = ["Fill-mask (the generator's top 5 subwords):", ""]
    for p in found["fill_mask"]:
        lines.append(f"- «{p['text']}» → {', '.join(f'«{t}»' for t in p['top'])}")
    lines += ["", "Replaced-word detection (the discriminator's probability that a word was replaced: the highest over its subwords):", ""]
    for p in found["replaced_token"]:
        lines.append(
            f"- «{p['text']}» with {p['swapped']}: {p['p_replaced_swapped_word']:.3f} on the swapped word, "
            f"{p['p_replaced_other_words_mean']:.3f} on average elsewhere; most suspect word «{p['most_suspect_word']}»"
        )
    return lines


def encoder_card(name: str, meta: dict, found: dict, prints: dict[str, str], command: str, model) -> str:
    """`model`: the shipped `ReplacedTokenDetection` (its configs give the shapes and vocabulary)."""
    config, metrics, total = meta["config"], meta["metrics"], meta["pretraining_total"]
    units = sum(x.get("units", 0) for x in meta.get("inputs", []))
    device = meta.get("device", "?")
    body = [
        f"# {name}: an Arabic ELECTRA encoder pretrained by arner",
        "",
        f"The discriminator of a replaced-token-detection (ELECTRA) pretraining run on {units:,} documents and sentences",
        f"of Arabic news and Wikipedia ({meta['data'].get('tokens', 0):,} subwords), shipped in fp16 as the offline encoder of the arner project.",
        "Fine-tune it for token classification: `arner train --config configs/encoder.yaml` (the five articles)",
        "or `configs/encoder-public.yaml` (with the public corpora), or in plain transformers:",
        "",
        "```python",
        "from transformers import AutoModelForTokenClassification, AutoTokenizer",
        f'tokenizer = AutoTokenizer.from_pretrained("models/{name}")',
        f'model = AutoModelForTokenClassification.from_pretrained("models/{name}", num_labels=7, dtype="float32")',
        "```",
        "",
        "## Model",
        "",
        f"- Shape: {shape_line(model.discriminator.config, model.generator.config)}; a WordPiece vocabulary of "
        f"{model.discriminator.config.vocab_size:,} subwords learned from the text.",
        "- Files: the discriminator (`ElectraForPreTraining`: `config.json`, `model.safetensors`), the generator in `generator/`",
        "  (its own weights; the embeddings are the discriminator's), the tokenizer, `arner.json` (the run's full record).",
        "",
        "## Pretraining so far",
        "",
        f"- Cumulative: **{total['tokens_seen']:,} tokens** in {total['optimizer_steps']:,} optimizer steps over {total['runs']} run(s).",
        f"- This run: {metrics['tokens_seen']:,} tokens, {metrics['global_step']:,} steps, {metrics['train_seconds']:,} s of training on `{device}`,",
        f"  rows of {config['max_length']} subwords, batch {config['batch_size']}, learning rate {config['learning_rate']:g},",
        f"  {'whole-word' if config['whole_word_masking'] else 'subword'} masking of {config['mlm_probability']:g}, "
        f"discriminator weight {config['electra']['discriminator_weight']:g}.",
        f"- Git commit of the code: `{meta.get('git_commit', '?')}`; base: {meta.get('base_model', '?')}.",
        "",
        "Held-out rows (the last state of this run):",
        "",
        *heldout_lines(metrics),
        "",
        "## Probes",
        "",
        *probe_lines(found),
        "",
        "## Data and terms",
        "",
        "Read from `../shared/external` at run time (the NER corpora as token text, without their labels); no text is in this",
        "folder or the repository. Not inputs:",
        "ANERcorp test, the Wojood test split, the five annotated articles. Left out of the inputs: the ANT and",
        "Wikipedia documents that share a word 8-gram with an ANERcorp test sentence (each corpus's",
        "`anercorp_overlap.tsv`; `configs/pretrain-exclude/`) and NewsFANE's sentences that are ANERcorp test text.",
        "",
        data_table(meta.get("inputs", [])),
        "",
        "The weights are derived from all of these. How the terms above carry over to weights is unsettled;",
        "the project uses them for non-commercial research only, the narrowest of the terms above",
        "(SaudiNewsNet's CC BY-NC-SA 4.0, ANT's research-with-citation terms), and cites the sources.",
        "",
        "## Limits",
        "",
        "- Small, and so far briefly trained: compare the cumulative tokens above with ELECTRA-Small's",
        "  1M steps of 128 x 128 tokens (16.8B). Fine-tuned scores are in `reports/encoder/` of the project.",
        "- Modern Standard Arabic news and Wikipedia of 2007-2018; dialects and other domains are thinly covered.",
        "",
        "## How it was made",
        "",
        "The pretraining runs behind these weights, in order, then the shipping:",
        "",
        "```bash",
        *total.get("commands", []),
        command,
        "```",
        "",
        "## Fingerprints (sha256)",
        "",
        "| file | sha256 |",
        "| --- | --- |",
        *[f"| `{f}` | `{h}` |" for f, h in prints.items()],
        "",
    ]
    return cards.front_matter(FRONT_MATTER) + "\n" + "\n".join(body)


# -- the card of an `arner pretrain` run folder ------------------------------------------------------

OBJECTIVES = {  # objective: (title, tags, the pipeline its folder loads in, the held-out figures of its model-index)
    "mlm": (
        "a BERT masked-language model",
        ["fill-mask", "bert"],
        "fill-mask",
        [("mlm_loss", "loss", "held-out MLM loss"), ("perplexity", "perplexity", "held-out perplexity")],
    ),
    "electra": (
        "an ELECTRA encoder (replaced-token detection)",
        ["electra", "replaced-token-detection"],
        None,  # the discriminator detects replaced tokens: no transformers pipeline does that
        [("replaced_f1", "f1", "held-out replaced-subword F1"), ("discriminator_loss", "loss", "held-out discriminator loss")],
    ),
}


def pretrain_front(name: str, meta: dict) -> str:
    config, objective = meta["config"], meta["config"]["objective"]
    _, tags, pipeline, figures = OBJECTIVES[objective]
    base = None if config["model"] == "scratch" else config["model"]
    licences = [(cards.source_of(x.get("path", "")).license, None) for x in meta.get("inputs", []) if x.get("units", 1)]
    if base is not None:
        licences.append(cards.folder_licence(base))
    held = meta.get("metrics", {}).get("heldout") or {}
    task = "fill-mask" if objective == "mlm" else "feature-extraction"
    results = [
        cards.eval_result(task, "arner-pretraining-text", "held-out packed rows", "held out", metric, what, held[key])
        for key, metric, what in figures
        if key in held
    ]
    datasets = sorted({key for x in meta.get("inputs", []) if x.get("units", 1) and (key := cards.source_key(x.get("path", "")))})
    fields = {
        "language": ["ar"],
        **cards.combined_licence(licences or [("", None)]),
        "library_name": "transformers",
        "pipeline_tag": pipeline,
        "tags": [*tags, "pretraining", *cards.TAGS],
        "base_model": cards.hub_id(base) if base else None,
        "datasets": datasets,
    }
    return cards.front_matter(fields, results, model_name=name)


def pretrain_card(name: str, meta: dict, path: str | None = None) -> str:
    """The card of the `arner pretrain` run folder named `name`, from its arner.json record; `path` (default `name`) loads it."""
    path = path or name
    config, metrics, data = meta["config"], meta.get("metrics", {}), meta.get("data", {})
    total = meta.get("pretraining_total", {})
    title, _, pipeline, _ = OBJECTIVES[config["objective"]]
    shape = config["bert"]
    use = [f'pipeline("fill-mask", model="{path}")' if pipeline else f'AutoModelForPreTraining.from_pretrained("{path}")']
    origin = "from scratch" if config["model"] == "scratch" else "continuing `" + config["model"] + "`"
    body = [
        f"# {name}: {title} for Arabic, pretrained by arner",
        "",
        f"Made by `arner pretrain` {origin}; fine-tune it for the project's NER like any checkpoint:",
        "",
        "```bash",
        f"arner train --config configs/tiny.yaml --set model={path}",
        "```",
        "",
        f"or load it with transformers: `{use[0]}`.",
        "",
        "## Model",
        "",
        f"- Base: {meta.get('base_model', config['model'])}.",
        f"- Shape (from scratch: the config's `bert` section): {shape['num_hidden_layers']} layers of hidden {shape['hidden_size']} "
        f"({heads(shape['num_attention_heads'])}), {shape['max_position_embeddings']} positions."
        if config["model"] == "scratch"
        else "- Shape: the base model's (`config.json`).",
        "- `work/` beside the model is the run's cache (tokenizer, packed rows): not part of the model; delete it or leave it out of an upload.",
        "",
        "## Data",
        "",
        "Read at run time (CoNLL corpora as text only, without their labels):",
        "",
        data_table(meta.get("inputs", [])),
        "",
        f"Packed into {data.get('rows', 0):,} rows of at most {config['max_length']} subwords ({data.get('tokens', 0):,} subwords).",
        "",
        "## Training",
        "",
        f"- This run: {metrics.get('tokens_seen', 0):,} tokens seen in {metrics.get('global_step', 0):,} optimizer steps "
        f"({metrics.get('epochs_run', 0)} epochs, {metrics.get('train_seconds', 0):,} s on `{meta.get('device', '?')}`).",
        f"- Cumulative, with the runs the base continued: **{total.get('tokens_seen', 0):,} tokens** in {total.get('runs', 1)} run(s).",
        f"- Batch {config['batch_size']} (per process), learning rate {config['learning_rate']:g}, warmup ratio {config['warmup_ratio']:g}, "
        f"{'whole-word' if config['whole_word_masking'] else 'subword'} masking of {config['mlm_probability']:g}, seed {config['seed']}.",
        "",
        "Held-out rows (left out of training), at the end of the run:",
        "",
        *heldout_lines(metrics),
        "",
        "## Limits",
        "",
        "- Small and briefly trained next to published Arabic encoders (AraBERT, CAMeLBERT: billions of tokens).",
        "- Modern Standard Arabic news and encyclopedic text; dialects and other domains are thinly covered.",
        "- The terms of the text above carry over to the weights in ways that are unsettled: the front matter's licence only summarizes them.",
        "",
        *cards.how_made(total.get("commands", []), meta.get("git_commit")),
        "",
    ]
    return pretrain_front(name, meta) + "\n" + "\n".join(body)
