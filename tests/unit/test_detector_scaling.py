"""Robust scaling: median and interquartile range, so a training period's spikes do not stretch the scale."""

import numpy as np
import pytest

from plantwatch.adapters.detectors import build_detector
from plantwatch.domain.errors import InvalidInputError


def test_robust_scaling_ignores_the_spikes_that_stretch_the_standard_scale() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0.0, 1.0, (2_000, 3))
    values[::100, 0] += 200.0  # 1 % spikes on the first sensor
    standard = build_detector("pca", window=1).fit(values, ["a", "b", "c"])
    robust = build_detector("pca", window=1, scaling="robust").fit(values, ["a", "b", "c"])
    assert standard.std_ is not None and robust.std_ is not None and robust.mean_ is not None
    assert standard.std_[0] > 10
    assert robust.std_[0] == pytest.approx(1.35, rel=0.1)  # the IQR of a unit normal
    assert abs(robust.mean_[0]) < 0.1


def test_unknown_scaling_is_named() -> None:
    with pytest.raises(InvalidInputError) as raised:
        build_detector("robust_z", scaling="minmax")
    assert raised.value.field == "scaling"
