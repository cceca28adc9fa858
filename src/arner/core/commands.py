"""The command line that reproduces a run, as reports record it: one builder for every command."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Literal


def command_line(
    program: Sequence[str],
    options: Mapping[str, object],
    defaults: Mapping[str, object] | None = None,
    lists: Literal["comma", "spaces", "repeat"] = "repeat",
) -> str:
    """`program --name value ...` in the order of `options`, shell-quoted.

    An option whose value is None, or equals its entry in `defaults`, is left out (pass no
    `defaults` to spell every option out). A list value is written as the command parses it:
    `comma` (`--x 1,2`), `spaces` (`--x 1 2`, argparse nargs) or `repeat` (`--x 1 --x 2`). A bool
    is a flag: `--x` when true, nothing when false.
    """
    defaults = defaults or {}
    parts = list(program)
    for name, value in options.items():
        if value is None or (name in defaults and value == defaults[name]):
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):  # a flag: given when on, left out when off (every flag here is off by default)
            parts += [flag] if value else []
        elif isinstance(value, (list, tuple)):
            values = [str(v) for v in value]
            if lists == "comma":
                parts += [flag, ",".join(values)]
            elif lists == "spaces":
                parts += [flag, *values]
            else:
                parts += [x for v in values for x in (flag, v)]
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)
