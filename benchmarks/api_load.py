"""Throughput and latency of every kind of API route under concurrent load on loopback, beside a bare
FastAPI app that returns the same 100 anomalies (the same-run baseline: what the framework and the load
generator cost on this machine at this moment).

    .venv/bin/python benchmarks/api_load.py [--anomalies 20000] [--concurrency 1 8 32 64] [--seconds 5]
        [--workers 1 2]

Starts `plantwatch serve --workers N` in a subprocess over a SQLite store seeded with generated anomalies and
a PCA model per module fitted on the shipped samples, then drives it with N concurrent connections from wrk
(apt install wrk; httpx clients where it is missing), each sending its next request as soon as the last one
was answered (closed loop). The bare baseline runs with as many worker processes. GET /anomalies alternates
between the first page, a filtered page and a deeper page reached with its cursor. The last row is /health,
probed once every 50 ms while 32 connections each saturate GET /anomalies and the chatbot.
"""

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from plantwatch.adapters.datasets import load_sample, sample_path
from plantwatch.adapters.detectors import build_detector
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.adapters.storage import SqlAnomalyRepository, create_engine_from_url, create_schema
from plantwatch.domain.anomaly import Anomaly, FeatureContribution, severity_for
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import ModelCard

console = Console()
FEATURES = ["usage_kwh", "LIT101", "FIT401", "temperature", "vibration", "pressure"]


def seed_store(url: str, count: int) -> None:
    rng = np.random.default_rng(7)
    start = datetime(2024, 1, 1)
    modules = list(Module)
    anomalies = []
    for n in range(count):
        score = float(1.0 + rng.exponential(1.5))
        features = rng.choice(FEATURES, size=3, replace=False)
        anomalies.append(
            Anomaly(
                module=modules[n % len(modules)],
                source=f"source-{n % 7}",
                window_start=start + timedelta(minutes=n - 4),
                window_end=start + timedelta(minutes=n),
                score=score,
                threshold=1.0,
                severity=severity_for(score, 1.0),
                root_cause=tuple(
                    FeatureContribution(str(f), float(10 - i), 1.0, 0.5) for i, f in enumerate(features)
                ),
                model_name="pca",
                model_version="v0001",
                detected_at=start,
            )
        )
    engine = create_engine_from_url(url)
    create_schema(engine)
    repository = SqlAnomalyRepository(engine)
    for begin in range(0, count, 2000):
        repository.add_many(anomalies[begin : begin + 2000])
    engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def register_models(models_dir: Path) -> None:
    """A PCA model per module fitted on the shipped samples, as `plantwatch run` would train quickly."""
    registry = FileModelRegistry(models_dir)
    for module in Module:
        sample = load_sample(module)
        train = sample.normal_only().to_numpy()[:2000]
        detector = build_detector("pca", window=4).fit(train, sample.feature_names)
        card = ModelCard(
            module=module,
            model_name="pca",
            version="bench",
            feature_names=sample.feature_names,
            window=4,
            threshold=float(np.nanquantile(detector.score(train), 0.99)),
            threshold_method="quantile",
            data_hash="sample",
            training_source=str(sample_path(module)),
            created_at=datetime(2024, 1, 1),
        )
        registry.save(detector, card)


def wait_until_up(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code in (200, 503):
                return
        except httpx.HTTPError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("the server did not start")


def start_server(work: Path, url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PLANTWATCH_DATABASE_URL": url,
        "PLANTWATCH_MODELS_DIR": str(work / "models"),
        "PLANTWATCH_ENERGY_MODEL": "pca",
        "PLANTWATCH_MACHINE_MODEL": "pca",
        "PLANTWATCH_CYBER_MODEL": "pca",
        # the chatbot's embedding model warms up in a background thread for seconds after start-up; the
        # chatbot rows measure the keyword rules
        "PLANTWATCH_CHATBOT_EMBEDDINGS": "false",
        "PLANTWATCH_API_RATE_LIMIT": "1000000/second",
        "OMP_NUM_THREADS": "1",
        # this checkout's code, whatever the installed package points at (the server runs in a temp folder)
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
    }
    command = [sys.executable, "-m", "plantwatch", "serve", "--port", str(port), "--workers", str(workers)]
    # the server logs a JSON line per request, as in production; the benchmark does not read them
    server = subprocess.Popen(
        command, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_until_up(port, server)
    return server


BASELINE_APP = """
import json, os
from fastapi import FastAPI
app = FastAPI()
PAGE = json.loads(open(os.environ["BASELINE_PAGE"], encoding="utf-8").read())

@app.get("/anomalies")
def anomalies() -> dict:
    return PAGE
"""


def start_baseline(work: Path, page: dict[str, object], port: int, workers: int) -> subprocess.Popen[bytes]:
    (work / "baseline_app.py").write_text(BASELINE_APP, encoding="utf-8")
    (work / "page.json").write_text(json.dumps(page), encoding="utf-8")
    env = {**os.environ, "BASELINE_PAGE": str(work / "page.json"), "PYTHONPATH": str(work)}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "baseline_app:app",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(
        command, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/anomalies", timeout=2)
            time.sleep(1 if workers > 1 else 0)  # the other worker processes come up just after the first
            return server
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError("the baseline did not start")


REQUEST_TIMEOUT_S = 30.0
# One request as the load generator sends it: method, path with its query string, JSON body or None.
RequestSpec = tuple[str, str, bytes | None]


def anomaly_pages(client: httpx.Client) -> list[RequestSpec]:
    deep_cursor = client.get("/anomalies", params={"limit": 100}).json()["next_cursor"]
    pages: list[dict[str, str | int]] = [
        {"limit": 100},
        {"limit": 100, "min_severity": "high", "feature": "LIT101"},
        {"limit": 100, "cursor": deep_cursor},
    ]
    return [("GET", f"/anomalies?{urlencode(page)}", None) for page in pages]


QUESTIONS = [
    "how many critical anomalies in energy",
    "what went wrong in cyber",
    "top root cause in machine",
]


def chatbot_questions() -> list[RequestSpec]:
    return [("POST", "/chatbot/query", json.dumps({"question": q}).encode()) for q in QUESTIONS]


def ingest_batches() -> list[RequestSpec]:
    values = load_sample(Module.ENERGY).values.iloc[:5000]
    bodies = []
    for begin in range(0, len(values), 100):
        chunk = values.iloc[begin : begin + 100]
        readings = [
            {"timestamp": ts.isoformat(), "values": {k: float(v) for k, v in row.items()}}
            for ts, row in chunk.iterrows()
        ]
        bodies.append(
            ("POST", "/ingest/energy", json.dumps({"source": "bench", "readings": readings}).encode())
        )
    return bodies


HEALTH: list[RequestSpec] = [("GET", "/health", None)]


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: float = float("nan")
    """Server CPU time per request (all its processes): unlike req/s, barely moved by other load."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


# wrk sends the requests in turn, each connection its next one as soon as the last was answered, and
# reports the summary as one JSON line. Bodies are read from files: too long for a command line.
WRK_SCRIPT = """
local specs = {}
init = function(args)
  for i = 1, #args, 3 do
    local body = nil
    if args[i + 2] ~= "-" then
      local file = io.open(args[i + 2], "rb"); body = file:read("*a"); file:close()
    end
    local headers = {["Content-Type"] = "application/json"}
    table.insert(specs, wrk.format(args[i], args[i + 1], headers, body))
  end
  counter = 0
end
request = function()
  counter = counter + 1
  return specs[(counter % #specs) + 1]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "micros": %d, "p50": %d, "p99": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def wrk_load(base_url: str, specs: list[RequestSpec], concurrency: int, seconds: float) -> LoadResult:
    """Closed-loop load from wrk (C, two threads): the client costs little beside the server it measures."""
    work = Path(tempfile.mkdtemp(prefix="plantwatch-wrk-"))
    (work / "load.lua").write_text(WRK_SCRIPT, encoding="utf-8")
    args: list[str] = []
    for n, (method, path, body) in enumerate(specs):
        body_file = "-"
        if body is not None:
            body_file = str(work / f"body{n}.json")
            Path(body_file).write_bytes(body)
        args += [method, path, body_file]
    threads = min(2, concurrency)
    command = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"]
    output = subprocess.run(
        [*command, "-s", str(work / "load.lua"), base_url, "--", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    summary = json.loads(output.strip().splitlines()[-1])
    return LoadResult(
        requests=summary["requests"],
        seconds=summary["micros"] / 1e6,
        p50_ms=summary["p50"] / 1000,
        p99_ms=summary["p99"] / 1000,
        errors=summary["errors"],
    )


async def httpx_load(base_url: str, specs: list[RequestSpec], concurrency: int, seconds: float) -> LoadResult:
    """The same closed loop from httpx clients, where wrk is not installed; past ~8 connections the Python
    client's own cost dominates what it measures."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        stop_at = time.perf_counter() + seconds

        async def client_loop(offset: int) -> None:
            nonlocal errors
            n = offset
            while time.perf_counter() < stop_at:
                method, path, body = specs[n % len(specs)]
                began = time.perf_counter()
                try:
                    response = await client.request(method, path, content=body, headers=headers)
                    ok = response.status_code == 200
                except httpx.TimeoutException:
                    ok = False
                latencies.append(time.perf_counter() - began)
                errors += not ok
                n += 1

        await asyncio.gather(*(client_loop(i) for i in range(concurrency)))
    p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99]) if latencies else (float("nan"),) * 2
    return LoadResult(len(latencies), seconds, float(p50), float(p99), errors)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its child processes (uvicorn's workers), from /proc."""
    total = 0.0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        pids += [int(child) for child in children]
    return total


def load(
    base_url: str, specs: list[RequestSpec], concurrency: int, seconds: float, server_pid: int | None = None
) -> LoadResult:
    cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
    if shutil.which("wrk"):
        result = wrk_load(base_url, specs, concurrency, seconds)
    else:
        result = asyncio.run(httpx_load(base_url, specs, concurrency, seconds))
    if server_pid and result.requests:
        cpu_ms = (cpu_seconds(server_pid) - cpu_before) * 1000 / result.requests
        result = replace(result, cpu_ms=cpu_ms)
    return result


def health_under_load(base_url: str, saturate: list[list[RequestSpec]], seconds: float) -> LoadResult:
    """/health latencies, one probe every 50 ms, while 32 connections per request kind saturate the server."""
    probes: list[float] = []
    time.sleep(2)  # let the server finish what the previous rows left queued
    with ThreadPoolExecutor(len(saturate)) as pool:
        loads = [pool.submit(load, base_url, specs, 32, seconds) for specs in saturate]
        time.sleep(0.5)  # let the load build up
        stop_at = time.monotonic() + seconds - 1
        with httpx.Client(base_url=base_url, timeout=60) as http:
            while time.monotonic() < stop_at:
                began = time.perf_counter()
                http.get("/health")
                probes.append(time.perf_counter() - began)
                time.sleep(0.05)
        for f in loads:
            f.result()
    p50, p99 = np.percentile(np.array(probes) * 1000, [50, 99])
    return LoadResult(len(probes), seconds, float(p50), float(p99), 0)


def row(name: str, concurrency: int, result: LoadResult, base: float | None) -> list[str]:
    ratio = f"{result.rate / base:.2f}x" if base else ""
    return [
        name,
        str(concurrency),
        f"{result.rate:,.0f}",
        f"{result.p50_ms:.1f}",
        f"{result.p99_ms:.1f}",
        str(result.errors),
        f"{result.cpu_ms:.2f}",
        ratio,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--anomalies", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="plantwatch-api-load-"))
    url = f"sqlite:///{work / 'store.db'}"
    console.print(f"seeding {args.anomalies} anomalies into {url} ...")
    seed_store(url, args.anomalies)
    register_models(work / "models")
    client_name = "wrk" if shutil.which("wrk") else "httpx (wrk not installed)"
    columns = ("route", "clients", "req/s", "p50 ms", "p99 ms", "errors", "server CPU ms/req", "vs bare")
    for workers in args.workers:
        port = free_port()
        server = start_server(work, url, port, workers)
        base_url = f"http://127.0.0.1:{port}"
        table = Table(
            title=f"plantwatch serve --workers {workers}, SQLite, {args.anomalies} anomalies, "
            f"load from {client_name}"
        )
        for column in columns:
            table.add_column(column, justify="right")
        try:
            with httpx.Client(base_url=base_url) as client:
                page = client.get("/anomalies", params={"limit": 100}).json()
                routes = {
                    "GET /anomalies": anomaly_pages(client),
                    "POST /chatbot/query": chatbot_questions(),
                    "POST /ingest/energy (100)": ingest_batches(),
                    "GET /health": HEALTH,
                }
            baseline_port = free_port()
            baseline = start_baseline(work, page, baseline_port, workers)
            try:
                bare: dict[int, float] = {}
                for concurrency in args.concurrency:
                    result = load(
                        f"http://127.0.0.1:{baseline_port}",
                        [("GET", "/anomalies", None)],
                        concurrency,
                        args.seconds,
                        baseline.pid,
                    )
                    bare[concurrency] = result.rate
                    cells = row("bare FastAPI, same 100", concurrency, result, None)
                    table.add_row(*cells)
                    console.print(" | ".join(cells))
            finally:
                baseline.terminate()
                baseline.wait(10)
            for name, specs in routes.items():
                for concurrency in args.concurrency:
                    result = load(base_url, specs, concurrency, args.seconds, server.pid)
                    base = bare[concurrency] if name == "GET /anomalies" else None
                    cells = row(name, concurrency, result, base)
                    table.add_row(*cells)
                    console.print(" | ".join(cells))
            probes = health_under_load(
                base_url, [routes["GET /anomalies"], routes["POST /chatbot/query"]], args.seconds
            )
            cells = row(f"GET /health, saturated ({probes.requests} probes)", 1, probes, None)
            table.add_row(*cells)
            console.print(" | ".join(cells))
            console.print(table)
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
