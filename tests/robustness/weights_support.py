"""Brute-force helpers shared by the robustness tests."""

from __future__ import annotations

import numpy as np


def moved(weights: np.ndarray, j: int, t: np.ndarray) -> np.ndarray:
    """Weights with w_j = t and the others rescaled proportionally (rows for each t)."""
    others = np.delete(np.arange(weights.size), j)
    out = np.empty((t.size, weights.size))
    out[:, j] = t
    out[:, others] = weights[others] * ((1 - t) / (1 - weights[j]))[:, None]
    return out
