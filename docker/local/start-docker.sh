#!/usr/bin/env bash
# Makes a Docker engine available on a Debian machine without one (CI here): installs docker.io (and debootstrap,
# for the local base images) when missing, then starts dockerd in the background unless one answers already.
# Usage: docker/local/start-docker.sh   (as root)
set -euo pipefail

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    log=/var/log/plantwatch-dockerd.log
    echo "starting dockerd (log: $log)"
    # setsid: the engine outlives this script and the make run that called it, like a system service would
    setsid dockerd >"$log" 2>&1 < /dev/null &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
fi
docker info --format 'Docker {{.ServerVersion}}, storage driver {{.Driver}}, cgroup driver {{.CgroupDriver}}'
