"""Fuzzing run configs: any mutation of a shipped YAML loads cleanly or is one ConfigError line; nothing else escapes."""

import random

import pytest

from arner.train.config import ConfigError, PretrainConfig, TrainConfig, load_config

from conftest import REPO

VALUES = ["0", "-1", "1e12", ".nan", "-.inf", "2.5", "true", "''", "[]", "{}", "[1, 2]", "{a: 1}", "null", "x" * 50, "1e-30", "'3'"]
SHAPES = ["&a [1]", "*a", "[", "{", ": :", "- - -", "\t", "\x00", "key: value: other", "!!python/object:os.system x"]


def mutations(text: str, rng: random.Random, n: int):
    lines = text.splitlines()
    keyed = [i for i, line in enumerate(lines) if ":" in line and not line.lstrip().startswith("#")]
    for _ in range(n):
        out = list(lines)
        for _ in range(rng.randint(1, 3)):
            i = rng.choice(keyed)
            key, _, _ = out[i].partition(":")
            kind = rng.random()
            if kind < 0.6:
                out[i] = f"{key}: {rng.choice(VALUES)}"
            elif kind < 0.8:
                out.insert(rng.randrange(len(out) + 1), rng.choice(SHAPES))
            elif kind < 0.9:
                out.append(out[i])  # a duplicate key (or a duplicate line inside a section)
            else:
                out[i] = out[i][: rng.randrange(len(out[i]) + 1)]
        yield "\n".join(out) + "\n"


@pytest.mark.parametrize(("name", "cls"), [("tiny", TrainConfig), ("tiny-anercorp", TrainConfig), ("pretrain-tiny", PretrainConfig)])
def test_mutated_configs_load_or_fail_in_one_line(tmp_path, name, cls):
    text = (REPO / "configs" / f"{name}.yaml").read_text(encoding="utf-8")
    rng = random.Random(f"{name}-0")
    outcomes = {"loaded": 0, "refused": 0}
    for k, mutated in enumerate(mutations(text, rng, 150)):
        path = tmp_path / f"{k}.yaml"
        path.write_text(mutated, encoding="utf-8")
        try:
            load_config(path, cls=cls)
            outcomes["loaded"] += 1
        except ConfigError as e:
            message = str(e)
            assert "\n" not in message and len(message) < 2000 and str(path) in message, (mutated, message)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 50 and outcomes["loaded"] > 0, outcomes  # both paths were exercised
