"""Run `arner` and kill it right after its Nth optimizer step, as a SIGKILL would: no cleanup, no checkpoint.

    python tests/crash_after.py N -- train --config configs/tiny.yaml --output ... [arner arguments]

Fault injection for the resume tests, kept out of the training loop: torch's global optimizer-step
hook counts the steps (accelerate calls the wrapped optimizer only at accumulation boundaries, so one
call is one loop step) and the process ends with `os._exit(137)` at step N.
"""

from __future__ import annotations

import os
import sys

from torch.optim.optimizer import register_optimizer_step_post_hook


def crash_after(steps: int) -> None:
    calls = 0

    def hook(optimizer, args, kwargs) -> None:
        nonlocal calls
        calls += 1
        if calls == steps:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(137)

    register_optimizer_step_post_hook(hook)


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] != "--":
        sys.exit("usage: crash_after.py N -- <arner arguments>")
    crash_after(int(argv[0]))
    from arner.cli import main as arner

    sys.argv = ["arner", *argv[2:]]
    arner()


if __name__ == "__main__":
    main(sys.argv[1:])
