#!/usr/bin/env python3
"""Prints the requirements a plantwatch image installs: the build backend and the runtime dependencies, as
pinned in the given pyproject.toml (no dev dependencies: they never go into an image)."""

import sys
import tomllib

with open(sys.argv[1], "rb") as file:
    pyproject = tomllib.load(file)
print("\n".join([*pyproject["build-system"]["requires"], *pyproject["project"]["dependencies"]]))
