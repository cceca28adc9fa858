"""Experiment trackers beside `log.jsonl`: `report_to: [tensorboard]` logs through accelerate's trackers.

The event files go to `OUTPUT/logs/<train|pretrain>/`, inside the model folder: they are small, and
the Hugging Face Hub shows a repository's TensorBoard traces on its "Training metrics" tab, so
`upload_folder` takes them along. A logging step logs `train/loss`, `train/learning_rate` and
`train/tokens_per_second`; an epoch logs `epoch/*` and the held-out scores as `heldout/*`, all at the
optimizer step, as `log.jsonl` has them. A resumed run purges the events after its checkpoint's step,
as it drops the log rows of the epoch it repeats. Only the main process writes (accelerate's rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from arner.train.checkpoints import LOGS_DIR
from arner.train.config import ConfigError, LoopConfig

INSTALL = "pip install tensorboard (or pip install 'arner[tensorboard]')"


def tensorboard_installed() -> bool:
    """Whether accelerate's TensorBoard tracker can start: it imports torch's writer, else tensorboardX."""
    try:
        import torch.utils.tensorboard  # noqa: F401  (raises ImportError when the tensorboard package is missing)
    except ImportError:
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            return False
    return True


def check_available(config: LoopConfig, where: str) -> None:
    """A tracker that cannot start is a ConfigError now, before the output folder is touched, not an ImportError mid-run."""
    if "tensorboard" in config.report_to and not tensorboard_installed():
        raise ConfigError(f"{where}: report_to: [tensorboard] needs the tensorboard package, which is not installed: {INSTALL}")


def accelerator_options(config: LoopConfig, output: Path | None) -> dict:
    """The `Accelerator` keyword arguments that turn the configured trackers on (none without report_to)."""
    if not config.report_to or output is None:
        return {}
    from accelerate.utils import ProjectConfiguration

    return {
        "log_with": list(config.report_to),
        "project_config": ProjectConfiguration(project_dir=str(output), logging_dir=str(output / LOGS_DIR)),
    }


def start(accelerator, config: LoopConfig, run_name: str, resumed_step: int | None) -> None:
    """Open the trackers' run; a resumed run drops what was logged after `resumed_step` (SummaryWriter's purge_step)."""
    if not config.report_to:
        return
    options = {"tensorboard": {"purge_step": resumed_step + 1}} if resumed_step is not None else {}
    accelerator.init_trackers(run_name, init_kwargs=options)


def scalars(row: Mapping, prefix: str, nested: bool = True) -> dict[str, float]:
    """The numbers of a log row, named `prefix/key`; those of a dict in it are named by its key (`heldout/strict_f1`)."""
    out = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            if nested:
                out.update(scalars(value, key, nested=False))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("type", "step"):
            out[f"{prefix}/{key}"] = float(value)
    return out


def log_step(accelerator, config: LoopConfig, row: dict) -> None:
    if config.report_to:
        write(accelerator, scalars({k: row[k] for k in ("loss", "learning_rate", "tokens_per_second")}, "train"), row["step"])


def log_epoch(accelerator, config: LoopConfig, row: dict) -> None:
    if config.report_to:
        write(accelerator, scalars(row, "epoch"), row["step"])


def write(accelerator, values: dict[str, float], step: int) -> None:
    """Log and write out at once, as log.jsonl appends its rows: a run killed later keeps its curves up to here.

    (TensorBoard's SummaryWriter would otherwise hold them for up to two minutes.) A logging step is rare
    enough that the write costs nothing measurable.
    """
    accelerator.log(values, step=step)
    for tracker in accelerator.trackers:
        flush = getattr(tracker.tracker, "flush", None)
        if flush is not None:
            flush()


def finish(accelerator) -> None:
    """Close the trackers (their files flushed), also when the run stops on an error; `end_training` then has none left."""
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.trackers.clear()
