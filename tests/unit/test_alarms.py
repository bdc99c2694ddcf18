"""Alarm logic apart from the score: EWMA, CUSUM, k-of-n persistence and minimum gap, calibrated on normal
scores only."""

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwatch.domain.alarms import AlarmRule, parse_alarm_rule, rule_of_card
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.thresholds import AlarmBudgetThresholder, QuantileThresholder, alarm_runs
from tests.streaming_support import trained_pca


def normal_scores(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).exponential(size=n)


def test_plain_rule_is_score_over_threshold() -> None:
    scores = np.array([0.5, np.nan, 3.0, 1.0])
    np.testing.assert_array_equal(AlarmRule().alarms(scores, 0.9), [False, False, True, True])


def test_persistence_needs_k_of_the_last_n_readings_over_the_threshold() -> None:
    scores = np.array([5, 0, 0, 5, 0, 5, 5, 0, 0, 0], dtype=float)
    alarms = AlarmRule(k=2, n=3).alarms(scores, 1.0)
    np.testing.assert_array_equal(alarms, [False, False, False, False, False, True, True, True, False, False])


def test_min_gap_merges_alarm_runs_that_come_close_together() -> None:
    over = np.array([5, 0, 0, 5, 0, 0, 0, 0, 5], dtype=float)
    assert alarm_runs(AlarmRule().alarms(over, 1.0)) == 3
    merged = AlarmRule(min_gap=3).alarms(over, 1.0)
    np.testing.assert_array_equal(merged[:4], [True, True, True, True])
    assert alarm_runs(merged) == 2


def test_ewma_finds_a_small_sustained_shift_the_raw_score_misses() -> None:
    normal = normal_scores(20_000)
    test = np.concatenate([normal_scores(2_000, seed=1), normal_scores(500, seed=2) + 1.5])
    truth = np.r_[np.zeros(2_000), np.ones(500)].astype(bool)
    quantile = QuantileThresholder(0.999)
    plain, plain_threshold = AlarmRule().calibrate(normal, quantile)
    ewma, ewma_threshold = AlarmRule(smoothing="ewma", ewma_alpha=0.05).calibrate(normal, quantile)
    plain_recall = plain.alarms(test, plain_threshold)[truth].mean()
    ewma_alarms = ewma.alarms(test, ewma_threshold)
    assert ewma_alarms[truth].mean() > 0.8 > 0.2 > plain_recall
    assert ewma_alarms[~truth].mean() < 0.01  # still calibrated on normal scores


def test_cusum_reference_comes_from_normal_scores_and_accumulates_a_shift() -> None:
    normal = normal_scores(20_000)
    rule, threshold = AlarmRule(smoothing="cusum").calibrate(normal, QuantileThresholder(0.999))
    assert rule.reference == pytest.approx(np.quantile(normal, 0.9))
    shifted = normal_scores(300, seed=3) + 2.0
    assert rule.alarms(shifted, threshold)[150:].all()
    assert rule.alarms(normal_scores(5_000, seed=4), threshold).mean() < 0.01


def test_cusum_before_calibration_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="calibrate"):
        AlarmRule(smoothing="cusum").statistic(np.ones(5))


def test_spec_round_trips_and_bad_parts_are_named() -> None:
    rule = parse_alarm_rule("ewma:0.1+2of3+gap:12")
    assert (rule.smoothing, rule.ewma_alpha, rule.k, rule.n, rule.min_gap) == ("ewma", 0.1, 2, 3, 12)
    assert parse_alarm_rule(rule.spec) == rule
    assert parse_alarm_rule("none") == AlarmRule()
    assert parse_alarm_rule("cusum").smoothing == "cusum"
    with pytest.raises(InvalidInputError, match="'wobble'"):
        parse_alarm_rule("ewma+wobble")
    with pytest.raises(InvalidInputError, match="k <= n"):
        parse_alarm_rule("4of3")
    with pytest.raises(InvalidInputError, match="both ewma and cusum"):
        parse_alarm_rule("ewma+cusum")


# Rules live scoring applies: smoothing and persistence, each alone and combined.
LIVE_RULES = ["none", "ewma:0.2", "cusum:0.9", "2of3", "ewma:0.3+3of5", "cusum:0.8+2of4"]


def _calibrated(spec: str) -> tuple[AlarmRule, float]:
    return parse_alarm_rule(spec).calibrate(normal_scores(2_000), QuantileThresholder(0.95))


def _series_with_shifts() -> np.ndarray:
    """Normal scores with two shifts (alarms) and a few NaN (readings without a full window)."""
    scores = normal_scores(400, seed=5)
    scores[120:150] += 2.0
    scores[300:304] += 4.0
    scores[:3] = np.nan
    return scores


@pytest.mark.parametrize("spec", LIVE_RULES)
@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=399), max_size=12))
def test_rule_run_batch_after_batch_equals_the_whole_series(spec: str, cuts: list[int]) -> None:
    rule, threshold = _calibrated(spec)
    scores = _series_with_shifts()
    whole = rule.alarms(scores, threshold)
    assert whole.any() and not whole.all()
    edges = [0, *sorted(set(cuts)), len(scores)]
    state = None
    alarms, statistic = [], []
    for begin, end in itertools.pairwise(edges):
        applied = rule.run(scores[begin:end], threshold, state)
        alarms.append(applied.alarms)
        statistic.append(applied.statistic)
        state = applied.state
    np.testing.assert_array_equal(np.concatenate(alarms), whole)
    # bit for bit, not approximately: the recursion continues with the very float it stopped at
    np.testing.assert_array_equal(np.concatenate(statistic), rule.statistic(scores))


@pytest.mark.parametrize("spec", LIVE_RULES)
def test_state_rebuilt_from_stored_statistics_continues_exactly(spec: str) -> None:
    """What live scoring does after a restart or on another worker: the state from the last stored
    statistics (readings without a score are not stored) gives the same alarms as the whole series."""
    rule, threshold = _calibrated(spec)
    scores = _series_with_shifts()
    whole = rule.alarms(scores, threshold)
    for cut in (5, 121, 140, 149, 301):
        stored = rule.statistic(scores[:cut])
        stored = stored[~np.isnan(stored)][-rule.history_needed :] if rule.needs_state else stored[:0]
        state = rule.state_after(stored.tolist(), threshold)
        np.testing.assert_array_equal(rule.run(scores[cut:], threshold, state).alarms, whole[cut:])


def test_ewma_statistic_is_pandas_ewm_bit_for_bit() -> None:
    scores = normal_scores(5_000, seed=6)
    scores[[0, 10, 11, 400]] = np.nan
    expected = pd.Series(scores).ewm(alpha=0.2, adjust=False, ignore_na=True).mean().to_numpy().copy()
    expected[np.isnan(scores)] = np.nan
    np.testing.assert_array_equal(parse_alarm_rule("ewma:0.2").statistic(scores), expected)


def test_only_a_rule_without_gap_applies_live_and_needs_state_when_it_remembers() -> None:
    assert not parse_alarm_rule("ewma:0.2+gap:12").applies_live
    assert parse_alarm_rule("cusum:0.99+2of3").applies_live
    assert not parse_alarm_rule("none").needs_state
    assert parse_alarm_rule("2of3").history_needed == 2
    assert parse_alarm_rule("ewma:0.2").history_needed == 1


def test_alarm_budget_counts_the_rules_alarms_not_only_the_statistic_over_the_threshold() -> None:
    """With persistence, isolated over-threshold readings raise no alarm: the budget may go lower than it
    could counting every run of the statistic over the threshold."""
    scores = normal_scores(14_400, seed=7)  # ten days at one reading a minute
    budget = AlarmBudgetThresholder(alarms_per_day=2.0, readings_per_day=1440.0)
    rule, threshold = parse_alarm_rule("3of3").calibrate(scores, budget)
    plain_threshold = AlarmBudgetThresholder(alarms_per_day=2.0, readings_per_day=1440.0).calibrate(scores)
    assert threshold < plain_threshold
    assert alarm_runs(rule.alarms(scores, threshold)) <= 20
    assert alarm_runs(AlarmRule().alarms(scores, threshold)) > 20


def test_card_without_a_rule_reads_as_the_plain_rule_and_a_cusum_card_keeps_its_reference() -> None:
    card = trained_pca().card
    assert rule_of_card(card) == AlarmRule()
    cusum = rule_of_card(replace(card, alarm_rule="cusum:0.99", alarm_reference=1.25))
    assert cusum.smoothing == "cusum" and cusum.reference == 1.25
