"""The behaviour every AnomalyRepository must have, as plain functions of a fresh, empty repository.

tests/unit/test_memory_repository.py runs them over the in-memory fake,
tests/unit/test_sql_repository_sqlite.py over SQLite and tests/integration/test_sql_repository.py over
PostgreSQL, so the fake cannot drift from the store.
"""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, timedelta

import pytest

from plantwatch.domain.anomaly import Anomaly, Severity
from plantwatch.domain.errors import InvalidInputError, NotFoundError
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyOrder, AnomalyQuery, AnomalyRepository
from tests.fakes import BASE_TIME, make_anomaly, make_score_point


def _all(repository: AnomalyRepository, **filters: object) -> list[Anomaly]:
    """Every anomaly matching the filters, walking all pages."""
    items: list[Anomaly] = []
    cursor = None
    while True:
        page = repository.find(AnomalyQuery(limit=7, cursor=cursor, **filters))  # type: ignore[arg-type]
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def _newest_first(anomalies: list[Anomaly]) -> list[Anomaly]:
    return sorted(anomalies, key=lambda a: (a.window_end, a.id), reverse=True)


def check_add_many_is_idempotent(repository: AnomalyRepository) -> None:
    batch = [make_anomaly(BASE_TIME + timedelta(minutes=i)) for i in range(3)]
    assert repository.add_many(batch) == 3
    assert repository.add_many(batch) == 0
    # Stored anomalies plus a new one given twice in the same batch: the new one counts once.
    extra = make_anomaly(BASE_TIME + timedelta(minutes=10))
    assert repository.add_many([*batch, extra, extra]) == 1
    assert repository.add_many([]) == 0
    assert len(_all(repository)) == 4


def check_get_round_trips_every_field(repository: AnomalyRepository) -> None:
    anomaly = make_anomaly(
        BASE_TIME.replace(microsecond=654321),
        module=Module.CYBER,
        source="plc-7",
        score=12.345678901234,
        threshold=0.987654321,
        severity=Severity.CRITICAL,
        features=("flow_rate", "valve_2", "tank_level"),
        model_name="pca",
        model_version="2024-03-01T12-00-00",
    )
    no_cause = make_anomaly(BASE_TIME, features=())
    repository.add_many([anomaly, no_cause])
    assert repository.get(anomaly.id) == anomaly
    assert repository.get(anomaly.id).top_feature == "flow_rate"
    assert repository.get(no_cause.id) == no_cause
    assert repository.get(no_cause.id).root_cause == ()


def check_get_unknown_id_raises_not_found(repository: AnomalyRepository) -> None:
    repository.add_many([make_anomaly()])
    with pytest.raises(NotFoundError, match="no-such-id"):
        repository.get("no-such-id")


def check_find_orders_newest_first_then_id_descending(repository: AnomalyRepository) -> None:
    # Several sources share window_ends, so the id decides their order.
    batch = [
        make_anomaly(BASE_TIME + timedelta(seconds=30 * (i % 4)), source=f"meter-{i}", features=("voltage",))
        for i in range(12)
    ]
    repository.add_many(batch)
    page = repository.find(AnomalyQuery(limit=100))
    assert page.items == _newest_first(batch)
    assert page.next_cursor is None


def check_find_filters(repository: AnomalyRepository) -> None:
    t = BASE_TIME
    energy_old = make_anomaly(t, severity=Severity.LOW, features=("voltage", "current"))
    energy_mid = make_anomaly(
        t + timedelta(hours=1), severity=Severity.MEDIUM, features=("current", "voltage")
    )
    energy_new = make_anomaly(t + timedelta(hours=2), severity=Severity.CRITICAL, features=("power_factor",))
    machine = make_anomaly(
        t + timedelta(hours=1),
        module=Module.MACHINE,
        source="press-3",
        severity=Severity.HIGH,
        features=("vib",),
    )
    cyber = make_anomaly(t + timedelta(hours=3), module=Module.CYBER, source="plc-1", features=("voltage",))
    repository.add_many([energy_old, energy_mid, energy_new, machine, cyber])

    assert _all(repository, module=Module.ENERGY) == [energy_new, energy_mid, energy_old]
    assert _all(repository, source="press-3") == [machine]
    assert _all(repository, source="nowhere") == []
    # since is inclusive, until exclusive: [t+1h, t+2h) holds the two anomalies at exactly t+1h.
    assert set(_all(repository, since=t + timedelta(hours=1), until=t + timedelta(hours=2))) == {
        energy_mid,
        machine,
    }
    assert _all(repository, since=t + timedelta(hours=2)) == [cyber, energy_new]
    assert _all(repository, until=t + timedelta(hours=1)) == [energy_old]
    assert _all(repository, min_severity=Severity.HIGH) == [cyber, energy_new, machine]
    assert _all(repository, min_severity=Severity.CRITICAL) == [energy_new]
    assert len(_all(repository, min_severity=Severity.LOW)) == 5
    # feature matches any rank of the root cause, not only the top one.
    assert _all(repository, feature="voltage") == [cyber, energy_mid, energy_old]
    assert _all(repository, feature="current", module=Module.ENERGY, min_severity=Severity.MEDIUM) == [
        energy_mid
    ]
    assert _all(repository, feature="no_such_feature") == []


def check_find_filters_by_model_version(repository: AnomalyRepository) -> None:
    old = make_anomaly(BASE_TIME, model_version="v0001")
    new = make_anomaly(BASE_TIME + timedelta(minutes=1), model_version="v0002")
    other_module = make_anomaly(BASE_TIME, module=Module.CYBER, model_version="v0002")
    repository.add_many([old, new, other_module])
    assert _all(repository, model_version="v0001") == [old]
    assert _all(repository, model_version="v0002") == [new, other_module]
    assert _all(repository, model_version="v0002", module=Module.ENERGY) == [new]
    assert _all(repository, model_version="v0003") == []


def check_pagination_walks_every_item_once_in_order(repository: AnomalyRepository) -> None:
    batch = [
        make_anomaly(BASE_TIME + timedelta(minutes=i // 3), source=f"meter-{i % 3}", model_version=str(i))
        for i in range(23)
    ]
    repository.add_many(batch)
    expected = _newest_first(batch)
    for limit in (1, 5, 23, 24):
        walked: list[Anomaly] = []
        cursor = None
        pages = 0
        while True:
            page = repository.find(AnomalyQuery(limit=limit, cursor=cursor))
            pages += 1
            assert len(page.items) <= limit
            walked.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert walked == expected, f"limit {limit}"
        assert pages == -(-len(expected) // limit), f"limit {limit}: the last full page must end the walk"


def check_pagination_keeps_filters(repository: AnomalyRepository) -> None:
    energy = [make_anomaly(BASE_TIME + timedelta(minutes=i)) for i in range(9)]
    machine = [make_anomaly(BASE_TIME + timedelta(minutes=i), module=Module.MACHINE) for i in range(9)]
    repository.add_many(energy + machine)
    assert _all(repository, module=Module.MACHINE) == _newest_first(machine)


def check_bad_cursor_and_limit_are_invalid_input(repository: AnomalyRepository) -> None:
    repository.add_many([make_anomaly()])
    # Not base64; base64 of text without the separator; a well-formed key with an unparseable timestamp.
    for cursor in ("not-base64!", "aGVsbG8=", "bm90LWEtdGltZXxzb21lLWlk"):
        with pytest.raises(InvalidInputError) as error:
            repository.find(AnomalyQuery(cursor=cursor))
        assert error.value.field == "cursor"
    with pytest.raises(InvalidInputError) as error:
        repository.find(AnomalyQuery(limit=0))
    assert error.value.field == "limit"


def check_batch_with_a_bad_item_stores_nothing(repository: AnomalyRepository) -> None:
    good = make_anomaly(BASE_TIME)
    bad = make_anomaly(BASE_TIME + timedelta(minutes=1), score=float("nan"))
    with pytest.raises(InvalidInputError) as error:
        repository.add_many([good, bad])
    assert error.value.field == "score"
    assert "anomaly 1" in str(error.value)
    assert _all(repository) == []
    with pytest.raises(NotFoundError):
        repository.get(good.id)
    assert repository.add_many([good]) == 1


def check_timezone_aware_timestamps_are_refused(repository: AnomalyRepository) -> None:
    aware = make_anomaly(BASE_TIME.replace(tzinfo=UTC))
    with pytest.raises(InvalidInputError) as error:
        repository.add_many([aware])
    assert error.value.field == "window_start"
    with pytest.raises(InvalidInputError) as error:
        repository.find(AnomalyQuery(since=BASE_TIME.replace(tzinfo=UTC)))
    assert error.value.field == "since"
    assert _all(repository) == []


def check_scores_are_idempotent_and_oldest_first(repository: AnomalyRepository) -> None:
    points = [make_score_point(BASE_TIME + timedelta(seconds=i), score=i / 10) for i in range(10)]
    other_source = [make_score_point(BASE_TIME + timedelta(seconds=i), source="meter-2") for i in range(3)]
    other_module = [make_score_point(BASE_TIME, module=Module.MACHINE)]
    shuffled = points[5:] + other_source + points[:5] + other_module
    assert repository.add_scores(shuffled) == 14
    assert repository.add_scores(shuffled) == 0
    # A new model version scores the same reading again: a new point.
    assert repository.add_scores([replace(points[0], model_version="2"), points[1]]) == 1

    energy = repository.list_scores(Module.ENERGY)
    assert len(energy) == 14
    assert [p.timestamp for p in energy] == sorted(p.timestamp for p in energy)
    assert repository.list_scores(Module.MACHINE) == other_module
    assert repository.list_scores(Module.CYBER) == []

    since, until = BASE_TIME + timedelta(seconds=3), BASE_TIME + timedelta(seconds=6)
    window = repository.list_scores(Module.ENERGY, since=since, until=until)
    assert window == points[3:6]
    assert (
        repository.list_scores(Module.ENERGY, since=BASE_TIME + timedelta(seconds=4), limit=2) == points[4:6]
    )


def check_scores_batch_with_a_bad_point_stores_nothing(repository: AnomalyRepository) -> None:
    points = [
        make_score_point(BASE_TIME),
        make_score_point(BASE_TIME + timedelta(seconds=1), score=float("inf")),
    ]
    with pytest.raises(InvalidInputError) as error:
        repository.add_scores(points)
    assert error.value.field == "score"
    assert repository.list_scores(Module.ENERGY) == []


def _aggregation_store(repository: AnomalyRepository) -> list[Anomaly]:
    """Nine anomalies over three modules, with ties in score and time, one without a root cause, and one at
    a threshold of 0."""
    t = BASE_TIME
    batch = [
        make_anomaly(t, score=3.0, severity=Severity.HIGH, features=("voltage", "current")),
        make_anomaly(t + timedelta(minutes=10), score=5.0, severity=Severity.CRITICAL, features=("current",)),
        make_anomaly(t + timedelta(minutes=10), source="meter-2", score=1.5, severity=Severity.MEDIUM),
        make_anomaly(t + timedelta(minutes=59, seconds=59), score=1.1, severity=Severity.LOW, features=()),
        make_anomaly(t + timedelta(hours=1), module=Module.MACHINE, score=3.0, severity=Severity.HIGH),
        make_anomaly(
            t + timedelta(hours=2, minutes=30), module=Module.MACHINE, score=9.0, severity=Severity.CRITICAL
        ),
        make_anomaly(
            t + timedelta(hours=3), module=Module.CYBER, score=0.5, threshold=0.0, features=("P101",)
        ),
        make_anomaly(
            t - timedelta(days=400),
            module=Module.CYBER,
            score=2.0,
            severity=Severity.MEDIUM,
            features=("P101",),
        ),
        make_anomaly(t + timedelta(hours=2), source="meter-3", score=3.0, severity=Severity.HIGH),
    ]
    repository.add_many(batch)
    return batch


def check_tally_counts_every_match_by_module_severity_and_top_feature(repository: AnomalyRepository) -> None:
    batch = _aggregation_store(repository)
    everything = repository.tally(AnomalyQuery(limit=1))  # the limit does not cap a tally
    assert everything.total == 9
    assert everything.by_module == {Module.ENERGY: 5, Module.MACHINE: 2, Module.CYBER: 2}
    assert everything.by_severity == {
        Severity.LOW: 1,
        Severity.MEDIUM: 2,
        Severity.HIGH: 4,
        Severity.CRITICAL: 2,
    }
    assert everything.by_top_feature == {"voltage": 5, "current": 1, "P101": 2}
    assert (everything.earliest, everything.latest) == (BASE_TIME - timedelta(days=400), batch[6].window_end)
    assert everything.latest_by_module == {
        Module.ENERGY: batch[8].window_end,
        Module.MACHINE: batch[5].window_end,
        Module.CYBER: batch[6].window_end,
    }
    assert everything.top_features_by_module == {
        Module.ENERGY: {"voltage": 3, "current": 1},
        Module.MACHINE: {"voltage": 2},
        Module.CYBER: {"P101": 2},
    }
    energy_serious = repository.tally(
        AnomalyQuery(module=Module.ENERGY, severities=frozenset({Severity.HIGH, Severity.CRITICAL}))
    )
    assert energy_serious.total == 3
    assert energy_serious.by_severity[Severity.CRITICAL] == 1
    assert energy_serious.by_module[Module.MACHINE] == 0
    # feature matches any rank; the top-feature counts stay about rank 0
    with_current = repository.tally(AnomalyQuery(feature="current"))
    assert (with_current.total, with_current.by_top_feature) == (6, {"voltage": 5, "current": 1})
    empty = repository.tally(AnomalyQuery(module=Module.CYBER, since=BASE_TIME + timedelta(days=1)))
    assert (empty.total, empty.earliest, empty.latest, empty.by_top_feature) == (0, None, None, {})
    assert set(empty.by_severity.values()) == {0}


def check_severity_and_module_set_filters_in_find(repository: AnomalyRepository) -> None:
    batch = _aggregation_store(repository)
    low_or_critical = frozenset({Severity.LOW, Severity.CRITICAL})
    found = _all(repository, severities=low_or_critical)
    assert found == _newest_first([a for a in batch if a.severity in low_or_critical])
    assert len(found) == 3
    two_modules = _all(repository, modules=frozenset({Module.MACHINE, Module.CYBER}))
    assert two_modules == _newest_first([a for a in batch if a.module is not Module.ENERGY])
    assert _all(repository, modules=frozenset()) == []


def check_top_orders_with_newest_first_as_tie_break(repository: AnomalyRepository) -> None:
    batch = _aggregation_store(repository)
    top = repository.top
    assert top(AnomalyQuery(limit=2), AnomalyOrder.OLDEST) == [batch[7], batch[0]]
    highest = top(AnomalyQuery(limit=4), AnomalyOrder.HIGHEST_SCORE)
    # three anomalies score 3.0: the newest of them come first
    assert highest == [batch[5], batch[1], batch[8], batch[4]]
    assert top(AnomalyQuery(module=Module.ENERGY, limit=1), AnomalyOrder.LOWEST_SCORE) == [batch[3]]
    # severity first; within "high" the threshold-0 anomaly is infinitely past its threshold, then ratio-3
    # ties newest first
    severe = top(AnomalyQuery(limit=100), AnomalyOrder.MOST_SEVERE)
    assert severe == [batch[i] for i in (5, 1, 6, 8, 4, 0, 7, 2, 3)]
    assert top(AnomalyQuery(module=Module.CYBER, feature="nothing", limit=5), AnomalyOrder.OLDEST) == []


def check_histogram_counts_per_half_open_bucket(repository: AnomalyRepository) -> None:
    _aggregation_store(repository)
    hour = timedelta(hours=1)
    # [t, t+1h) holds 4 (59:59 included), [t+1h, t+2h) 1, [t+2h, t+3h) 2; t+3h is past the last bucket
    assert repository.histogram(AnomalyQuery(), BASE_TIME, hour, 3) == [4, 1, 2]
    assert repository.histogram(AnomalyQuery(module=Module.ENERGY), BASE_TIME, hour, 4) == [4, 0, 1, 0]
    assert repository.histogram(
        AnomalyQuery(since=BASE_TIME + timedelta(minutes=5)), BASE_TIME, timedelta(minutes=30), 2
    ) == [2, 1]
    assert repository.histogram(AnomalyQuery(), BASE_TIME - timedelta(days=401), timedelta(days=1), 2) == [
        0,
        1,
    ]


def check_batch_stores_scores_and_anomalies_together_and_idempotently(repository: AnomalyRepository) -> None:
    points = [make_score_point(BASE_TIME + timedelta(minutes=i)) for i in range(3)]
    found = [make_anomaly(BASE_TIME + timedelta(minutes=2))]
    stored = repository.add_batch(points, found)
    assert (stored.new_scores, stored.new_anomalies) == (3, 1)
    again = repository.add_batch(points, found)
    assert (again.new_scores, again.new_anomalies) == (0, 0)
    assert len(repository.list_scores(Module.ENERGY)) == 3 and len(_all(repository)) == 1


def check_batch_with_a_bad_anomaly_stores_no_score(repository: AnomalyRepository) -> None:
    points = [make_score_point(BASE_TIME)]
    bad = replace(make_anomaly(BASE_TIME), score=float("nan"))
    with pytest.raises(InvalidInputError):
        repository.add_batch(points, [bad])
    assert repository.list_scores(Module.ENERGY) == [] and _all(repository) == []


def check_latest_scores_of_one_source_and_version_before_a_time(repository: AnomalyRepository) -> None:
    """Where live scoring continues the alarm rule from: the last points of one source under one model
    version, strictly before a time, oldest first, with the statistic and alarm they were stored with."""
    points = [
        make_score_point(BASE_TIME + timedelta(seconds=i), score=i / 10, statistic=i / 7, alarm=i % 3 == 0)
        for i in range(10)
    ]
    others = [
        make_score_point(BASE_TIME + timedelta(seconds=5), source="meter-2", statistic=9.0, alarm=True),
        make_score_point(BASE_TIME + timedelta(seconds=5), model_version="2", statistic=9.0, alarm=True),
        make_score_point(BASE_TIME + timedelta(seconds=5), module=Module.MACHINE, statistic=9.0),
        make_score_point(BASE_TIME + timedelta(seconds=5), model_name="gru", statistic=9.0),
    ]
    repository.add_batch([*reversed(points), *others], [])
    latest = repository.latest_scores(
        Module.ENERGY, "meter-1", "lstm_ae", "1", BASE_TIME + timedelta(seconds=8), 3
    )
    assert latest == points[5:8]
    assert [p.statistic for p in latest] == [5 / 7, 6 / 7, 7 / 7]
    assert [p.alarm for p in latest] == [False, True, False]
    assert repository.latest_scores(Module.ENERGY, "meter-1", "lstm_ae", "1", BASE_TIME, 3) == []
    assert repository.latest_scores(
        Module.ENERGY, "meter-1", "lstm_ae", "2", BASE_TIME + timedelta(days=1), 5
    ) == [others[1]]
    # a point stored before scores carried the rule reads back without them
    old = make_score_point(BASE_TIME + timedelta(minutes=5))
    repository.add_scores([old])
    assert repository.list_scores(Module.ENERGY, since=old.timestamp) == [old]
    assert old.statistic is None and old.alarm is None
    with pytest.raises(InvalidInputError) as error:
        repository.add_scores([make_score_point(BASE_TIME + timedelta(minutes=9), statistic=float("nan"))])
    assert error.value.field == "statistic"


def check_revision_grows_only_when_an_anomaly_is_added(repository: AnomalyRepository) -> None:
    start = repository.revision()
    batch = [make_anomaly(BASE_TIME + timedelta(minutes=i)) for i in range(2)]
    repository.add_many(batch)
    after_add = repository.revision()
    assert after_add > start
    repository.add_many(batch)  # nothing new
    repository.add_batch([make_score_point(BASE_TIME)], [])  # scores only
    assert repository.revision() == after_add
    with pytest.raises(InvalidInputError):
        repository.add_many([replace(make_anomaly(BASE_TIME + timedelta(hours=1)), score=float("nan"))])
    assert repository.revision() == after_add
    repository.add_batch([], [make_anomaly(BASE_TIME + timedelta(hours=2))])
    assert repository.revision() > after_add


CONTRACT: list[Callable[[AnomalyRepository], None]] = [
    check_revision_grows_only_when_an_anomaly_is_added,
    check_add_many_is_idempotent,
    check_get_round_trips_every_field,
    check_get_unknown_id_raises_not_found,
    check_find_orders_newest_first_then_id_descending,
    check_find_filters,
    check_find_filters_by_model_version,
    check_pagination_walks_every_item_once_in_order,
    check_pagination_keeps_filters,
    check_bad_cursor_and_limit_are_invalid_input,
    check_batch_with_a_bad_item_stores_nothing,
    check_timezone_aware_timestamps_are_refused,
    check_scores_are_idempotent_and_oldest_first,
    check_scores_batch_with_a_bad_point_stores_nothing,
    check_tally_counts_every_match_by_module_severity_and_top_feature,
    check_severity_and_module_set_filters_in_find,
    check_top_orders_with_newest_first_as_tie_break,
    check_histogram_counts_per_half_open_bucket,
    check_batch_stores_scores_and_anomalies_together_and_idempotently,
    check_batch_with_a_bad_anomaly_stores_no_score,
    check_latest_scores_of_one_source_and_version_before_a_time,
]
CONTRACT_IDS = [check.__name__.removeprefix("check_") for check in CONTRACT]
