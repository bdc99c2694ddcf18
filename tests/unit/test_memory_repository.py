"""The in-memory fake passes the same repository contract as the SQL store."""

from collections.abc import Callable

import pytest

from plantwatch.domain.ports import AnomalyRepository
from tests.fakes import InMemoryAnomalyRepository
from tests.repository_contract import CONTRACT, CONTRACT_IDS


@pytest.mark.parametrize("check", CONTRACT, ids=CONTRACT_IDS)
def test_memory_repository_contract(check: Callable[[AnomalyRepository], None]) -> None:
    check(InMemoryAnomalyRepository())
