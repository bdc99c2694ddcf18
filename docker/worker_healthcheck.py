"""Docker HEALTHCHECK for an MQTT worker: healthy while the container holds an ESTABLISHED TCP connection to
the broker port. A worker that lost its broker (and is retrying) or hung before connecting reports unhealthy.

It reads /proc/net/tcp{,6}, which inside a container lists only that container's sockets, so it needs no tool
(ss, netstat) in the slim image and no help from the worker process.
"""

import os
import sys
from pathlib import Path

ESTABLISHED = "01"


def established_remote_ports(table: Path) -> set[int]:
    if not table.exists():
        return set()
    ports = set()
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        remote, state = fields[2], fields[3]
        if state == ESTABLISHED:
            ports.add(int(remote.rsplit(":", 1)[1], 16))
    return ports


def main() -> int:
    broker_port = int(os.environ.get("PLANTWATCH_MQTT_PORT", "1883"))
    connected = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        connected |= established_remote_ports(table)
    if broker_port in connected:
        return 0
    print(f"no established connection to the MQTT broker port {broker_port}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
