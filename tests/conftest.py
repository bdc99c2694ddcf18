"""Fixtures shared by every test folder."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantwatch.adapters.modules import reset_catalog

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


@pytest.fixture(autouse=True)
def builtin_modules_only() -> Iterator[None]:
    """Each test starts and ends with the built-in module configurations: a test (or a command it runs) that
    activates a folder of user modules must not leak them into the next test."""
    reset_catalog()
    yield
    reset_catalog()


_exit_status: int | None = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # After every report is written, leave without interpreter teardown: native thread pools (torch, the
    # tokenizers of the chatbot's embedding model) were seen aborting the process at exit ("terminate called
    # without an active exception", status 134) after every test had passed, which would turn a green run red.
    if _exit_status is not None and os.environ.get("PLANTWATCH_TEST_HARD_EXIT", "1") == "1":
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)
