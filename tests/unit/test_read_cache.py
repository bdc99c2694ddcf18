"""RevisionCachedRepository: the repository contract holds through it, and it reads the store again exactly
when the revision moved."""

from collections.abc import Callable
from datetime import timedelta

import pytest

from plantwatch.adapters.storage.read_cache import RevisionCachedRepository
from plantwatch.domain.ports import AnomalyOrder, AnomalyQuery, AnomalyRepository
from tests.fakes import BASE_TIME, InMemoryAnomalyRepository, make_anomaly
from tests.repository_contract import CONTRACT, CONTRACT_IDS


@pytest.mark.parametrize("check", CONTRACT, ids=CONTRACT_IDS)
def test_cached_repository_contract(check: Callable[[AnomalyRepository], None]) -> None:
    check(RevisionCachedRepository(InMemoryAnomalyRepository()))


class CountingRepository(InMemoryAnomalyRepository):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def find(self, query):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().find(query)

    def tally(self, query):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().tally(query)

    def top(self, query, order):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().top(query, order)


def test_reads_hit_the_store_once_per_revision_and_query() -> None:
    store = CountingRepository()
    cached = RevisionCachedRepository(store)
    store.add_many([make_anomaly(BASE_TIME)])
    for _ in range(3):
        assert len(cached.find(AnomalyQuery()).items) == 1
        assert cached.tally(AnomalyQuery()).total == 1
        assert len(cached.top(AnomalyQuery(), AnomalyOrder.MOST_SEVERE)) == 1
    assert store.reads == 3
    cached.find(AnomalyQuery(limit=5))  # another query is another entry
    assert store.reads == 4

    # a write straight to the store (another process) moves the revision: the next reads see it
    store.add_many([make_anomaly(BASE_TIME + timedelta(minutes=1))])
    assert len(cached.find(AnomalyQuery()).items) == 2 and cached.tally(AnomalyQuery()).total == 2
    assert store.reads == 6
    # a write that adds nothing keeps the cache
    store.add_many([make_anomaly(BASE_TIME)])
    cached.find(AnomalyQuery())
    assert store.reads == 6


def test_a_caller_changing_its_list_does_not_change_the_cache() -> None:
    cached = RevisionCachedRepository(InMemoryAnomalyRepository())
    cached.add_many([make_anomaly(BASE_TIME)])
    cached.find(AnomalyQuery()).items.clear()
    cached.top(AnomalyQuery(), AnomalyOrder.OLDEST).clear()
    assert len(cached.find(AnomalyQuery()).items) == 1
    assert len(cached.top(AnomalyQuery(), AnomalyOrder.OLDEST)) == 1
