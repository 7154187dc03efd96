"""AHP criteria weights from Saaty pairwise comparisons (principal eigenvector, consistency ratio).

Saaty, T. L. (1980). The Analytic Hierarchy Process. Random indices RI from Saaty (1987), "The
analytic hierarchy process - what it is and how it is used", Math. Modelling 9(3-5), table 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

RANDOM_INDEX = (0.0, 0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49)
CONSISTENCY_LIMIT = 0.1


@dataclass(frozen=True)
class AhpResult:
    weights: np.ndarray
    lambda_max: float
    consistency_index: float
    consistency_ratio: float

    @property
    def consistent(self) -> bool:
        return self.consistency_ratio <= CONSISTENCY_LIMIT


def parse_judgement(cell: float | str) -> float:
    """A Saaty judgement written as a number or a fraction such as ``"1/3"`` (or ``"1 / 3"``)."""
    return float(Fraction(cell.replace(" ", ""))) if isinstance(cell, str) else float(cell)


def matrix_from_rows(rows: Sequence[Sequence[float | str]]) -> np.ndarray:
    return np.array([[parse_judgement(cell) for cell in row] for row in rows], dtype=float)


def reciprocal_errors(matrix: np.ndarray, tolerance: float = 0.01) -> list[tuple[int, int]]:
    """Index pairs (i, j), i < j, where a[i][j] * a[j][i] differs from 1 beyond tolerance."""
    product = matrix * matrix.T
    rows, cols = np.where(np.abs(product - 1.0) > tolerance)
    return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if i < j]


def ahp_weights(matrix: np.ndarray) -> AhpResult:
    """Principal right eigenvector of a positive reciprocal matrix, normalised to sum 1."""
    matrix = np.asarray(matrix, dtype=float)
    n = matrix.shape[0]
    if matrix.shape != (n, n) or n < 1:
        raise ValueError(f"pairwise matrix must be square, got shape {matrix.shape}")
    if np.any(matrix <= 0):
        raise ValueError("pairwise comparisons must be positive")
    eigenvalues, eigenvectors = np.linalg.eig(matrix)
    principal = int(np.argmax(eigenvalues.real))
    vector = np.abs(eigenvectors[:, principal].real)
    weights = vector / vector.sum()
    lambda_max = float(eigenvalues[principal].real)
    ci = (lambda_max - n) / (n - 1) if n > 2 else 0.0
    ri = RANDOM_INDEX[n] if n < len(RANDOM_INDEX) else RANDOM_INDEX[-1]
    cr = ci / ri if ri > 0 else 0.0
    return AhpResult(weights, lambda_max, ci, cr)
