#!/usr/bin/env python
"""Load generator for `arner serve`: N clients, a fixed number of requests, loopback only, bounded.

    python scripts/bench_serve.py --model /tmp/serve-model --out reports/serve/cpu [--compare]

starts `arner serve` on a free port of 127.0.0.1 (or uses --url http://127.0.0.1:PORT), sends
warm-up requests, then `--requests` POST /v1/entities from `--clients` threads with keep-alive
connections (stdlib only), each body one or more short sentences of the annotated articles.
It stops by itself after the requests or `--timeout` seconds, whichever comes first, stops the
server (SIGINT, graceful) and writes OUT.json and OUT.md: p50/p90/p99/max latency, throughput,
errors, mean merged batch (X-Arner-Batch-Texts), the exact command, machine and versions.
`--compare` adds one client alone, and the same load against servers with batching off, with
`--max-wait-ms` 2 and 5 (the default 0 merges what queued while the model ran), and with a model
thread per core (the server's default leaves one core to HTTP).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from arner.core.machine import cpu_cores, cpu_model, versions
from arner.core.tables import table

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


# --------------------------------------------------------------------------- texts


def sentences(articles: Path = REPO / "annotations" / "articles", min_chars: int = 30, max_chars: int = 160) -> list[str]:
    """Short sentences of the articles, in a fixed order."""
    out = []
    for path in sorted(articles.glob("*.txt")):
        for piece in re.split(r"(?<=[.!?؟])\s+|\n+", path.read_text(encoding="utf-8")):
            piece = piece.strip()
            if min_chars <= len(piece) <= max_chars:
                out.append(piece)
    if not out:
        raise SystemExit(f"no sentences of {min_chars}-{max_chars} characters under {articles}")
    return out


def request_bodies(texts: list[str], per_request: int) -> list[list[str]]:
    """Request i gets texts[i*k : i*k+k] (cycling)."""
    cycle = itertools.cycle(texts)
    return [[next(cycle) for _ in range(per_request)] for _ in range(len(texts))]


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`arner serve` in a subprocess on 127.0.0.1; stopped with SIGINT (then killed after `grace_s`)."""

    def __init__(self, model: Path, args: list[str] | None = None, startup_s: float = 120, grace_s: float = 30, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "arner.cli", "serve", "--model", str(model), "--host", "127.0.0.1", "--port", str(self.port)]
        self.cmd += ["--log-level", "warning", *(args or [])]
        self.startup_s, self.grace_s = startup_s, grace_s
        self.env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.output = ""

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env)
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.output = self.proc.stdout.read() if self.proc.stdout else ""
                raise RuntimeError(f"server exited with {self.proc.returncode} before answering:\n{self.output}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer /healthz within {self.startup_s} s:\n{self.output}")

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> int | None:
        if self.proc is None or self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=self.grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.output, self.returncode = out or "", self.proc.returncode
        return self.returncode


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


# --------------------------------------------------------------------------- load


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


class LoadRun:
    """What the client threads of one `load` share: the next request number, and what came back."""

    def __init__(self, url: str, bodies: list[list[str]], requests: int, deadline: float, request_timeout_s: float, check=None):
        self.parts = urlsplit(url)
        if self.parts.hostname not in LOOPBACK:
            raise ValueError(f"loopback only: {url}")
        self.bodies, self.requests, self.deadline, self.request_timeout_s, self.check = bodies, requests, deadline, request_timeout_s, check
        self.encoded = [json.dumps({"texts": b}, ensure_ascii=False).encode("utf-8") for b in bodies]
        self.counter, self.lock = itertools.count(), threading.Lock()
        self.latency: list[float | None] = [None] * requests
        self.merged: list[int] = []
        self.errors: list[str] = []

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.parts.hostname, self.parts.port, timeout=self.request_timeout_s)

    def client(self) -> None:
        """One keep-alive connection sending requests until they are all taken or the deadline passes."""
        conn = self.connect()
        while True:
            with self.lock:
                i = next(self.counter)
            if i >= self.requests or time.monotonic() > self.deadline:
                break
            k = i % len(self.bodies)
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/entities", self.encoded[k], {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(f"request {i}: {type(e).__name__}: {e}")
                conn.close()
                conn = self.connect()
                continue
            self.record(i, k, resp, data, time.perf_counter() - t0)
        conn.close()

    def record(self, i: int, k: int, resp: http.client.HTTPResponse, data: bytes, elapsed: float) -> None:
        if resp.status != 200:
            self.errors.append(f"request {i}: HTTP {resp.status}: {data[:200]!r}")
            return
        try:
            problem = self.check(i, self.bodies[k], json.loads(data)) if self.check else None
        except Exception as e:  # noqa: BLE001 - counted as an error
            problem = f"{type(e).__name__}: {e}"
        if problem:
            self.errors.append(f"request {i}: {problem}")
            return
        self.latency[i] = elapsed
        self.merged.append(int(resp.getheader("X-Arner-Batch-Texts", "0")))

    def summary(self, clients: int, wall: float) -> dict:
        done = sorted(x for x in self.latency if x is not None)
        sent = min(next(self.counter), self.requests)  # a finished client's last draw may overshoot
        texts = sum(len(self.bodies[i % len(self.bodies)]) for i, x in enumerate(self.latency) if x is not None)
        ms = [x * 1000 for x in done]
        return {
            "requests": self.requests,
            "clients": clients,
            "sent": sent,
            "ok": len(done),
            "errors": len(self.errors),
            "error_samples": self.errors[:10],
            "timed_out": sent < self.requests,
            "wall_s": round(wall, 3),
            "throughput_rps": round(len(done) / wall, 1) if wall else None,
            "throughput_texts_per_s": round(texts / wall, 1) if wall else None,
            "latency_ms": {
                **{f"p{q}": round(percentile(ms, q), 2) for q in (50, 90, 99)},
                "max": round(ms[-1], 2) if ms else None,
                "mean": round(sum(ms) / len(ms), 2) if ms else None,
            },
            "mean_merged_texts": round(sum(self.merged) / len(self.merged), 2) if self.merged else None,
        }


def load(
    url: str,
    bodies: list[list[str]],
    requests: int = 2000,
    clients: int = 16,
    timeout_s: float = 120,
    request_timeout_s: float = 30,
    check: Callable[[int, list[str], dict], str | None] | None = None,
) -> dict:
    """`requests` POST /v1/entities from `clients` threads; request i sends bodies[i % len(bodies)].

    Bounded: no request starts after `timeout_s`, each has `request_timeout_s`. `check(i, texts,
    answer)` may return an error message for a 200 answer. Never raises on a failed request.
    """
    run = LoadRun(url, bodies, requests, time.monotonic() + timeout_s, request_timeout_s, check)
    start = time.perf_counter()
    threads = [threading.Thread(target=run.client, name=f"client-{c}", daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, run.deadline - time.monotonic()) + request_timeout_s + 5)
    return run.summary(clients, time.perf_counter() - start)


# --------------------------------------------------------------------------- report


def cpu_ticks(pid: int | None) -> tuple[int, int] | None:
    """(busy ticks of the whole machine, ticks used by this process and by `pid`), from /proc."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system irq softirq steal (guest is inside user)
        hz = os.sysconf("SC_CLK_TCK")
        t = os.times()
        ours = round((t.user + t.system) * hz)
        if pid is not None:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ours += int(stat[11]) + int(stat[12])  # utime, stime
        return busy, ours
    except (OSError, ValueError, IndexError):
        return None


def other_cpu_share(before, after, wall_s: float, cores: int) -> float | None:
    """Share of the machine's cores busy with processes other than the server and this script."""
    if before is None or after is None or wall_s <= 0:
        return None
    other = (after[0] - before[0]) - (after[1] - before[1])
    return round(max(0.0, other / (wall_s * cores * os.sysconf("SC_CLK_TCK"))), 3)


SERVE_PACKAGES = ("arner", "torch", "transformers", "tokenizers", "fastapi", "starlette", "uvicorn", "pydantic")


def markdown(report: dict) -> str:
    m, w = report["machine"], report["workload"]
    lines = [
        "# `arner serve` load test",
        "",
        f"Command: `{report['command']}`",
        "",
        *([report["note"], ""] if report.get("note") else []),
        f"Machine: {m['cpu_cores']} CPU cores ({m['cpu']}), no GPU; server and load generator on the same cores, over loopback.",
        f"Model: `{report['model']['base_model']}` (max length {report['model']['max_length']}). "
        f"Workload: {w['texts_per_request']} text(s) per request, {w['mean_chars']:.0f} characters on average, "
        f"{w['distinct_bodies']} distinct bodies cycled, {w['warmup_requests']} warm-up requests not counted.",
        "",
        *table(
            ["run", "clients", "requests", "ok", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms", "req/s", "texts/s", "mean merged texts"],
            [
                [r["name"], r["clients"], r["requests"], r["ok"], r["errors"], *(r["latency_ms"][k] for k in ("p50", "p90", "p99", "max"))]
                + [r["throughput_rps"], r["throughput_texts_per_s"], r["mean_merged_texts"]]
                for r in report["runs"]
            ],
            align="l" + "r" * 11,
        ),
    ]
    lines += ["", "Server settings per run, and the share of the machine's CPU that other processes used meanwhile:", ""]
    for r in report["runs"]:
        other = "unknown" if r["other_cpu_share"] is None else f"{r['other_cpu_share']:.0%}"
        lines.append(f"- {r['name']}: `arner serve {' '.join(r['server_args']) or '(defaults)'}` (other processes: {other})")
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()), ""]
    return "\n".join(lines)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="model folder; starts `arner serve` on a free loopback port")
    p.add_argument("--url", help="an already running server, e.g. http://127.0.0.1:8000 (loopback only)")
    p.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md (a .json/.md suffix is replaced)")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--texts-per-request", type=int, default=1)
    p.add_argument("--warmup", type=int, default=100, help="requests sent first and not counted")
    p.add_argument("--note", default="", help="a line for the report, e.g. what else ran on the machine")
    p.add_argument("--timeout", type=float, default=300, help="no request starts after this many seconds (per run)")
    p.add_argument(
        "--compare", action="store_true", help="also: 1 client alone, batching off, max wait 2 and 5 ms, one model thread per core"
    )
    p.add_argument(
        "--server-arg", action="append", default=[], help="extra `arner serve` option (repeatable), e.g. --server-arg=--max-wait-ms=2"
    )
    a = p.parse_args(argv)
    if (a.model is None) == (a.url is None):
        p.error("give exactly one of --model and --url")
    if a.url and urlsplit(a.url).hostname not in LOOPBACK:
        p.error("--url must be a loopback address")
    if not (1 <= a.requests <= 100_000 and 1 <= a.clients <= 256 and a.timeout > 0):
        p.error("--requests 1..100000, --clients 1..256, --timeout > 0")
    return a


def scenario(
    a: argparse.Namespace, bodies: list[list[str]], url: str, name: str, server_args: list[str], clients: int, requests: int, pid=None
) -> dict:
    """One measured load after its warm-up; with the server's `pid`, also how busy the rest of the machine was."""
    load(url, bodies, requests=min(a.warmup, requests), clients=clients, timeout_s=a.timeout)
    before = cpu_ticks(pid)
    r = load(url, bodies, requests=requests, clients=clients, timeout_s=a.timeout)
    share = other_cpu_share(before, cpu_ticks(pid), r["wall_s"], cpu_cores()) if pid is not None else None
    r.update(name=name, server_args=server_args, other_cpu_share=share)
    lat = r["latency_ms"]
    print(
        f"{name}: {r['ok']}/{requests} ok, {r['errors']} errors, p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
        f"{r['throughput_rps']} req/s, mean merged {r['mean_merged_texts']} texts, {r['wall_s']} s",
        flush=True,
    )
    return r


def scenarios(a: argparse.Namespace, bodies: list[list[str]]) -> tuple[dict, list[dict]]:
    """The server's /v1/model answer and every run: against --url, or servers started here (--compare: five of them)."""
    if a.url:
        info = get_json(a.url + "/v1/model")
        return info, [scenario(a, bodies, a.url, f"{a.clients} clients", ["(external server)"], a.clients, a.requests)]
    runs = []
    with Server(a.model, a.server_arg) as server:
        info = get_json(server.url + "/v1/model")
        pid = server.proc.pid
        runs.append(scenario(a, bodies, server.url, f"{a.clients} clients, batching on", a.server_arg, a.clients, a.requests, pid))
        if a.compare:
            runs.append(scenario(a, bodies, server.url, "1 client, batching on", a.server_arg, 1, max(1, a.requests // 4), pid))
    if server.returncode != 0:
        print(f"warning: server exited with {server.returncode}:\n{server.output}", file=sys.stderr)
    if a.compare:
        cores = cpu_cores()
        variants = [
            ("batching off", ["--max-batch-texts", "1", "--max-wait-ms", "0"]),
            *((f"batching on, max wait {wait} ms", ["--max-wait-ms", wait]) for wait in ("2", "5")),
            (f"batching on, {cores} model threads", ["--threads", str(cores)]),
        ]
        for what, extra in variants:
            server_args = [*a.server_arg, *extra]
            with Server(a.model, server_args) as server:
                name = f"{a.clients} clients, {what}"
                runs.append(scenario(a, bodies, server.url, name, server_args, a.clients, a.requests, server.proc.pid))
    return info, runs


def main(argv: list[str] | None = None) -> int:
    a = arguments(argv)
    bodies = request_bodies(sentences(), a.texts_per_request)
    chars = [len(t) for b in bodies for t in b]
    command = "python " + " ".join(
        shlex.quote(x) for x in [os.path.relpath(__file__, Path.cwd()), *(argv if argv is not None else sys.argv[1:])]
    )
    info, runs = scenarios(a, bodies)
    report = {
        "command": command,
        "note": a.note,
        "machine": {"cpu_cores": cpu_cores(), "cpu": cpu_model(), "gpu": None, "platform": platform.platform()},
        "versions": versions(packages=SERVE_PACKAGES),
        "model": {k: info.get(k) for k in ("base_model", "max_length", "labels", "device")},
        "workload": {
            "texts_per_request": a.texts_per_request,
            "mean_chars": sum(chars) / len(chars),
            "distinct_bodies": len(bodies),
            "warmup_requests": a.warmup,
            "timeout_s": a.timeout,
        },
        "runs": runs,
    }
    out = a.out.with_suffix("") if a.out.suffix in (".json", ".md") else a.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_name(out.name + ".json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    out.with_name(out.name + ".md").write_text(markdown(report), encoding="utf-8")
    print(f"wrote {out}.json and {out}.md")
    return 0 if all(r["errors"] == 0 and not r["timed_out"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
