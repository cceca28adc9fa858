"""Train the tiny config and a BERT-base-shaped model with `arner train` and keep their logs as a report.

    python scripts/train_report.py                 # reports/train/<device>/{tiny,bert-base}/ + report.md

`tiny` is configs/tiny.yaml as shipped. `bert-base` is AraBERT v0.2's exact configuration with random
weights (the folder `arner bench` builds: 64,000-subword WordPiece trained on the articles, 12 x 768)
fine-tuned with configs/arabert-v02.yaml. Both hold out article 0 (`--fold 0`) so each epoch's log row
has a held-out score. Kept per model: the command, `log.jsonl` and `arner.json`; the weights are not.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from arner.core.tables import table

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> float:
    print("$ " + shlex.join(args), file=sys.stderr, flush=True)
    start = time.perf_counter()
    subprocess.run(args, check=True, cwd=REPO)
    return time.perf_counter() - start


def summary(name: str, command: str, wall: float, folder: Path) -> dict:
    from arner.train.loop import read_log

    meta = json.loads((folder / "arner.json").read_text(encoding="utf-8"))
    epochs = read_log(folder, "epoch")
    return {
        "name": name,
        "command": command,
        "wall_seconds": round(wall, 1),
        "device": meta.get("device"),
        "versions": meta.get("versions"),
        "epochs": [
            {
                "epoch": r["epoch"],
                "loss": round(r["loss"], 4),
                "tokens_per_second": round(r["tokens_per_second"]),
                "seconds": round(r["seconds"], 2),
                "heldout_strict_f1": r.get("heldout", {}).get("strict_f1"),
            }
            for r in epochs
        ],
        "metrics": meta.get("metrics"),
    }


def markdown(device: str, gpu: str, runs: list[dict]) -> str:
    lines = [
        f"# `arner train` on {gpu}",
        "",
        "Produced by `python scripts/train_report.py` "
        f"(logs and `arner.json` of each run in `{device}/<model>/`). Article 0 is held out (`--fold 0`).",
        "",
    ]
    for r in runs:
        lines += [
            f"## {r['name']}",
            "",
            f"`{r['command']}`: {r['wall_seconds']} s wall, process start and model building included; device `{r['device']}`.",
            "",
            *table(
                ["epoch", "loss", "tokens/s", "seconds", "held-out strict F1"],
                [
                    (
                        e["epoch"],
                        f"{e['loss']:.3f}",
                        f"{e['tokens_per_second']:,}",
                        f"{e['seconds']:.2f}",
                        "–" if e["heldout_strict_f1"] is None else f"{e['heldout_strict_f1']:.3f}",
                    )
                    for e in r["epochs"]
                ],
                "rrrrr",
            ),
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/train")
    parser.add_argument("--work", default="runs/train-report")
    parser.add_argument("--models", default="tiny,bert-base", help="comma-separated: tiny, bert-base")
    args = parser.parse_args()
    os.chdir(REPO)
    import torch

    from arner.bench.machine import device_name
    from arner.bench.models import build_model, load_bench_config
    from arner.core import atomic, corpus

    device = device_name()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    work, out = Path(args.work), Path(args.out) / device
    models = args.models.split(",")
    base = work / "bert-base-random"
    if "bert-base" in models and not (base / "config.json").is_file():
        docs = corpus.load(REPO / "annotations")
        build_model("bert-base", [d.text for d in docs], load_bench_config("bert-base", None), base, seed=42)
    plans = {
        "tiny": ["arner", "train", "--config", "configs/tiny.yaml", "--fold", "0", "--set", "progress_bar=false"],
        "bert-base": ["arner", "train", "--config", "configs/arabert-v02.yaml", "--set", f"model={base}", "--fold", "0"]
        + ["--set", "progress_bar=false"],
    }
    runs = []
    for name in models:
        command = plans[name]
        folder = work / name
        wall = run([*command, "--output", str(folder)])
        runs.append(summary(name, shlex.join([*command, "--output", str(folder)]), wall, folder))
        (out / name).mkdir(parents=True, exist_ok=True)
        for f in ("log.jsonl", "arner.json"):
            shutil.copyfile(folder / f, out / name / f)
    atomic.write_text(out / "report.json", json.dumps(runs, indent=1, ensure_ascii=False) + "\n")
    atomic.write_text(out / "report.md", markdown(device, gpu, runs))
    print(f"wrote {out / 'report.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
