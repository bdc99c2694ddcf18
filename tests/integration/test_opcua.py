"""`plantwatch opcua` against a real asyncua server: readings assembled at the interval, scored and stored,
and the reader reconnecting after the server goes away and comes back."""

import asyncio
import logging
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from asyncua import Server, ua

from plantwatch.adapters.detectors import PcaDetector
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.bootstrap import build_container
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.thresholds import build_thresholder
from plantwatch.entrypoints.cli.opcua import reader_for
from plantwatch.services.training import train_model
from plantwatch.settings import Settings

pytestmark = pytest.mark.integration

LINE_YAML = """
name: line
features:
  - {name: flow, unit: l/min}
  - {name: pressure, unit: bar}
timestamp: {column: time, formats: ["%Y-%m-%d %H:%M:%S.%f"]}
sampling_interval: 200ms
"""
NAMESPACE = "urn:plantwatch:opcua-test"
WAIT_S = 20.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _line_reading(t: int) -> tuple[float, float]:
    flow = 100 + 20 * np.sin(t / 15)
    return float(flow), float(6.0 - 0.02 * flow)


async def _start_server(endpoint: str) -> tuple[Server, dict[str, object], int]:
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    index = await server.register_namespace(NAMESPACE)
    line = await server.nodes.objects.add_object(index, "Line")
    variables = {
        name: await line.add_variable(ua.NodeId(f"Line.{name}", index), name, 0.0)
        for name in ("flow", "pressure")
    }
    await server.start()
    return server, variables, index


async def _write_forever(variables: dict[str, object]) -> None:
    t = 0
    while True:
        flow, pressure = _line_reading(t)
        await variables["flow"].write_value(flow)  # type: ignore[attr-defined]
        await variables["pressure"].write_value(pressure)  # type: ignore[attr-defined]
        t += 1
        await asyncio.sleep(0.05)


async def _until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_opcua_readings_are_scored_stored_and_survive_a_server_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "line.yaml").write_text(LINE_YAML)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        models_dir=tmp_path / "models",
        modules_dir=tmp_path / "modules",
        chatbot_embeddings=False,
    )
    container = build_container(settings)  # activates the "line" module
    module = Module("line")
    rows = [_line_reading(t) for t in range(600)]
    values = pd.DataFrame(rows, columns=["flow", "pressure"])
    values.index = pd.date_range("2024-01-01", periods=len(values), freq="200ms", name="timestamp")
    train_model(
        SensorFrame(module, "history", values),
        PcaDetector(),
        build_thresholder("quantile"),
        FileModelRegistry(settings.models_dir),
    )
    container.close()
    container = build_container(settings, [module])

    port = _free_port()
    endpoint = f"opc.tcp://127.0.0.1:{port}/plantwatch/"

    async def scenario() -> None:
        server, variables, index = await _start_server(endpoint)
        nodes = tmp_path / "nodes.yaml"
        nodes.write_text(
            f"source: line-1\nnodes:\n"
            f'  flow: "ns={index};s=Line.flow"\n  pressure: "ns={index};s=Line.pressure"\n'
        )
        reader = reader_for(container, module, endpoint, nodes, batch=2)
        reader.reconnect_max_s = 1.0
        writer = asyncio.create_task(_write_forever(variables))
        running = asyncio.create_task(reader.run())
        try:
            await _until(lambda: reader.stats.readings >= 6, "readings from the first server")
            writer.cancel()
            await server.stop()
            await _until(lambda: reader.stats.connection_losses >= 1, "the loss to be noticed")
            before = reader.stats.readings
            server, variables, _ = await _start_server(endpoint)
            writer = asyncio.create_task(_write_forever(variables))
            await _until(lambda: reader.stats.readings >= before + 6, "readings after the restart")
        finally:
            reader.stop()
            await asyncio.wait_for(running, timeout=WAIT_S)
            writer.cancel()
            await server.stop()

    try:
        asyncio.run(scenario())
        stored = container.repository.list_scores(module, limit=1000)
        # the PCA window needs 4 readings before the first score; every later reading is scored and stored
        assert len(stored) >= 8
        assert {point.source for point in stored} == {"line-1"}
        stamps = [point.timestamp for point in stored]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    finally:
        container.close()
