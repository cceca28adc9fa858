"""Bench reports: `<out>/<device>/<name>.json` (every figure), `<name>.md`, the inference plot, the command line."""

from __future__ import annotations

import json
from pathlib import Path

from arner.core import atomic, commands
from arner.core.tables import table


def command_line(bench: str, options: dict) -> str:
    """The `arner bench ...` command that reproduces a run (every option spelled out)."""
    return commands.command_line(["arner", "bench", bench], options, lists="comma")


def write_report(report: dict, out: Path, markdown: str) -> None:
    folder = Path(out) / report["device"]
    atomic.write_text(folder / f"{report['name']}.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    atomic.write_text(folder / f"{report['name']}.md", markdown)


def _header(report: dict, title: str) -> list[str]:
    m, v = report["machine"], report["versions"]
    hw = f"{m['cpu']}, {m['cpu_cores']} cores ({m['torch_threads']} torch threads), {m['memory_gb']} GiB"
    if m["gpu"]:
        hw += f"; GPU {m['gpu']} ({m['gpu_memory_gb']} GiB, CUDA {m['cuda']})"
    return [
        f"# {title}",
        "",
        f"`{report['command']}`",
        "",
        f"Machine: {hw}. Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".",
        "",
        f"Load average (1 min) at start and end: {report['load_average']['start'][0]:.2f}, {report['load_average']['end'][0]:.2f} "
        f"(anything else running on the machine slows both sides); best of {report['repeats']} repeat(s) per figure.",
        "",
    ]


def _targets(report: dict) -> list[str]:
    lines = ["## Targets", ""]
    for t in report["targets"]:
        state = "not measurable here" if t["reached"] is None else "**reached**" if t["reached"] else "**missed**"
        lines.append(f"- {t['target']}: {t['value']} → {state}")
    return lines + [""]


def _train_row(label: str, x: dict, device: str) -> list[str]:
    mfu = f"{x['mfu']:.1%}" if x["mfu"] is not None else "n/a (CPU)" if device == "cpu" else "n/a (unknown peak)"
    return [
        label,
        x["precision"],
        f"{x['tokens_per_second']:,.0f}",
        f"{x['sequences_per_second']:.2f}",
        f"{x['step_seconds'] * 1000:,.1f}",
        f"{x['padding_fraction']:.1%}",
        f"{x['peak_memory_mb']:,.0f}",
        mfu,
    ]


def train_markdown(r: dict) -> str:
    d, o, h = r["data"], r["ours"], r["trainer"]
    mem = "CUDA max allocated" if r["device"] != "cpu" else "peak RSS of the process during that side's run"
    header = ["loop", "precision", "real tokens/s", "sequences/s", "step ms", "padding", "peak memory MB", "MFU"]
    rows = [
        _train_row("arner (`arner.train.finetune.train`)", o, r["device"]),
        _train_row("HF `Trainer` (run_ner.py defaults)", h, r["device"]),
    ]
    lines = _header(r, f"Training throughput: {r['model']['name']} on {r['device']}") + [
        f"Model `{r['model']['name']}` ({r['model']['parameters']:,} parameters, random weights). Data: {d['documents']} whole articles "
        f"(the five annotated ones, repeated and shuffled; {d['subword_tokens']:,} subwords) → {d['windows']} windows of at most "
        f"{r['config']['max_length']} subwords (stride {r['config']['stride']}), mean {d['mean_window_length']}, batch size "
        f"{r['config']['batch_size']}, {d['steps_per_epoch']} steps per epoch. Measured: epochs {r['measured_epochs']}.",
        "",
        *table(header, rows),
        "",
        f"**Ratio (tokens/s, arner / Trainer): {r['ratio_tokens_per_second']:.2f}x.** Each repeat (arner / Trainer tokens/s): "
        + ", ".join(f"{x['ours']:,.0f} / {x['trainer']:,.0f}" for x in r["repeat_tokens_per_second"])
        + ".",
        "",
        f"Real tokens exclude padding (special tokens included). Peak memory: {mem}. FLOPs per token "
        f"{r['flops_per_token'] / 1e6:,.1f} MFLOP (6 x non-embedding parameters + 12 x layers x hidden x "
        f"{d['token_weighted_window_length']}, the token-weighted window length). Trainer: optimizer {h['optimizer']}, "
        f"attention {h['attention']}, random sampling, `DataCollatorForTokenClassification` without padding to a multiple. "
        f"arner: length-grouped batches {o['length_grouping']}, padding to a multiple of {o['pad_to_multiple_of']}.",
        "",
        "Where the difference can come from (measured): precision "
        f"{o['precision']} vs {h['precision']}; padding {o['padding_fraction']:.1%} vs {h['padding_fraction']:.1%} of the tokens "
        "fed to the model; the arithmetic per real token is otherwise the same model and the same windows.",
        "",
    ]
    return "\n".join(lines + _targets(r))


def _infer_row(label: str, x: dict) -> list[str]:
    return [
        label,
        str(x["batch_size"]),
        f"{x['documents_per_second']:,.2f}",
        f"{x['tokens_per_second']:,.0f}",
        f"{x['model_forward_share']:.0%}",
        str(x["entities_per_document"]),
        f"{x['peak_memory_mb']:,.0f}",
    ]


def _sweep_table(r: dict, sweep: str, first: str, key: str) -> list[str]:
    """Tagger against pipeline at each point of a sweep."""
    rows = []
    for t, p in zip(r[sweep]["tagger"], r[sweep]["pipeline"]):
        a, b = t["documents_per_second"], p["documents_per_second"]
        rows.append([t[key], t["documents"], f"{a:,.2f}", f"{b:,.2f}", f"{a / b:.2f}"])
    return table([first, "documents", "Tagger docs/s", "pipeline docs/s", "ratio"], rows)


def _infer_systems(r: dict) -> list[str]:
    header = ["system", "batch size", "documents/s", "tokens/s", "time in model forward", "entities/doc", "peak memory MB"]
    labels = {
        "tagger_default": "Tagger, default batch size",
        "tagger_best": "Tagger, best batch size",
        "pipeline_default": "pipeline, default batching",
        "pipeline_best": "pipeline, best batch size",
    }
    return table(header, [_infer_row(label, r[key]) for key, label in labels.items()])


def _infer_explanation(r: dict) -> str:
    tb, pb = r["tagger_best"], r["pipeline_best"]
    return (
        "Tagger tokenizes all texts in one call, sorts the windows of all texts by length into batches and decodes words "
        "vectorized; the pipeline tokenizes each text on its own, batches consecutive windows in text order (no sorting by length) "
        "and aggregates words in Python. "
        "Entities per document differ because the pipeline's words include punctuation. "
        f"At its best batch size the pipeline spends {pb['model_forward_share']:.0%} of its time in the model's forward, so faster code "
        f"outside the model can make the Tagger at most {1 / max(pb['model_forward_share'], 1e-9):.1f}x faster; beyond that the gain "
        "must come from running the model on fewer positions or faster (precision). Positions run through the model per document "
        f"token (special tokens, window overlap, padding): Tagger {tb['model_positions_per_token']:.2f}, pipeline "
        f"{pb['model_positions_per_token']:.2f} (each at its best batch size)."
    )


def _precision_note(r: dict) -> str:
    """The Tagger's precision and the host-only mode, for reports that record them (older ones do not)."""
    note = f" Tagger precision: {r['precision']}." if "precision" in r else ""
    if r.get("host_only"):
        note += (
            " **Host only**: both sides run a stand-in model that reads each token's logits from a fixed table "
            "(no matmul), so these figures time tokenization, windows, batching and decoding alone."
        )
    return note


def infer_markdown(r: dict) -> str:
    d, m = r["data"], r["model"]
    lines = _header(r, f"Inference throughput: {r['model']['name']} on {r['device']}") + [
        f"Model `{m['name']}` ({m['parameters']:,} parameters, random weights; O logit {m['o_bias']:+.3f} so that "
        f"{m['entity_word_share']:.1%} of tokens are tagged as entities, the share of words inside spans in the annotations). "
        f"Texts: {d['documents']} whole articles ({d['subword_tokens']:,} subwords, mean {d['mean_document_tokens']}), "
        f"windows of {r['window']['max_length']} subwords with stride {r['window']['stride']} on both sides. "
        f"dtype: Tagger {r['dtype']['tagger']}, "
        f"pipeline {r['dtype']['pipeline']}." + _precision_note(r),
        "",
        *_infer_systems(r),
        "",
        f"**Ratio (documents/s, Tagger / pipeline): {r['ratio_default']:.2f}x at default settings, "
        f"{r['ratio_best']:.2f}x each at its best batch size.**",
        "",
        "Throughput against batch size (all texts):",
        "",
        *_sweep_table(r, "batch_sweep", "batch size", "batch_size"),
        "",
        "Throughput against document length (each at its best batch size):",
        "",
        *_sweep_table(r, "length_sweep", "length (subwords)", "length"),
        "",
        f"![throughput]({r['name']}.png)",
        "",
        _infer_explanation(r),
        "",
    ]
    return "\n".join(lines + _targets(r))


def plot(report: dict, path: Path) -> None:
    """Throughput against batch size and against document length, both sides, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a bench machine
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for system, style in (("tagger", "o-"), ("pipeline", "s--")):
        rows = report["batch_sweep"][system]
        a.plot([r["batch_size"] for r in rows], [r["tokens_per_second"] for r in rows], style, label=system)
        rows = report["length_sweep"][system]
        b.plot(
            [r["length"] for r in rows], [r["documents_per_second"] for r in rows], style, label=f"{system} (batch {rows[0]['batch_size']})"
        )
    a.set(xscale="log", xlabel="batch size (windows)", ylabel="tokens/s", title="throughput vs batch size (full articles)")
    b.set(xscale="log", yscale="log", xlabel="document length (subwords)", ylabel="documents/s", title="throughput vs document length")
    for ax, key, sweep in ((a, "batch_size", "batch_sweep"), (b, "length", "length_sweep")):
        ticks = [r[key] for r in report[sweep]["tagger"]]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    a.set_ylim(bottom=0)
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"arner Tagger vs transformers pipeline: {report['model']['name']} on {report['device']}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
