"""Label-free thresholds: empirical quantile and peaks-over-threshold (EVT) on known distributions."""

import logging

import numpy as np
import pytest
from scipy import stats

from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.thresholds import (
    AlarmBudgetThresholder,
    PotThresholder,
    QuantileThresholder,
    alarm_runs,
    build_thresholder,
    calibrate_threshold,
)


def test_pot_threshold_is_close_to_the_true_quantile_of_an_exponential() -> None:
    scores = np.random.default_rng(0).exponential(scale=2.0, size=20_000)
    risk = 1e-3
    true = stats.expon(scale=2.0).ppf(1 - risk)
    assert PotThresholder(risk=risk).calibrate(scores) == pytest.approx(true, rel=0.05)


def test_pot_extrapolates_beyond_the_data_where_a_quantile_cannot() -> None:
    # 2,000 normal scores cannot show the 1e-4 tail empirically; the Pareto fit can
    scores = np.random.default_rng(1).exponential(size=2_000)
    true = stats.expon().ppf(1 - 1e-4)
    pot = PotThresholder(risk=1e-4).calibrate(scores)
    assert pot > scores.max()
    assert pot == pytest.approx(true, rel=0.2)


def test_pot_handles_a_heavy_tail() -> None:
    scores = stats.pareto(b=3.0).rvs(size=50_000, random_state=np.random.default_rng(2))
    true = stats.pareto(b=3.0).ppf(1 - 1e-3)
    assert PotThresholder(risk=1e-3).calibrate(scores) == pytest.approx(true, rel=0.15)


def test_pot_lowers_its_initial_quantile_for_short_runs() -> None:
    scores = np.random.default_rng(3).exponential(size=300)
    threshold = PotThresholder(risk=1e-3).calibrate(scores)
    assert threshold == pytest.approx(stats.expon().ppf(1 - 1e-3), rel=0.35)


def test_pot_on_too_few_scores_falls_back_to_the_empirical_quantile_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # issue 11: a short calibration set (the 400-reading protocol) failed every model; now it warns instead
    pot = PotThresholder(risk=1e-2)
    with caplog.at_level(logging.WARNING, logger="plantwatch.domain.thresholds"):
        threshold = pot.calibrate(np.arange(50.0))
    assert threshold == pytest.approx(np.quantile(np.arange(50.0), 0.99))
    assert pot.fell_back
    assert "at least 110 normal scores, got 50" in caplog.text and "falling back" in caplog.text


def test_pot_on_tied_scores_falls_back_instead_of_failing() -> None:
    scores = np.concatenate([np.zeros(995), np.full(5, 3.0)])
    pot = PotThresholder(risk=1e-3)
    assert pot.calibrate(scores) == pytest.approx(np.quantile(scores, 0.999))
    assert pot.fell_back


def test_pot_with_enough_scores_does_not_fall_back() -> None:
    pot = PotThresholder()
    pot.calibrate(np.random.default_rng(6).exponential(size=5_000))
    assert not pot.fell_back


def test_alarm_budget_keeps_false_alarm_runs_per_day_within_the_budget() -> None:
    rng = np.random.default_rng(7)
    # 10 days of 1-minute normal scores with bursts: runs of high scores, as a detector's scores come
    scores = rng.exponential(size=14_400)
    scores += np.convolve(rng.random(14_400) < 0.002, np.ones(5), mode="same") * rng.exponential(5, 14_400)
    for budget in (0.5, 2.0, 10.0):
        threshold = AlarmBudgetThresholder(alarms_per_day=budget, readings_per_day=1440).calibrate(scores)
        assert alarm_runs(scores > threshold) <= budget * 10
    loose = AlarmBudgetThresholder(alarms_per_day=10.0, readings_per_day=1440).calibrate(scores)
    strict = AlarmBudgetThresholder(alarms_per_day=0.5, readings_per_day=1440).calibrate(scores)
    assert strict > loose
    # the budget is used, not wasted on a needlessly high threshold
    assert alarm_runs(scores > loose) >= 50


def test_alarm_budget_on_less_data_than_one_budgeted_alarm_takes_the_largest_normal_score() -> None:
    scores = np.random.default_rng(8).exponential(size=100)
    threshold = AlarmBudgetThresholder(alarms_per_day=1.0, readings_per_day=1440).calibrate(scores)
    assert threshold == pytest.approx(scores.max())


def test_alarm_runs_counts_separate_alarms() -> None:
    assert alarm_runs(np.array([True, True, False, True, False, False, True])) == 3
    assert alarm_runs(np.array([], dtype=bool)) == 0


def test_pot_with_a_constant_tail_returns_that_value() -> None:
    scores = np.concatenate([np.zeros(980), np.full(20, 5.0)])
    assert PotThresholder(initial_quantile=0.95, risk=1e-3).calibrate(scores) == 5.0


def test_quantile_threshold_is_the_empirical_quantile() -> None:
    scores = np.arange(1001.0)
    assert QuantileThresholder(q=0.99).calibrate(scores) == pytest.approx(990.0)


def test_nan_scores_are_ignored() -> None:
    scores = np.random.default_rng(4).exponential(size=5_000)
    with_nan = np.concatenate([np.full(23, np.nan), scores])
    for method in ("pot", "quantile"):
        assert calibrate_threshold(with_nan, method) == calibrate_threshold(scores, method)


def test_only_nan_scores_are_an_error() -> None:
    with pytest.raises(InvalidInputError, match="no finite normal scores"):
        QuantileThresholder().calibrate(np.full(10, np.nan))


def test_calibrate_threshold_passes_parameters_to_the_method() -> None:
    scores = np.random.default_rng(5).exponential(size=10_000)
    assert calibrate_threshold(scores, "quantile", q=0.9) == pytest.approx(np.quantile(scores, 0.9))
    assert calibrate_threshold(scores, "pot", risk=1e-2) < calibrate_threshold(scores, "pot", risk=1e-4)


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("spot", {}, "method"),
        ("quantile", {"q": 1.5}, "q"),
        ("pot", {"risk": 0.5}, "risk"),
        ("pot", {"initial_quantile": 0.2}, "initial_quantile"),
        ("pot", {"level": 0.2}, "params"),
        ("budget", {"alarms_per_day": -1.0}, "alarms_per_day"),
        ("budget", {"readings_per_day": 0.0}, "readings_per_day"),
    ],
)
def test_bad_threshold_settings_name_the_field(method: str, params: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        build_thresholder(method, **params)
    assert raised.value.field == field


def test_thresholders_say_their_method() -> None:
    assert build_thresholder("pot").method == "pot"
    assert build_thresholder("quantile").method == "quantile"
    assert build_thresholder("budget").method == "budget"
