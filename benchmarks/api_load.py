"""Latency of GET /anomalies under concurrent load on loopback.

    .venv/bin/python benchmarks/api_load.py [--anomalies 20000] [--concurrency 1 8 32] [--seconds 10]

Starts uvicorn in a subprocess over a SQLite store seeded with generated anomalies, then drives it with N
concurrent httpx clients, each sending its next request as soon as the last one answered (closed loop).
Pages alternate between the first page, a filtered page and a deeper page reached with its cursor.
"""

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from plantwatch.adapters.storage import SqlAnomalyRepository, create_engine_from_url, create_schema
from plantwatch.domain.anomaly import Anomaly, FeatureContribution, severity_for
from plantwatch.domain.modules import Module

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


def start_server(work: Path, url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PLANTWATCH_DATABASE_URL": url,
        "PLANTWATCH_MODELS_DIR": str(work / "models"),
        # the chatbot's embedding model warms up in a background thread for seconds after start-up; it would
        # compete with the requests measured here, which never touch it
        "PLANTWATCH_CHATBOT_EMBEDDINGS": "false",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "plantwatch.entrypoints.api.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    server = subprocess.Popen(command, env=env, cwd=work)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code in (200, 503):
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.terminate()
    raise RuntimeError("uvicorn did not start")


async def load(base_url: str, concurrency: int, seconds: float) -> tuple[np.ndarray, int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        deep_cursor = (await client.get("/anomalies", params={"limit": 100})).json()["next_cursor"]
        requests: list[dict[str, str | int]] = [
            {"limit": 100},
            {"limit": 100, "min_severity": "high", "feature": "LIT101"},
            {"limit": 100, "cursor": deep_cursor},
        ]
        stop_at = time.perf_counter() + seconds

        async def client_loop(offset: int) -> None:
            nonlocal errors
            n = offset
            while time.perf_counter() < stop_at:
                began = time.perf_counter()
                response = await client.get("/anomalies", params=requests[n % len(requests)])
                latencies.append(time.perf_counter() - began)
                if response.status_code != 200:
                    errors += 1
                n += 1

        await asyncio.gather(*(client_loop(i) for i in range(concurrency)))
    return np.array(latencies), errors


def wrk_row(url: str, concurrency: int, seconds: float) -> list[str]:
    """Requests, req/s and p50/p90/p99 from `wrk --latency` on one URL."""
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    percentiles = dict(re.findall(r"^\s+(50|90|99)%\s+([\d.]+(?:us|ms|s))$", output, re.MULTILINE))

    def millis(text: str) -> str:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return f"{float(value) * {'us': 1e-3, 'ms': 1.0, 's': 1e3}[unit]:.1f}"

    requests = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    return [
        str(concurrency),
        requests.group(1) if requests else "?",
        f"{float(rate.group(1)):,.0f}" if rate else "?",
        *(millis(percentiles[p]) if p in percentiles else "?" for p in ("50", "90", "99")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--anomalies", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="plantwatch-api-load-"))
    url = f"sqlite:///{work / 'store.db'}"
    console.print(f"seeding {args.anomalies} anomalies into {url} ...")
    seed_store(url, args.anomalies)
    port = free_port()
    server = start_server(work, url, port)
    table = Table(title=f"GET /anomalies (limit 100), uvicorn 1 process, SQLite, {args.anomalies} anomalies")
    for column in ("clients", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors"):
        table.add_column(column, justify="right")
    try:
        for concurrency in args.concurrency:
            latencies, errors = asyncio.run(load(f"http://127.0.0.1:{port}", concurrency, args.seconds))
            p50, p90, p99 = np.percentile(latencies * 1000, [50, 90, 99])
            table.add_row(
                str(concurrency),
                str(len(latencies)),
                f"{len(latencies) / args.seconds:,.0f}",
                f"{p50:.1f}",
                f"{p90:.1f}",
                f"{p99:.1f}",
                str(errors),
            )
        console.print(table)
        if shutil.which("wrk"):
            wrk_table = Table(title="wrk: GET /anomalies?limit=100 (first page), same server")
            for column in ("connections", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms"):
                wrk_table.add_column(column, justify="right")
            for concurrency in args.concurrency:
                url = f"http://127.0.0.1:{port}/anomalies?limit=100"
                wrk_table.add_row(*wrk_row(url, concurrency, args.seconds))
            console.print(wrk_table)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
