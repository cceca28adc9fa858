"""`arner bench train|infer`: reports in OUT/<device>/NAME.{json,md}."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from arner.cli.errors import handle_errors
from arner.cli.options import DEVICE
from arner.core.defaults import ONNX_PRECISIONS, PRECISIONS

# not reports/bench: a run with the defaults must not overwrite the committed reports (give --out reports/bench for that)
DEFAULT_OUT = Path("runs/bench")

app = typer.Typer(no_args_is_help=True, help="Throughput against Hugging Face defaults; reports in OUT/<device>/NAME.{json,md}.")
BENCH_MODEL = typer.Option(help="tiny (configs/tiny.yaml) or bert-base (AraBERT v0.2's shape, random weights).")
# the options both benches share, defined once
ANNOTATIONS = typer.Option(help="Annotation folder whose articles make the data.")
OUT = typer.Option(help="Reports folder; the report goes to OUT/<device>/NAME.json and .md (and .png for infer).")
NAME = typer.Option(help="Report name (default train-MODEL or infer-MODEL).")
SEED = typer.Option(help="Seed for data order and weights.")
REPEATS = typer.Option(help="Run each measurement this many times and keep the best (noisy machines).")
THREADS = typer.Option(help="torch CPU threads (default: torch's choice).")


@app.command("train")
@handle_errors
def bench_train_command(
    model: Annotated[str, BENCH_MODEL] = "tiny",
    tokens: Annotated[int, typer.Option(help="Subword tokens of data: the articles repeated and shuffled up to this.")] = 50_000,
    epochs: Annotated[int, typer.Option(help="Epochs per loop; the first is a warm-up and not measured.")] = 3,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch size for both loops (default: the config's).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Run config (default configs/tiny.yaml or configs/arabert-v02.yaml).")] = None,
    annotations: Annotated[Path, ANNOTATIONS] = Path("annotations"),
    out: Annotated[Path, OUT] = DEFAULT_OUT,
    name: Annotated[Optional[str], NAME] = None,
    seed: Annotated[int, SEED] = 42,
    repeats: Annotated[int, REPEATS] = 1,
    threads: Annotated[Optional[int], THREADS] = None,
) -> None:
    """Training tokens/s, sequences/s, step time, peak memory, MFU: `arner train`'s loop vs the HF Trainer."""
    options = dict(locals())  # the parameters, as the report's command line spells them

    from arner.bench.report import command_line
    from arner.bench.train import bench_train

    r = bench_train(**options, command=command_line("train", options))
    typer.echo(
        f"{out / r['device'] / r['name']}.json: arner {r['ours']['tokens_per_second']:,.0f} tokens/s, "
        f"Trainer {r['trainer']['tokens_per_second']:,.0f} ({r['ratio_tokens_per_second']:.2f}x)"
    )


@app.command("infer")
@handle_errors
def bench_infer_command(
    model: Annotated[str, BENCH_MODEL] = "tiny",
    tokens: Annotated[int, typer.Option(help="Subword tokens of text: whole articles repeated and shuffled up to this.")] = 50_000,
    batch_sizes: Annotated[
        str, typer.Option(help="Batch sizes to sweep, comma-separated (1 and Tagger's default are always in).")
    ] = "1,4,16,64",
    lengths: Annotated[str, typer.Option(help="Document lengths in subwords for the length sweep, comma-separated.")] = "64,256,1024,4096",
    length_tokens: Annotated[Optional[int], typer.Option(help="Subword tokens per point of the length sweep (default --tokens).")] = None,
    device: Annotated[str, DEVICE] = "auto",
    config: Annotated[Optional[Path], typer.Option(help="Run config for max_length and stride (default per model).")] = None,
    annotations: Annotated[Path, ANNOTATIONS] = Path("annotations"),
    out: Annotated[Path, OUT] = DEFAULT_OUT,
    name: Annotated[Optional[str], NAME] = None,
    seed: Annotated[int, SEED] = 42,
    repeats: Annotated[int, REPEATS] = 1,
    threads: Annotated[Optional[int], THREADS] = None,
    precision: Annotated[
        str,
        typer.Option(
            help="The Tagger's precision: auto, fp32, bf16, fp16, int8, or onnx-fp32 / onnx-int8 (exported and run by ONNX Runtime, CPU)."
        ),
    ] = "auto",
    host_only: Annotated[
        bool, typer.Option(help="Both sides run a model that reads fixed logits per token id: time the code around the model alone.")
    ] = False,
) -> None:
    """Documents/s and tokens/s: Tagger vs transformers.pipeline(token-classification, aggregation_strategy=first)."""
    options = dict(locals())  # the parameters, as the report's command line spells them

    from arner.bench.infer import bench_infer
    from arner.bench.report import command_line

    sizes = tuple(int(x) for x in batch_sizes.split(","))
    lens = tuple(int(x) for x in lengths.split(","))
    if min(sizes + lens) < 1:
        raise ValueError("--batch-sizes and --lengths must be positive integers")
    if precision not in PRECISIONS + ONNX_PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS + ONNX_PRECISIONS)}, got {precision!r}")
    r = bench_infer(**(options | {"batch_sizes": sizes, "lengths": lens}), command=command_line("infer", options))
    typer.echo(
        f"{out / r['device'] / r['name']}.json: Tagger {r['tagger_best']['documents_per_second']:,.2f} docs/s, "
        f"pipeline {r['pipeline_best']['documents_per_second']:,.2f} "
        f"({r['ratio_best']:.2f}x best vs best, {r['ratio_default']:.2f}x defaults)"
    )
