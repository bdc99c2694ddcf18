"""Fixtures shared by every test folder."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_datasets_dir(repo_root: Path) -> Path:
    """The team's read-only copies of the real public data sets; skips the test when they are not there.

    PLANTWATCH_SHARED_DATASETS_DIR overrides the default ../shared/datasets (relative to the repo root).
    """
    configured = Path(os.environ.get("PLANTWATCH_SHARED_DATASETS_DIR", "../shared/datasets"))
    directory = configured if configured.is_absolute() else repo_root / configured
    if not directory.is_dir():
        pytest.skip(f"real data sets not found at {directory}")
    return directory
