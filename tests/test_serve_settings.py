"""`ServeSettings`: every bad setting of `arner serve` is one line naming it, before any model loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

from arner.inference import Tagger
from arner.serve import ServeSettings, create_app
from arner.serve.limits import Limits


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_texts": 0}, "--max-texts must be >= 1 (got 0)"),
        ({"max_text_chars": 0}, "--max-text-chars must be >= 1"),
        ({"max_wait_ms": -1}, "--max-wait-ms must be >= 0"),
        ({"max_wait_ms": float("nan")}, "--max-wait-ms must be a finite number (got nan)"),
        ({"max_wait_ms": float("inf")}, "--max-wait-ms must be a finite number"),
        ({"threads": 0}, "--threads must be >= 1"),
        ({"batch_size": 0}, "--batch-size must be >= 1 (got 0)"),
        ({"stride": -1}, "--stride must be >= 0"),
        ({"max_queue": 0}, "max_queue must be >= 1"),
        ({"port": 99999}, "--port must be <= 65535 (got 99999)"),
        ({"port": 0}, "--port must be >= 1"),
        ({"host": ""}, "--host must not be empty"),
        ({"device": "nonsense"}, "--device must be auto, cpu, cuda, cuda:N or mps (got 'nonsense')"),
        ({"log_level": "loud"}, "--log-level must be 'debug'"),
        ({"batch_size": "16"}, "--batch-size must be a valid integer"),
        ({"max_texts": True}, "--max-texts must be a valid integer"),
        ({"max_size": 3}, "unknown setting 'max_size'"),
        ({"max_wait_ms": 1e9}, "--max-wait-ms must be <= 60000"),  # a batch held for days
        ({"host": "127.0.0.1:8000"}, "--host must be an IP address or a host name (got '127.0.0.1:8000')"),
        ({"host": "http://example.org"}, "--host must be an IP address or a host name"),
        ({"host": "two words"}, "--host must be an IP address or a host name"),
        ({"host": "a" * 64 + ".example"}, "--host must be an IP address or a host name"),
        ({"host": "-lead.example"}, "--host must be an IP address or a host name"),
        ({"host": 8000}, "--host must be a valid string"),
        ({"body_timeout_s": 0}, "body_timeout_s must be > 0 (got 0)"),
        ({"body_timeout_s": float("inf")}, "body_timeout_s must be a finite number"),
        ({"header_timeout_s": -1}, "header_timeout_s must be > 0"),
        ({"keep_alive_s": float("nan")}, "keep_alive_s must be a finite number"),
        ({"keep_alive_s": 0}, "keep_alive_s must be > 0"),
    ],
)
def test_bad_settings_are_one_line_naming_the_setting(kwargs, message):
    with pytest.raises(ValueError) as caught:
        ServeSettings(**kwargs)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::1", "::", "localhost", "arner-1.internal.example", "example.org."])
def test_good_hosts(host):
    assert ServeSettings(host=host).host == host


def test_several_bad_settings_are_named_on_one_line():
    with pytest.raises(ValueError, match=r"^max_queue must be >= 1 \(got 0\); --stride must be >= 0 \(got -1\)$"):
        ServeSettings(max_queue=0, stride=-1)


def test_defaults_and_derived_limits():
    from arner.cli.options import DEFAULT_BATCH_SIZE, DEFAULT_STRIDE

    settings = ServeSettings()
    assert (settings.batch_size, settings.stride) == (DEFAULT_BATCH_SIZE, DEFAULT_STRIDE)  # as `arner predict` loads a model
    assert ServeSettings.default("max_wait_ms") == 0.0 and settings.max_text_chars is None
    limits = Limits.of(ServeSettings(max_chars=500, max_texts=2))
    assert limits.max_text_chars == 500 and limits.max_body_bytes == 12 * 500 + 8 * 2 + 4096
    assert Limits.of(ServeSettings(max_text_chars=7, max_body_bytes=99)).to_json()["max_body_bytes"] == 99
    with pytest.raises(ValueError, match="frozen"):  # settings are read, never changed under a running app
        settings.max_texts = 0  # type: ignore[misc]


def test_a_missing_device_fails_before_the_model_loads(monkeypatch, tmp_path):
    monkeypatch.setattr(Tagger, "from_pretrained", lambda *a, **kw: pytest.fail("the model was loaded"))
    with pytest.raises(ValueError, match="--device cuda:7"):  # no test machine has 8 GPUs
        create_app(tmp_path, ServeSettings(device="cuda:7"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "99999"], "error: --port must be <= 65535 (got 99999)"),
        (["--batch-size", "0"], "error: --batch-size must be >= 1 (got 0)"),  # it used to serve, /healthz 200, every request 500
        (["--max-wait-ms", "nan"], "error: --max-wait-ms must be a finite number (got nan)"),
        (["--device", "nonsense"], "error: --device must be auto, cpu, cuda, cuda:N or mps (got 'nonsense')"),
    ],
)
def test_cli_bad_setting_is_one_error_line_before_loading(tmp_path, args, message):
    command = [sys.executable, "-m", "arner.cli", "serve", "--model", str(tmp_path / "no-model"), *args]
    r = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr == message + "\n", r.stderr  # one line: no traceback, not the (missing) model
