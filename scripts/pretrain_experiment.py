"""Does MLM pretraining here make the offline tiny BERT better? Leave-one-article-out CV and ANERcorp test.

    python scripts/pretrain_experiment.py            # writes reports/pretrain/{report.md,results.json,cv-*}

1. Pretrains `--pretrain-config` (default configs/pretrain-tiny-news.yaml) into runs/pretrain/<name>
   with `arner pretrain` (a finished run with the same config is reused; an interrupted one resumed).
2. Checks the pretraining text against the five articles (shared 8-word sequences) and the
   inputs against the ANERcorp test split.
3. Leave-one-article-out CV with the `arner cv` machinery (`arner.cv.run`): (a) `--config`
   (configs/tiny.yaml) from scratch and the CRF baseline, (b) the same config with
   `model=<pretrained>`. Every fold model also scores ANERcorp test (`external_test`).
4. Each system trained on all five articles, scored on ANERcorp test (`arner.eval.public_scores`).

Fold models and pretraining outputs go under runs/pretrain/ (not committed); the CV folders,
results.json and report.md (tables only, written by scripts/pretrain_report.py) go to `--out`.
The conclusions are written by hand in FINDINGS.md beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

# scripts/ is on sys.path when this runs as `python scripts/pretrain_experiment.py`
from pretrain_report import CRF_NAME, EXTERNAL_ROOT, PROBE, SCRATCH, label, load_sensitivity, markdown, strict

from arner.core import commands

REPO = Path(__file__).resolve().parents[1]
ANERCORP_TEST = "anercorp/test.conll"
EXTERNAL_TEST = f"external_test=[{{name: anercorp-test, files: [{ANERCORP_TEST}]}}]"
QUIET = "progress_bar=false"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def device_description() -> dict:
    import torch

    from arner.core import machine

    return {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU: {machine.cpu_model()}",
        "cpu_cores": machine.cpu_cores(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "versions": machine.versions(),
    }


# ---------------------------------------------------------------- 1. pretraining


def comparable(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "progress_bar"}


def run_pretraining(config_path: Path, output: Path) -> dict:
    from arner.train.config import PretrainConfig, load_config
    from arner.train.loop import last_checkpoint

    config = load_config(config_path, [QUIET], cls=PretrainConfig)
    meta_path = output / "arner.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if comparable(meta["config"]) == comparable(config.to_dict()):
            log(f"reusing the finished pretraining in {output}")
            return meta
    resume = last_checkpoint(output / "checkpoints") is not None
    log(f"pretraining {config_path} -> {output}" + (" (resuming)" if resume else ""))
    # its own process, as a user runs it (the masking collator's seeded generator wants a main process)
    command = [sys.executable, "-m", "arner.cli", "pretrain", "--config", str(config_path), "--output", str(output), "--set", QUIET]
    subprocess.run(command + (["--resume"] if resume else []), check=True, cwd=REPO)
    return json.loads(meta_path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- 2. leakage checks

WORD = re.compile(r"[^\W\d_]+")  # letters only: tokenization-independent


def shingles(text: str, n: int = 8) -> set[tuple[str, ...]]:
    words = WORD.findall(text)
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def leakage(meta: dict, n: int = 8) -> dict:
    """Shared n-word sequences between the five articles and the units the pretraining read."""
    from arner.core import corpus
    from arner.train.pretrain import TextInput, iter_texts

    articles = corpus.load(REPO / "annotations")
    article_shingles = {d.doc: shingles(d.text, n) for d in articles}
    every = set().union(*article_shingles.values())
    shared: set = set()
    units = 0
    for entry in meta["inputs"]:
        source = TextInput(path=entry["path"], exclude=entry["exclude"] or "")
        for k, unit in enumerate(iter_texts(source)):
            if k >= entry["units"]:
                break
            units += 1
            shared |= shingles(unit, n) & every
    paths = [e["path"] for e in meta["inputs"]]
    return {
        "ngram": n,
        "units_scanned": units,
        "article_ngrams": len(every),
        "shared_ngrams": len(shared),
        "shared_per_article": {doc: len(s & shared) for doc, s in article_shingles.items()},
        "shared_examples": [" ".join(s) for s in sorted(shared)[:5]],
        "anercorp_test_in_inputs": any(p.endswith(ANERCORP_TEST) for p in paths),
        "newsfane_overlap_excluded": all(e["exclude"] for e in meta["inputs"] if "newsfane" in e["path"]),
    }


# ---------------------------------------------------------------- 3-4. evaluation


def cv_run(out: Path, config: Path, overrides: list[str], systems: list[str], work: Path, resume: bool) -> dict:
    from arner import cv

    log(f"cv {out} ({', '.join(systems)}; fold models in {work})")
    return cv.run(out, config, overrides, systems, work=work, resume=resume, log=log)


def fold_scores(cv_system: dict) -> dict:
    """Per headline figure, mean and std over the fold models of their ANERcorp test scores (`arner cv` scored them)."""
    scores = cv_system["external"]["anercorp-test"]
    return {k: {"mean": scores["mean"][k], "std": scores["std"][k]} for k in scores["mean"]}


def final_model(config: Path, overrides: list[str], output: Path, resume: bool) -> dict:
    from arner.eval.training import train
    from arner.train.config import load_config

    log(f"training on all five articles -> {output}")
    return train(load_config(config, overrides), output, resume=resume, config_path=str(config))["external"]["anercorp-test"]


# ---------------------------------------------------------------- diagnostics


def unigram_entropy(pretrained: Path, tokenizer) -> float:
    """Entropy (nats) of the subword frequencies of the packed text: the MLM loss of a model that ignores context."""
    import numpy as np

    from arner.train.pretrain import load_rows

    rows, _ = load_rows(pretrained / "work" / "data")
    counts = np.zeros(len(tokenizer), dtype=np.int64)
    for batch in rows.with_format("arrow").iter(batch_size=10_000):
        counts += np.bincount(batch["input_ids"].combine_chunks().flatten().to_numpy(), minlength=len(counts))
    counts[tokenizer.all_special_ids] = 0
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def fill_mask(fill) -> list[dict]:
    """The top fills of the probe by a fill-mask pipeline."""
    return [{"token": x["token_str"], "score": round(float(x["score"]), 4)} for x in fill(PROBE)]


def finetuning_curves(work: Path) -> dict:
    """Per fold: held-out strict F1 after each epoch (the held-out article is the test article: diagnostics only)."""
    from arner.train.loop import read_log

    folds = []
    for k in range(5):
        rows = read_log(work / f"fold-{k}", "epoch")
        f1 = [x["heldout"]["strict_f1"] for x in rows]
        loss = [x["loss"] for x in rows]
        folds.append({"strict_f1": f1, "loss": loss, "best_epoch": f1.index(max(f1)) + 1, "best": max(f1), "final": f1[-1]})
    return {
        "folds": folds,
        "mean_best": statistics.fmean(f["best"] for f in folds),
        "mean_final": statistics.fmean(f["final"] for f in folds),
        "mean_best_epoch": statistics.fmean(f["best_epoch"] for f in folds),
        "mean_loss_epoch_5": statistics.fmean(f["loss"][4] for f in folds),
    }


def curve_of(pretrained: Path) -> tuple[list[dict], list[dict]]:
    from arner.train.loop import read_log

    steps = read_log(pretrained, "step")
    stride = max(1, len(steps) // 12)
    curve = [{"step": x["step"], "loss": x["loss"]} for x in steps[::stride]]
    if steps and curve[-1]["step"] != steps[-1]["step"]:
        curve.append({"step": steps[-1]["step"], "loss": steps[-1]["loss"]})
    return curve, [{"step": x["step"], "tokens_per_second": x["tokens_per_second"]} for x in steps]


# ---------------------------------------------------------------- orchestration


def init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def pretraining_task(path: str, work: str) -> dict:
    """Pretrain one config (or reuse it) and read the diagnostics of the result."""
    from transformers import pipeline

    path, name = Path(path), Path(path).stem.removeprefix("pretrain-")
    pretrained = Path(work) / name
    meta = run_pretraining(path, pretrained)
    checks = leakage(meta)
    log(
        f"{name}: {checks['shared_ngrams']} shared {checks['ngram']}-word sequences; ANERcorp test an input: {checks['anercorp_test_in_inputs']}"
    )
    curve, step_rows = curve_of(pretrained)
    fill = pipeline("fill-mask", model=str(pretrained))  # its model and tokenizer serve the other diagnostics too
    return {
        "name": name,
        "config_path": str(path),
        "dir": str(pretrained),
        "command": f"arner pretrain --config {path} --output {pretrained}",
        "config": meta["config"],
        "inputs": meta["inputs"],
        "data": meta["data"],
        "metrics": meta["metrics"],
        "device": meta.get("device"),
        "torch_threads": meta.get("torch_threads"),
        "versions": meta.get("versions"),
        "git_commit": meta.get("git_commit"),
        "parameters": sum(x.numel() for x in fill.model.parameters()),  # tied decoder once
        "unigram_entropy": unigram_entropy(pretrained, fill.tokenizer),
        "fill_mask": fill_mask(fill),
        "loss_curve": curve,
        "step_rows": step_rows,
        "leakage": checks,
    }


def system_task(config: str, overrides: list[str], systems: list[str], out: str, cv_folder: str, work: str, resume: bool) -> dict:
    """CV of one fine-tuning setup (plus the CRF when asked), its fold models' and its all-articles model's ANERcorp scores."""
    config_path, out, work = Path(config), Path(out), Path(work)
    result = cv_run(out / f"cv-{cv_folder}", config_path, overrides, systems, work / f"cv-{cv_folder}", resume)
    return {
        "command": result["command"],
        "config": config,
        "overrides": overrides,
        "cv": result["systems"],
        "cv_folder": f"cv-{cv_folder}",
        "anercorp_test": final_model(config_path, overrides, work / f"final-{cv_folder}", resume),
        "anercorp_test_folds": fold_scores(result["systems"]["bert"]),
        "finetuning": finetuning_curves(work / f"cv-{cv_folder}"),
    }


def crf_task() -> dict:
    """ANERcorp-test headline of the CRF trained on all five articles (its fold models are scored by `arner cv`)."""
    from arner.core import corpus
    from arner.core.public import ExternalCorpus
    from arner.eval.baselines import CRF
    from arner.eval.public_scores import headline, score_corpus

    model = CRF().fit(corpus.load(REPO / "annotations"))
    return headline(score_corpus(model.predict, ExternalCorpus(name="anercorp-test", files=[ANERCORP_TEST]), EXTERNAL_ROOT))


def write_results(result: dict, out: Path) -> None:
    """Add the sensitivity runs found under `out` to `result`; write results.json, then report.md."""
    from arner.core import atomic
    from arner.eval.report import dumps

    result["sensitivity"] = load_sensitivity(out)
    atomic.write_text(out / "results.json", dumps(result))  # before the report: a failing report loses no result
    atomic.write_text(out / "report.md", markdown(result, str(out)))


def rewrite_report(out: Path) -> None:
    """report.md again from a results.json (results.json itself is left as it is)."""
    from arner.core import atomic

    result = json.loads((out / "results.json").read_text(encoding="utf-8"))
    result["sensitivity"] = load_sensitivity(out) or result.get("sensitivity", [])
    atomic.write_text(out / "report.md", markdown(result, str(out)))


def parallel(jobs: int, calls: list[tuple]) -> list:
    """Run `(function, *args)` calls, `jobs` processes at a time (one GPU is shared: the models are small)."""
    if jobs <= 1:
        return [fn(*a) for fn, *a in calls]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from arner.core.machine import cpu_cores

    threads = max(1, cpu_cores() // min(jobs, len(calls)))
    with ProcessPoolExecutor(
        min(jobs, len(calls)), mp_context=multiprocessing.get_context("spawn"), initializer=init_worker, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(fn, *a) for fn, *a in calls]
        return [f.result() for f in futures]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-config", nargs="+", default=["configs/pretrain-tiny-news.yaml", "configs/pretrain-tiny-news-long.yaml"])
    parser.add_argument(
        "--config", default="configs/tiny.yaml", help="fine-tuning config of the scratch system (and of every pretrained one by default)"
    )
    parser.add_argument(
        "--finetune", nargs="*", default=[], metavar="NAME=CONFIG", help="fine-tuning config for the pretraining NAME (pretrain-NAME.yaml)"
    )
    parser.add_argument("--out", default="reports/pretrain")
    parser.add_argument("--work", default="runs/pretrain")
    parser.add_argument("--jobs", type=int, default=1, help="pretrainings, then CV systems, run this many at a time")
    parser.add_argument("--resume", action="store_true", help="reuse finished models (arner.json), resume interrupted ones (checkpoints)")
    parser.add_argument("--report-only", action="store_true", help="rewrite report.md from --out/results.json")
    return parser


def command_line(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The command that reproduces this run's results (options left at their defaults, --resume and --report-only omitted)."""
    options = {k: v for k, v in vars(args).items() if k not in ("resume", "report_only")}
    return commands.command_line(
        ["python", "scripts/pretrain_experiment.py"], options, {k: parser.get_default(k) for k in options}, "spaces"
    )


def experiment(args: argparse.Namespace, finetune: dict[str, str]) -> dict:
    """Pretrain, then run every CV system (and the CRF on all five articles); the results without the run's command."""
    out, work = Path(args.out), Path(args.work)
    runs = parallel(args.jobs, [(pretraining_task, path, str(work)) for path in args.pretrain_config])
    calls: list[tuple] = [
        (system_task, args.config, [EXTERNAL_TEST, QUIET], ["bert", "crf"], str(out), "scratch", str(work), args.resume),
        (crf_task,),
    ]
    for run in runs:
        run["finetune_config"] = finetune.get(run["name"], args.config)
        overrides = [f"model={run['dir']}", EXTERNAL_TEST, QUIET]
        calls.append((system_task, run["finetune_config"], overrides, ["bert"], str(out), run["name"], str(work), args.resume))
    done = parallel(args.jobs, calls)
    scratch, crf_all = done[0], done[1]
    systems = {SCRATCH: {**scratch, "cv": scratch["cv"]["bert"]}}
    for run, result in zip(runs, done[2:]):
        systems[label(run)] = {**result, "cv": result["cv"]["bert"]}
    systems[CRF_NAME] = {
        "cv": scratch["cv"]["crf"],
        "cv_folder": "cv-scratch",
        "anercorp_test": crf_all,
        "anercorp_test_folds": fold_scores(scratch["cv"]["crf"]),
    }
    return {
        "config": args.config,
        "device": device_description(),
        "runs": runs,
        "cv_commands": [scratch["command"], *(result["command"] for result in done[2:])],
        "systems": systems,
    }


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    os.chdir(REPO)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Path(args.out)
    if args.report_only:
        rewrite_report(out)
        log(f"rewrote {out / 'report.md'}")
        return
    finetune = dict(x.split("=", 1) for x in args.finetune)
    names = [Path(x).stem.removeprefix("pretrain-") for x in args.pretrain_config]
    if unknown := sorted(set(finetune) - set(names)):
        parser.error(f"--finetune names {unknown}, which no --pretrain-config gives (names: {names})")
    result = {"command": command_line(args, parser), **experiment(args, finetune)}
    write_results(result, out)
    scores = "; ".join(f"{name} {strict(s)['estimate']:.3f}" for name, s in result["systems"].items())
    log(f"wrote {out / 'report.md'} and {out / 'results.json'} (strict span F1, pooled: {scores})")


if __name__ == "__main__":
    main()
