"""Throughput and latency of every kind of API route under concurrent load on loopback, beside a bare
FastAPI app that returns the same 100 anomalies (the same-run baseline: what the framework and the load
generator cost on this machine at this moment).

    .venv/bin/python benchmarks/api_load.py [--anomalies 20000] [--concurrency 1 8 64] [--seconds 5]
        [--workers 1 2]

Starts `plantwatch serve --workers N` in a subprocess over a SQLite store seeded with generated anomalies and
a PCA model per module fitted on the shipped samples, then drives it with N concurrent httpx clients, each
sending its next request as soon as the last one answered (closed loop). GET /anomalies alternates between
the first page, a filtered page and a deeper page reached with its cursor. The last table is /health, probed
once every 50 ms while 64 clients saturate GET /anomalies and the chatbot.
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

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


def start_baseline(work: Path, page: dict[str, object], port: int) -> subprocess.Popen[bytes]:
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
            return server
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError("the baseline did not start")


REQUEST_TIMEOUT_S = 30.0
Request = Callable[[httpx.AsyncClient, int], "asyncio.Future[httpx.Response]"]


def anomaly_pages(client: httpx.Client) -> Request:
    deep_cursor = client.get("/anomalies", params={"limit": 100}).json()["next_cursor"]
    pages: list[dict[str, str | int]] = [
        {"limit": 100},
        {"limit": 100, "min_severity": "high", "feature": "LIT101"},
        {"limit": 100, "cursor": deep_cursor},
    ]
    return lambda http, n: http.get("/anomalies", params=pages[n % len(pages)])  # type: ignore[return-value]


QUESTIONS = [
    "how many critical anomalies in energy",
    "what went wrong in cyber",
    "top root cause in machine",
]


def chatbot_questions() -> Request:
    return lambda http, n: http.post(  # type: ignore[return-value]
        "/chatbot/query", json={"question": QUESTIONS[n % len(QUESTIONS)]}
    )


def ingest_batches() -> Request:
    sample = load_sample(Module.ENERGY)
    values = sample.values.iloc[:5000]
    bodies = []
    for begin in range(0, 5000, 100):
        chunk = values.iloc[begin : begin + 100]
        readings = [
            {"timestamp": ts.isoformat(), "values": {k: float(v) for k, v in row.items()}}
            for ts, row in chunk.iterrows()
        ]
        bodies.append(json.dumps({"source": "bench", "readings": readings}).encode())
    return lambda http, n: http.post(  # type: ignore[return-value]
        "/ingest/energy", content=bodies[n % len(bodies)], headers={"content-type": "application/json"}
    )


def health_probe() -> Request:
    return lambda http, n: http.get("/health")  # type: ignore[return-value]


async def load(base_url: str, request: Request, concurrency: int, seconds: float) -> tuple[np.ndarray, int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        stop_at = time.perf_counter() + seconds

        async def client_loop(offset: int) -> None:
            nonlocal errors
            n = offset
            while time.perf_counter() < stop_at:
                began = time.perf_counter()
                try:
                    response = await request(client, n)
                    ok = response.status_code == 200
                except httpx.TimeoutException:
                    ok = False
                latencies.append(time.perf_counter() - began)
                errors += not ok
                n += 1

        await asyncio.gather(*(client_loop(i) for i in range(concurrency)))
    return np.array(latencies), errors


async def health_under_load(base_url: str, saturate: list[Request], seconds: float) -> np.ndarray:
    """/health latencies, one probe every 50 ms, while 64 clients per request kind saturate the server."""
    probes: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            while time.perf_counter() < stop_at:
                began = time.perf_counter()
                await http.get("/health")
                probes.append(time.perf_counter() - began)
                await asyncio.sleep(0.05)

    await asyncio.gather(probe(), *(load(base_url, request, 32, seconds) for request in saturate))
    return np.array(probes)


def row(
    name: str, concurrency: int, latencies: np.ndarray, errors: int, seconds: float, base: float | None
) -> list[str]:
    rate = len(latencies) / seconds
    p50, p99 = np.percentile(latencies * 1000, [50, 99]) if len(latencies) else (float("nan"),) * 2
    ratio = f"{rate / base:.2f}x" if base else ""
    return [name, str(concurrency), f"{rate:,.0f}", f"{p50:.1f}", f"{p99:.1f}", str(errors), ratio]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--anomalies", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="plantwatch-api-load-"))
    url = f"sqlite:///{work / 'store.db'}"
    console.print(f"seeding {args.anomalies} anomalies into {url} ...")
    seed_store(url, args.anomalies)
    register_models(work / "models")
    columns = ("route", "clients", "req/s", "p50 ms", "p99 ms", "errors", "vs bare")
    for workers in args.workers:
        port = free_port()
        server = start_server(work, url, port, workers)
        base_url = f"http://127.0.0.1:{port}"
        table = Table(title=f"plantwatch serve --workers {workers}, SQLite, {args.anomalies} anomalies")
        for column in columns:
            table.add_column(column, justify="right")
        try:
            with httpx.Client(base_url=base_url) as client:
                page = client.get("/anomalies", params={"limit": 100}).json()
                routes = {
                    "GET /anomalies": anomaly_pages(client),
                    "POST /chatbot/query": chatbot_questions(),
                    "POST /ingest/energy (100)": ingest_batches(),
                    "GET /health": health_probe(),
                }
            baseline_port = free_port()
            baseline = start_baseline(work, page, baseline_port)
            try:
                bare: dict[int, float] = {}
                for concurrency in args.concurrency:
                    latencies, errors = asyncio.run(
                        load(
                            f"http://127.0.0.1:{baseline_port}",
                            lambda http, n: http.get("/anomalies"),
                            concurrency,
                            args.seconds,
                        )  # type: ignore[arg-type,return-value]
                    )
                    bare[concurrency] = len(latencies) / args.seconds
                    table.add_row(
                        *row("bare FastAPI, same 100", concurrency, latencies, errors, args.seconds, None)
                    )
            finally:
                baseline.terminate()
                baseline.wait(10)
            for name, request in routes.items():
                for concurrency in args.concurrency:
                    latencies, errors = asyncio.run(load(base_url, request, concurrency, args.seconds))
                    base = bare[concurrency] if name == "GET /anomalies" else None
                    cells = row(name, concurrency, latencies, errors, args.seconds, base)
                    table.add_row(*cells)
                    console.print(" | ".join(cells))
            probes = asyncio.run(
                health_under_load(
                    base_url, [routes["GET /anomalies"], routes["POST /chatbot/query"]], args.seconds
                )
            )
            table.add_row(*row("GET /health, saturated", 1, probes, 0, args.seconds, None))
            console.print(table)
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
