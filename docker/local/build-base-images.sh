#!/usr/bin/env bash
# Builds what the plantwatch images need on a machine that reaches no image registry (only the Debian mirror and
# PyPI): stand-ins for the public base images, made from a debootstrap root and Debian packages, each only when
# missing, and the wheel source, an image of a wheelhouse that the host's pip fills (the host may reach package
# sources that a build container cannot, e.g. a local torch CPU wheel). Cheap when nothing changed.
# Usage: docker/local/build-base-images.sh [PIP]   (PIP: the pip to fill the wheelhouse with; default: pip)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
PIP=${1:-pip}

DEBIAN_IMAGE=plantwatch-local/debian:bookworm
WHEELS_IMAGE=plantwatch-local/wheels:latest
WHEELHOUSE=$ROOT/build/wheelhouse
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

have() { docker image inspect "$1" >/dev/null 2>&1; }

if ! have "$DEBIAN_IMAGE"; then
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    echo "debootstrap bookworm -> $DEBIAN_IMAGE"
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
    # package lists and downloaded .debs would only weigh down every image built on this one
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" -c . | docker import - "$DEBIAN_IMAGE" >/dev/null
fi

for name in python postgres mosquitto; do
    tag=$(sed -n 's/^# tag: //p' "Dockerfile.$name")
    if ! have "$tag"; then
        echo "building $tag"
        docker build -q --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" -f "Dockerfile.$name" -t "$tag" . >/dev/null
    fi
done

# The runtime dependencies and the build backend, as pinned in pyproject.toml; `pip wheel` builds any that
# ships only as a source archive, so the image needs no compiler.
requirements=$(mktemp)
"$ROOT/docker/local/requirements.py" "$ROOT/pyproject.toml" > "$requirements"
echo "filling $WHEELHOUSE"
"$PIP" wheel --quiet --wheel-dir "$WHEELHOUSE" -r "$requirements" 2> >(grep -v "is ignored: it is neither" >&2)
rm -f "$requirements"
docker build -q -f Dockerfile.wheels -t "$WHEELS_IMAGE" "$WHEELHOUSE" >/dev/null
echo "base images and $WHEELS_IMAGE ready"
