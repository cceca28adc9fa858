"""The model card (README.md) of the shipped encoder, in the Hugging Face format: YAML front matter, then Markdown.

Everything in it comes from the run's `arner.json` (config, inputs read, metrics, cumulative
tokens and steps), the probes run at shipping time and the fingerprints of the shipped files.
"""

from __future__ import annotations

# What each text input is and under which terms it was read (../shared/external/*/README.md).
SOURCES = {
    "saudinewsnet": ("SaudiNewsNet: 2015 Saudi newspaper articles", "CC BY-NC-SA 4.0, research use only; articles owned by the newspapers"),
    "ant-multisource": (
        "ANT multi-source: 2018 pan-Arab news sites (Al Arabiya, BBC, CNN, France24, Sky News)",
        "research use with citation (Chouigui et al. 2021); articles owned by the sites",
    ),
    "ant-jawharafm": (
        "ANT JawharaFM: Tunisian radio news",
        "Apache 2.0 with a citation request (Chouigui et al. 2017); articles owned by Jawhara FM",
    ),
    "arwiki-comparable": ("Arabic Wikipedia (WikiDocsAligner comparable corpus)", "CC BY-SA 4.0"),
    "anercorp": ("ANERcorp training split (tokens only, no labels)", "CC BY-SA 4.0 (CAMeL Lab splits)"),
    "newsfane_gold": ("NewsFANE Gold (tokens only)", "CC BY-SA 3.0"),
    "aqmar": ("AQMAR Wikipedia NER corpus (tokens only)", "CC BY-SA 3.0"),
    "wojood_sample": ("Wojood sample, train and validation splits (tokens only)", "MIT"),
}
FRONT_MATTER = """---
language:
- ar
license: other
license_name: research-non-commercial
library_name: transformers
tags:
- electra
- arabic
- replaced-token-detection
- arner
---
"""


def source_of(path: str) -> str:
    for key in SOURCES:
        if f"/{key}/" in path.replace("\\", "/"):
            return key
    return ""


def data_table(inputs: list[dict]) -> str:
    rows = ["| input | what | units read | characters | terms |", "| --- | --- | ---: | ---: | --- |"]
    for x in inputs:
        what, terms = SOURCES.get(source_of(x.get("path", "")), ("", "see the file's own README"))
        rows.append(f"| `{x.get('path', '')}` | {what} | {x.get('units', 0):,} | {x.get('chars', 0):,} | {terms} |")
    return "\n".join(rows)


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
        "Read from `../shared/external` at run time; no text is in this folder or the repository. Not inputs:",
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
    return FRONT_MATTER + "\n" + "\n".join(body)
