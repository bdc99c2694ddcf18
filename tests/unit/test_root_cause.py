"""Ranking a reading's features by their share of its anomaly score."""

import numpy as np
import pytest

from plantwatch.domain.anomaly import FeatureContribution
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.root_cause import rank_root_causes

NAMES = ["flow", "pressure", "temperature", "vibration"]


def test_features_are_ranked_by_contribution_largest_first() -> None:
    ranked = rank_root_causes(
        NAMES,
        np.array([1.0, 12.5, 0.7, 3.0]),
        observed_row=np.array([10.0, 9.5, 60.0, 0.1]),
        expected_row=np.array([10.1, 5.0, 59.8, 0.2]),
    )
    assert [item.feature for item in ranked] == ["pressure", "vibration", "flow", "temperature"]
    assert ranked[0] == FeatureContribution("pressure", 12.5, observed=9.5, expected=5.0)


def test_ties_are_broken_by_feature_name() -> None:
    ranked = rank_root_causes(["b", "c", "a"], [2.0, 2.0, 2.0], [0, 0, 0], [0, 0, 0])
    assert [item.feature for item in ranked] == ["a", "b", "c"]


def test_top_k_keeps_the_largest() -> None:
    ranked = rank_root_causes(NAMES, [4.0, 3.0, 2.0, 1.0], [0] * 4, [0] * 4, top_k=2)
    assert [item.feature for item in ranked] == ["flow", "pressure"]


def test_nan_contributions_are_dropped() -> None:
    ranked = rank_root_causes(NAMES, [np.nan, 2.0, np.nan, 1.0], [0] * 4, [0] * 4)
    assert [item.feature for item in ranked] == ["pressure", "vibration"]
    assert rank_root_causes(NAMES, [np.nan] * 4, [0] * 4, [0] * 4) == ()


def test_values_are_plain_floats() -> None:
    ranked = rank_root_causes(
        NAMES, np.array([1, 2, 3, 4], dtype=np.float32), np.array([1, 2, 3, 4], dtype=np.int64), [0.5] * 4
    )
    assert all(type(value) is float for item in ranked for value in (item.contribution, item.observed))


def test_row_lengths_must_match_the_feature_names() -> None:
    with pytest.raises(InvalidInputError, match="expected_row has 3 values") as raised:
        rank_root_causes(NAMES, [1.0] * 4, [0.0] * 4, [0.0] * 3)
    assert raised.value.field == "expected_row"


def test_top_k_must_be_positive() -> None:
    with pytest.raises(InvalidInputError, match="top_k"):
        rank_root_causes(NAMES, [1.0] * 4, [0.0] * 4, [0.0] * 4, top_k=0)
