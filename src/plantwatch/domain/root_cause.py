"""Root cause: which features made a reading anomalous, largest contribution first."""

import math
from collections.abc import Sequence

import numpy as np

from plantwatch.domain.anomaly import FeatureContribution
from plantwatch.domain.errors import InvalidInputError


def rank_root_causes(
    feature_names: Sequence[str],
    contributions_row: np.ndarray | Sequence[float],
    observed_row: np.ndarray | Sequence[float],
    expected_row: np.ndarray | Sequence[float],
    top_k: int = 5,
) -> tuple[FeatureContribution, ...]:
    """The `top_k` features of one reading ranked by contribution, ties broken by feature name.

    Contributions are as a detector's `Explanation` gives them: each feature's error divided by its usual
    error on normal data (1.0 = as usual). Features with a NaN contribution (no full window yet) are left out.
    """
    if top_k < 1:
        raise InvalidInputError(f"top_k must be at least 1, got {top_k}", field="top_k")
    contributions = np.asarray(contributions_row, dtype=np.float64).ravel()
    observed = np.asarray(observed_row, dtype=np.float64).ravel()
    expected = np.asarray(expected_row, dtype=np.float64).ravel()
    for name, row in (
        ("contributions_row", contributions),
        ("observed_row", observed),
        ("expected_row", expected),
    ):
        if len(row) != len(feature_names):
            raise InvalidInputError(
                f"{name} has {len(row)} values but there are {len(feature_names)} feature names", field=name
            )
    ranked = sorted(
        (
            FeatureContribution(
                feature=str(feature),
                contribution=float(contributions[i]),
                observed=float(observed[i]),
                expected=float(expected[i]),
            )
            for i, feature in enumerate(feature_names)
            if not math.isnan(contributions[i])
        ),
        key=lambda item: (-item.contribution, item.feature),
    )
    return tuple(ranked[:top_k])
