"""results.json of scripts/pretrain_experiment.py → report.md: settings, commands and tables of figures, no conclusions.

The conclusions are written once, by hand, in FINDINGS.md beside the report, which the report links to:
a sentence chosen by an `if` on the numbers reads as a finding whatever the numbers turn out to be.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from pathlib import Path

from arner.core.tables import table

REPO = Path(__file__).resolve().parents[1]
EXTERNAL_ROOT = "../shared/external"
PROBE = "قال وزير الخارجية الروسي [MASK] لافروف إن المحادثات مع الوفد الأمريكي كانت مفيدة"
SCRATCH, CRF_NAME = "tiny (scratch)", "crf"
FIGS = ("span_partial_micro_f1", "word_micro_f1", "span_strict_ACTOR_f1", "span_strict_PLACE_f1", "span_strict_DATE_f1")
FINDINGS = "Conclusions: see [FINDINGS.md](FINDINGS.md) (written by hand from these tables)."
METHOD = (
    "Leave-one-article-out CV on the five annotated articles (pooled over the five held-out articles, 95% paragraph-bootstrap "
    "intervals) and the ANERcorp test split (CAMeL Lab split, 918 sentences; strict per mapped label: PERS/ORG → ACTOR, "
    "LOC → PLACE, MISC dropped; *loose* merges ACTOR and PLACE, so a country's role does not count)."
)


# ---------------------------------------------------------------- names and formats


def f3(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def interval(block: dict) -> str:
    return f"{f3(block['estimate'])} [{f3(block['low'])}, {f3(block['high'])}]"


def mean_std(block: dict) -> str:
    return f"{f3(block['mean'])} ± {f3(block['std'])}"


def code(text: object) -> str:
    return f"`{text}`"


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def shape(run: dict) -> str:
    """The model's shape in a system name ('tiny' for the shape of configs/tiny.yaml); results.json keys systems by it."""
    b = run["config"]["bert"]
    layers, hidden = b["num_hidden_layers"], b["hidden_size"]
    return "tiny" if (layers, hidden) == (2, 128) else f"{layers}-layer, hidden {hidden},"


def label(run: dict) -> str:
    return f"{shape(run)} pretrained, {run['metrics']['tokens_seen'] / 1e6:.1f}M tokens"


def strict(system: dict) -> dict:
    return system["cv"]["pooled"]["span_strict_micro_f1"]


def finetune_config(r: dict, run: dict | None) -> str:
    """The fine-tuning config of a system (results.json before `--finetune` existed have none: the scratch one)."""
    return (run or {}).get("finetune_config", r["config"])


@functools.cache
def recipe(path: str) -> str:
    """A fine-tuning config's recipe in words (lr, epochs), the file read once."""
    import yaml

    cfg = yaml.safe_load((REPO / path).read_text(encoding="utf-8"))
    return f"lr {float(cfg['learning_rate']):g}, {cfg['epochs']} epochs"


def load_sensitivity(out: Path) -> list[dict]:
    """`arner cv` runs under out/sensitivity/ (other fine-tuning recipes for a pretrained model), if any."""
    rows = []
    for path in sorted(out.glob("sensitivity/*/metrics.json")):
        m = json.loads(path.read_text(encoding="utf-8"))
        strict_f1 = m["systems"]["bert"]["pooled"]["span_strict_micro_f1"]
        rows.append({"folder": str(path.parent.relative_to(out)), "command": m["command"], "strict": strict_f1})
    return rows


# ---------------------------------------------------------------- sections


def settings_section(r: dict, out: str) -> list[str]:
    d = r["device"]
    rows: list[tuple[str, object]] = [
        ("command", code(r["command"])),
        ("report rewritten from results.json by", code(f"python scripts/pretrain_experiment.py --report-only --out {out}")),
        ("device", d["device"]),
        ("CPU cores", d["cpu_cores"]),
        ("torch threads", d["torch_threads"]),
        ("load average at the end (1, 5, 15 min)", ", ".join(f"{x:g}" for x in d["load_average_at_end"])),
    ]
    if "versions" in d:  # recorded since the machine description came from arner.core.machine
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in d["versions"].items())))
    return ["## Settings", "", *table(["setting", "value"], rows), "", METHOD, ""]


def systems_section(r: dict) -> list[str]:
    scratch = "BERT, 2 layers, hidden 128; WordPiece vocabulary and weights from nothing, trained on the four training articles only"
    rows = [(SCRATCH, code(r["config"]), recipe(r["config"]), scratch, "–")]
    for run in r["runs"]:
        b, path = run["config"]["bert"], finetune_config(r, run)
        model = f"`{run['dir']}`: BERT, {b['num_hidden_layers']} layers, hidden {b['hidden_size']}"
        rows.append((label(run), code(path), recipe(path), model, code(f"arner pretrain --config {run['config_path']}")))
    rows.append((CRF_NAME, "–", "–", "the CRF baseline of `arner cv`", "–"))
    header = ["system", "fine-tuning config", "recipe", "initial model", "pretraining"]
    return ["## Systems", "", *table(header, rows), ""]


def results_table(systems: dict) -> list[str]:
    header = [
        "system",
        "strict span F1 (pooled) [95%]",
        "partial F1",
        "word micro F1",
        "ACTOR",
        "PLACE",
        "DATE",
        "strict F1 per fold (mean ± std)",
        "ANERcorp test strict F1 (all 5 articles)",
        "loose F1",
        "ANERcorp test strict F1, fold models (mean ± std)",
    ]
    rows = []
    for name, s in systems.items():
        pooled, ext = s["cv"]["pooled"], s["anercorp_test"]
        per_fold = {"mean": s["cv"]["mean"]["span_strict_micro_f1"], "std": s["cv"]["std"]["span_strict_micro_f1"]}
        rows.append(
            [
                name,
                f"**{f3(strict(s)['estimate'])}** [{f3(strict(s)['low'])}, {f3(strict(s)['high'])}]",
                *(f3(pooled[f]["estimate"]) for f in FIGS),
                mean_std(per_fold),
                f"**{f3(ext['strict_f1'])}**",
                f3(ext["loose_f1"]),
                mean_std(s["anercorp_test_folds"]["strict_f1"]),
            ]
        )
    return table(header, rows, "l" + "r" * 10)


def results_section(r: dict) -> list[str]:
    systems = r["systems"]
    per_fold = [[name, *(f3(f["span_strict_micro_f1"]) for f in s["cv"]["per_fold"])] for name, s in systems.items()]
    links = [f"[{name}]({s['cv_folder']}/report.md)" for name, s in systems.items() if name != CRF_NAME]
    crf_folder = systems[CRF_NAME]["cv_folder"]
    return [
        "## Results",
        "",
        *results_table(systems),
        "",
        "Per fold, strict span F1 (held-out article K):",
        "",
        *table(["system", *(f"fold {k}" for k in range(5))], per_fold, "lrrrrr"),
        "",
        f"Full CV reports (tables, errors, plots): {', '.join(links)} (the CRF is in [{crf_folder}]({crf_folder}/report.md)). "
        "The same CV from the command line:",
        "",
        *(f"- `{c}`" for c in r["cv_commands"]),
        "",
    ]


def pretraining_vs_finetuning(r: dict) -> list[str]:
    """Per pretrained system: what its pretraining learned beside what it scored (nats: frequency-only loss minus MLM loss)."""
    systems = r["systems"]
    scratch = strict(systems[SCRATCH])["estimate"]
    rows = []
    for run in r["runs"]:
        s, m = systems[label(run)], run["metrics"]
        loss = m["heldout"]["mlm_loss"]
        rows.append(
            [
                label(run),
                f"{m['global_step']:,}",
                f"{m['tokens_seen']:,}",
                f"{m['train_seconds'] / 60:.1f}",
                f"{loss:.2f}",
                f"{run['unigram_entropy']:.2f}",
                f"{run['unigram_entropy'] - loss:.2f}",
                ", ".join(f"«{x['token']}»" for x in run["fill_mask"][:3]),
                interval(strict(s)),
                f"{strict(s)['estimate'] - scratch:+.3f}",
                f3(s["anercorp_test"]["strict_f1"]),
            ]
        )
    header = [
        "system",
        "pretraining steps",
        "tokens seen",
        "training minutes",
        "held-out MLM loss",
        "frequency-only loss",
        "nats under frequency-only",
        "probe: top 3 fills",
        "articles strict F1 [95%]",
        "Δ vs scratch",
        "ANERcorp test strict F1",
    ]
    intro = (
        "MLM losses in nats on the held-out rows; *frequency-only loss*: the entropy of the subword frequencies of the packed "
        f"text, the loss of a model that ignores context; the probe is «{PROBE}»."
    )
    return ["## Pretraining beside fine-tuning", "", intro, "", *table(header, rows, "lrrrrrrlrrr"), ""]


def finetuning_section(r: dict) -> list[str]:
    systems = r["systems"]
    named = [(SCRATCH, None)] + [(label(run), run) for run in r["runs"]]
    rows = []
    for name, run in named:
        f = systems[name]["finetuning"]
        rows.append(
            [
                name,
                recipe(finetune_config(r, run)),
                f"{f['mean_best_epoch']:.1f}",
                f3(f["mean_best"]),
                f3(f["mean_final"]),
                f"{f['mean_loss_epoch_5']:.2f}",
            ]
        )
    header = ["system", "recipe", "epoch of the best", "best held-out strict F1", "final held-out strict F1", "training loss after epoch 5"]
    intro = (
        "Means over the five folds of the held-out article's strict F1 after each epoch. The held-out article is the test "
        "article: these describe training; nothing is chosen on them."
    )
    return ["## Fine-tuning curves (diagnostics)", "", intro, "", *table(header, rows, "llrrrr"), ""]


def sensitivity_section(r: dict) -> list[str]:
    rows = r.get("sensitivity") or []
    if not rows:
        return []
    cells = [(f"[{x['folder'].split('/')[-1]}]({x['folder']}/report.md)", code(x["command"]), interval(x["strict"])) for x in rows]
    intro = (
        "The same CV with one setting of the fine-tuning config changed (every other setting, the pretrained model and the folds "
        "the same), read on the test articles."
    )
    return [
        "## Fine-tuning recipe: other settings (diagnostics)",
        "",
        intro,
        "",
        *table(["run", "command", "strict span F1 (pooled) [95%]"], cells),
        "",
    ]


def run_settings(run: dict) -> list[tuple[str, object]]:
    """One pretraining run's settings and figures, a row each."""
    pre, data, cfg = run["metrics"], run["data"], run["config"]
    b, tok = cfg["bert"], cfg["tokenizer"]
    speeds = sorted(x["tokens_per_second"] for x in run["step_rows"]) or [0.0]
    return [
        ("text units (CoNLL sentences, SaudiNewsNet articles)", f"{sum(e['units'] for e in run['inputs']):,}"),
        ("characters", f"{sum(e['chars'] for e in run['inputs']):,}"),
        ("packed rows × subwords", f"{data['rows']:,} × {data['max_length']}"),
        ("packed tokens", f"{data['tokens']:,}"),
        ("`max_tokens` (0: no cap); reached", f"{cfg['max_tokens']:,}; {yes_no(data['capped'])}"),
        ("rows held out for the MLM loss", pre["heldout_sequences"]),
        ("tokenizer", f"WordPiece, {tok['vocab_size']:,} subwords, learned from the first {tok['max_chars']:,} characters"),
        (
            "model",
            f"BERT, {b['num_hidden_layers']} layers, hidden {b['hidden_size']}, {b['num_attention_heads']} heads, "
            f"intermediate {b['intermediate_size']}, {b['max_position_embeddings']} positions",
        ),
        ("parameters", f"{run['parameters']:,}"),
        ("masking", f"{'whole-word' if cfg['whole_word_masking'] else 'token-level'}, {cfg['mlm_probability']:.0%}"),
        ("batch", f"{cfg['batch_size']} × {cfg['max_length']}"),
        ("optimizer", f"AdamW lr {cfg['learning_rate']:g}, warmup {cfg['warmup_ratio']:.0%}, linear decay"),
        ("epochs, steps", f"{pre['epochs_run']}, {pre['global_step']:,}"),
        ("tokens seen", f"{pre['tokens_seen']:,}"),
        ("minutes: training; with tokenizer and packing", f"{pre['train_seconds'] / 60:.1f}; {pre['wall_seconds'] / 60:.1f}"),
        ("device (torch threads)", f"{run['device']} ({run['torch_threads']})"),
        (
            "tokens/s: mean; range over the logged windows",
            f"{pre['tokens_seen'] / max(pre['train_seconds'], 1):,.0f}; {speeds[0]:,.0f} to {speeds[-1]:,.0f}",
        ),
        ("held-out MLM loss (perplexity)", f"{pre['heldout']['mlm_loss']:.2f} ({pre['heldout']['perplexity']:,.0f})"),
        ("frequency-only loss; uniform ln(vocabulary)", f"{run['unigram_entropy']:.2f}; {math.log(tok['vocab_size']):.2f}"),
        ("probe fills", ", ".join(f"«{x['token']}» {x['score']:.2f}" for x in run["fill_mask"])),
        (
            "git commit; versions",
            f"{run.get('git_commit') or '–'}; " + ", ".join(f"{k} {v}" for k, v in (run.get("versions") or {}).items()),
        ),
    ]


def pretraining_run(run: dict) -> list[str]:
    inputs = [
        (
            code(e["path"].replace(EXTERNAL_ROOT + "/", "")),
            code(e["exclude"].replace(EXTERNAL_ROOT + "/", "")) if e["exclude"] else "–",
            f"{e['units']:,}",
            f"{e['chars']:,}",
        )
        for e in run["inputs"]
    ]
    curve = run["loss_curve"]
    return [
        f"### {label(run)}: `{run['config_path']}`",
        "",
        f"`{run['command']}` → `{run['dir']}` (a Hugging Face `BertForMaskedLM` folder; not committed).",
        "",
        *table(["input", "sentences left out", "units read", "characters"], inputs, "llrr"),
        "",
        *table(["setting", "value"], run_settings(run)),
        "",
        *table(
            ["step", *(str(x["step"]) for x in curve)],
            [["training MLM loss", *(f"{x['loss']:.2f}" for x in curve)]],
            "l" + "r" * len(curve),
        ),
        "",
    ]


def leakage_section(runs: Sequence[dict]) -> list[str]:
    rows = []
    for run in runs:
        lk = run["leakage"]
        rows.append(
            [
                label(run),
                yes_no(lk["anercorp_test_in_inputs"]),
                yes_no(lk["newsfane_overlap_excluded"]),
                f"{lk['units_scanned']:,}",
                f"{lk['article_ngrams']:,}",
                lk["shared_ngrams"],
                f"“{lk['shared_examples'][0]}”" if lk["shared_examples"] else "–",
            ]
        )
    header = [
        "pretraining",
        "ANERcorp test an input",
        "NewsFANE sentences overlapping ANERcorp test left out",
        "units scanned",
        "distinct article n-grams",
        "of them in the units",
        "example",
    ]
    intro = (
        f"The distinct {runs[0]['leakage']['ngram']}-word sequences (letters only) of the five articles, looked for in the "
        "units each run pretrained on."
    )
    return ["## What the pretraining saw of the test data", "", intro, "", *table(header, rows, "lllrrrl"), ""]


def markdown(r: dict, out: str) -> str:
    """report.md of a results.json (`out`: its folder, for the command that rewrites it)."""
    lines = [
        "# Pretraining the offline BERT here: does it help?",
        "",
        FINDINGS,
        "",
        *settings_section(r, out),
        *systems_section(r),
        *results_section(r),
        *pretraining_vs_finetuning(r),
        *finetuning_section(r),
        *sensitivity_section(r),
        "## Pretraining runs",
        "",
    ]
    for run in r["runs"]:
        lines += pretraining_run(run)
    lines += leakage_section(r["runs"])
    return "\n".join(lines)
