"""Does the training data have structure a detector can learn? Data of independent noise does not.

The test: shuffle each feature's validation readings independently, which breaks both the order in time and
the links between features, and score the shuffled copy beside the real one. On data with structure, the
detector finds the shuffled readings odd (ROC-AUC of "shuffled vs real" well above 0.5); on noise the copy
looks like the original (AUC about 0.5) and whatever threshold was calibrated means nothing.
"""

import numpy as np
from sklearn.metrics import roc_auc_score

from plantwatch.domain.ports import Detector

# Below this AUC the detector hardly tells shuffled readings from real ones.
STRUCTURE_AUC_WARNING = 0.6
_MIN_SCORES = 20


def shuffled_columns(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of `values` (T, F) with each column permuted on its own."""
    shuffled = np.array(values, dtype=np.float64, copy=True)
    for column in range(shuffled.shape[1]):
        shuffled[:, column] = rng.permutation(shuffled[:, column])
    return shuffled


def structure_auc(
    detector: Detector, values: np.ndarray, history: np.ndarray | None = None, seed: int = 0
) -> float | None:
    """ROC-AUC of the fitted `detector`'s scores telling a column-shuffled copy of `values` from the real
    readings (higher = more structure); None when too few windows are scored to say."""
    real = detector.score(values, history=history)
    shuffled = detector.score(shuffled_columns(values, np.random.default_rng(seed)), history=history)
    real, shuffled = real[np.isfinite(real)], shuffled[np.isfinite(shuffled)]
    if min(len(real), len(shuffled)) < _MIN_SCORES:
        return None
    truth = np.concatenate([np.zeros(len(real)), np.ones(len(shuffled))])
    return float(roc_auc_score(truth, np.concatenate([real, shuffled])))
