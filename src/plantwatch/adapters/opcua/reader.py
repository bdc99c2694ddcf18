"""Read a module's features from OPC UA nodes (asyncua): subscribe to their data changes, and at every
sampling interval turn the latest value of each node into one reading. Readings go out in batches, as
SensorFrames, to a callback (which scores and stores them).

The connection is watched at every tick; when it is lost the reader drops it, waits (doubling the wait up to
a cap) and connects and subscribes again. A tick without a value for every node (right after connecting, or
while disconnected) makes no reading: a reading with a feature missing would be a made-up reading.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from asyncua import Client, Node
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plantwatch.domain.errors import ModuleConfigError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module

log = logging.getLogger(__name__)


class OpcuaNodes(BaseModel):
    """The nodes file: which OPC UA node each feature of the module is read from."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(default="opcua", min_length=1, max_length=200, description="source of the readings")
    nodes: dict[str, str] = Field(min_length=1, description="feature name: node id, e.g. ns=2;s=Line1.Temp")


def read_nodes_file(path: Path) -> OpcuaNodes:
    """Read and validate a nodes file; ModuleConfigError names the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ModuleConfigError(str(path), f"cannot read file: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise ModuleConfigError(str(path), f"not valid YAML: {error}") from None
    try:
        return OpcuaNodes.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        raise ModuleConfigError(str(path), str(first["msg"]), where) from None


@dataclass
class ReaderStats:
    connects: int = 0
    connection_losses: int = 0
    readings: int = 0
    batches: int = 0
    skipped_ticks: int = 0
    """Ticks without a value for every node (just connected, or disconnected)."""
    errors: list[str] = field(default_factory=list)


class _LatestValues:
    """asyncua subscription handler: keeps the latest value of each subscribed node, by feature."""

    def __init__(self, features_by_node: Mapping[str, str]) -> None:
        self.features_by_node = dict(features_by_node)
        self.values: dict[str, float] = {}

    def datachange_notification(self, node: Node, value: Any, _data: Any) -> None:
        feature = self.features_by_node.get(node.nodeid.to_string())
        if feature is None:
            return
        try:
            self.values[feature] = float(value)
        except (TypeError, ValueError):
            log.warning(
                "node %s (%s) sent %r, not a number; ignored", node.nodeid.to_string(), feature, value
            )


class OpcuaReader:
    """Readings of `module` from `endpoint`, one per `interval`, in batches of `batch_size` to `on_batch`."""

    def __init__(
        self,
        endpoint: str,
        module: Module,
        nodes: OpcuaNodes,
        feature_names: list[str],
        interval: pd.Timedelta,
        on_batch: Callable[[SensorFrame], None],
        batch_size: int = 1,
        reconnect_max_s: float = 30.0,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.endpoint = endpoint
        self.module = module
        self.nodes = nodes
        self.feature_names = feature_names
        self.interval = interval
        self.on_batch = on_batch
        self.batch_size = batch_size
        self.reconnect_max_s = reconnect_max_s
        self.clock = clock
        self.stats = ReaderStats()
        self._pending: list[tuple[datetime, list[float]]] = []
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, max_readings: int | None = None) -> ReaderStats:
        """Read until stop() (or `max_readings`), reconnecting whenever the connection is lost."""
        wait = self.interval.total_seconds()
        while not self._stopping(max_readings):
            try:
                await self._session(max_readings)
                wait = self.interval.total_seconds()
            except (OSError, TimeoutError, ConnectionError) as error:
                self._lost(error)
            except Exception as error:  # asyncua raises its own errors for a dropped session: all mean "lost"
                if self._stop.is_set():
                    break
                self._lost(error)
            if self._stopping(max_readings):
                break
            log.info("reconnecting to %s in %.1f s", self.endpoint, wait)
            await self._sleep(wait)
            wait = min(wait * 2, self.reconnect_max_s)
        self._flush()
        return self.stats

    def _lost(self, error: BaseException) -> None:
        self.stats.connection_losses += 1
        self.stats.errors.append(f"{type(error).__name__}: {error}")
        log.warning("OPC UA connection to %s lost: %s", self.endpoint, error)

    def _stopping(self, max_readings: int | None) -> bool:
        return self._stop.is_set() or (max_readings is not None and self.stats.readings >= max_readings)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def _session(self, max_readings: int | None) -> None:
        client = Client(url=self.endpoint, timeout=max(2.0, self.interval.total_seconds()))
        await client.connect()
        self.stats.connects += 1
        log.info("connected to %s", self.endpoint)
        try:
            handler = _LatestValues({})
            nodes = []
            for feature, node_id in self.nodes.nodes.items():
                node = client.get_node(node_id)
                handler.features_by_node[node.nodeid.to_string()] = feature
                nodes.append(node)
            period_ms = max(10.0, self.interval.total_seconds() * 1000 / 2)
            subscription = await client.create_subscription(period_ms, handler)
            await subscription.subscribe_data_change(nodes)
            while not self._stopping(max_readings):
                await self._sleep(self.interval.total_seconds())
                await client.check_connection()  # raises once the server is gone
                self._tick(handler.values)
        finally:
            try:
                await asyncio.wait_for(client.disconnect(), timeout=2.0)
            except Exception:  # the connection may already be gone; nothing is left to close cleanly
                log.debug("disconnect from %s failed", self.endpoint, exc_info=True)

    def _tick(self, latest: Mapping[str, float]) -> None:
        if any(name not in latest for name in self.feature_names):
            self.stats.skipped_ticks += 1
            return
        stamp = pd.Timestamp(self.clock()).floor(self.interval).to_pydatetime()
        if self._pending and stamp <= self._pending[-1][0]:
            return  # a tick that fell into the same interval as the last one
        self._pending.append((stamp, [latest[name] for name in self.feature_names]))
        self.stats.readings += 1
        if len(self._pending) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        stamps, rows = zip(*self._pending, strict=True)
        self._pending = []
        values = pd.DataFrame(
            list(rows),
            columns=self.feature_names,
            index=pd.DatetimeIndex(list(stamps), name="timestamp"),
            dtype="float64",
        )
        self.stats.batches += 1
        self.on_batch(SensorFrame(module=self.module, source=self.nodes.source, values=values))
