"""The one builder of reproducing command lines (cv, bench and the pretraining experiment use it)."""

import pytest

from arner.core.commands import command_line


@pytest.mark.parametrize(
    ("lists", "expected"),
    [("repeat", "x --set a=1 --set 'b=2 3'"), ("comma", "x --set 'a=1,b=2 3'"), ("spaces", "x --set a=1 'b=2 3'")],
)
def test_lists_are_written_as_each_command_parses_them(lists, expected):
    assert command_line(["x"], {"set": ["a=1", "b=2 3"]}, lists=lists) == expected


def test_defaults_and_none_are_left_out_in_order():
    options = {"config": "c.yaml", "out": "o", "seed": 0, "resamples": 500, "device": None}
    assert command_line(["arner", "cv"], options, {"seed": 0, "resamples": 1000}) == "arner cv --config c.yaml --out o --resamples 500"


def test_bools_are_flags_as_typer_parses_them():
    line = command_line(["arner", "bench", "infer"], {"host_only": True, "resume": False, "repeats": 2})
    assert line == "arner bench infer --host-only --repeats 2"
    from typer.testing import CliRunner

    from arner.cli import app

    # the line parses: `--host-only` is the flag typer made (an invalid value would be exit 2 before anything runs)
    result = CliRunner().invoke(app, [*line.split()[1:], "--model", "gpt"])
    assert result.exit_code == 2 and "--model must be one of" in result.output
