"""AHP weights: Saaty's published example, exact consistent matrices, and located input errors."""

from __future__ import annotations

import numpy as np
import pytest

import stackdecide
from stackdecide.errors import DecisionFileError
from stackdecide.mcda.ahp import ahp_weights, matrix_from_rows, reciprocal_errors

# Saaty, T. L. (1990). How to make a decision: The analytic hierarchy process. European Journal of
# Operational Research 48(1), 9-26: the house-buying example, eight criteria (size of house,
# transportation, neighbourhood, age, yard space, modern facilities, general condition, financing).
# Published: priorities .173 .054 .188 .018 .031 .036 .167 .333, lambda_max 9.669, C.I. 0.238,
# C.R. 0.169 (an example of judgements Saaty calls too inconsistent: C.R. above 0.1).
SAATY_HOUSE = [
    [1, 5, 3, 7, 6, 6, "1/3", "1/4"],
    ["1/5", 1, "1/3", 5, 3, 3, "1/5", "1/7"],
    ["1/3", 3, 1, 6, 3, 4, 6, "1/5"],
    ["1/7", "1/5", "1/6", 1, "1/3", "1/4", "1/7", "1/8"],
    ["1/6", "1/3", "1/3", 3, 1, "1/2", "1/5", "1/6"],
    ["1/6", "1/3", "1/4", 4, 2, 1, "1/5", "1/6"],
    [3, 5, "1/6", 7, 5, 5, 1, "1/2"],
    [4, 7, 5, 8, 6, 6, 2, 1],
]
SAATY_WEIGHTS = [0.173, 0.054, 0.188, 0.018, 0.031, 0.036, 0.167, 0.333]
HOUSE_CRITERIA = ["size", "transport", "neighbourhood", "age", "yard", "facilities", "condition",
                  "financing"]


def test_saaty_house_example_reproduces_the_published_numbers() -> None:
    result = ahp_weights(matrix_from_rows(SAATY_HOUSE))
    np.testing.assert_allclose(result.weights, SAATY_WEIGHTS, atol=5e-4)  # published to 3 places
    assert result.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert result.lambda_max == pytest.approx(9.669, abs=5e-4)
    assert result.consistency_index == pytest.approx(0.238, abs=5e-4)
    assert result.consistency_ratio == pytest.approx(0.169, abs=5e-4)  # RI(8) = 1.41
    assert not result.consistent


@pytest.mark.parametrize("n", [2, 3, 5, 9])
def test_consistent_matrix_gives_its_ratios_back_exactly(n: int) -> None:
    w = np.random.default_rng(n).dirichlet(np.ones(n))
    result = ahp_weights(w[:, None] / w[None, :])
    np.testing.assert_allclose(result.weights, w, rtol=1e-10)
    assert result.lambda_max == pytest.approx(n, abs=1e-9)
    assert abs(result.consistency_ratio) < 1e-9 and result.consistent


def test_reciprocal_errors_name_the_pair() -> None:
    matrix = matrix_from_rows([[1, 3, 5], ["1/3", 1, 2], ["1/5", 2, 1]])
    assert reciprocal_errors(matrix) == [(1, 2)]


def ahp_text(order: list[str], rows: list[list[object]], criteria: list[str] | None = None,
             weight_line: str = "") -> str:
    criteria = criteria or order
    lines = ["schema: stackdecide/v1", "decision: {title: house}", "criteria:"]
    lines += [f"  - {{id: {cid}{weight_line if k == 0 else ''}}}" for k, cid in enumerate(criteria)]
    lines += ["candidates:",
              "  - id: a",
              "    scores: {" + ", ".join(f"{c}: {k % 10}" for k, c in enumerate(criteria)) + "}",
              "  - id: b",
              "    scores: {" + ", ".join(f"{c}: {9 - k % 10}" for k, c in enumerate(criteria))
              + "}",
              "weighting:", "  method: ahp", "  ahp:", f"    order: [{', '.join(order)}]",
              "    matrix:"]
    lines += ["      - [" + ", ".join(f'"{c}"' if isinstance(c, str) else str(c) for c in row)
              + "]" for row in rows]
    return "\n".join(lines) + "\n"


def test_ahp_weights_reach_the_decision_by_id_and_the_audit_flags_the_ratio() -> None:
    # criteria listed in reverse of the AHP order: weights must follow ids, not positions
    text = ahp_text(HOUSE_CRITERIA, SAATY_HOUSE, criteria=HOUSE_CRITERIA[::-1])
    decision = stackdecide.parse(text, "house.yaml")
    np.testing.assert_allclose(decision.weights, SAATY_WEIGHTS[::-1], atol=5e-4)
    assert any("consistency ratio 0.169" in note for note in decision.notes)
    findings = decision.score().findings
    inconsistent = [f for f in findings if f.code == "ahp-inconsistent"]
    assert len(inconsistent) == 1 and "0.169" in inconsistent[0].message
    first_row = next(i for i, row in enumerate(text.splitlines(), 1) if row.strip() == "matrix:") + 1
    assert str(inconsistent[0].where).startswith(f"house.yaml:{first_row}:")


def test_consistent_ahp_has_no_finding() -> None:
    text = ahp_text(["x", "y", "z"], [[1, 2, 4], ["1/2", 1, 2], ["1 / 4", "1/2", 1]])
    decision = stackdecide.parse(text, "ok.yaml")
    np.testing.assert_allclose(decision.weights, [4 / 7, 2 / 7, 1 / 7], rtol=1e-10)
    assert not [f for f in decision.score().findings if f.code == "ahp-inconsistent"]


def _error(text: str) -> str:
    with pytest.raises(DecisionFileError) as error:
        stackdecide.parse(text, "x.yaml")
    return str(error.value)


def _line(text: str, needle: str, occurrence: int = 1) -> int:
    hits = [i for i, row in enumerate(text.splitlines(), 1) if needle in row]
    return hits[occurrence - 1]


def test_non_reciprocal_matrix_is_located_at_the_wrong_cell() -> None:
    text = ahp_text(["x", "y", "z"], [[1, 3, 5], ["1/3", 1, 2], ["1/5", 3, 1]])
    message = _error(text)
    # [1][2] = 2 needs [2][1] = 1/2; the error points at row 2 of the matrix (third row)
    row = _line(text, '- ["1/5", 3, 1]')
    assert message.startswith(f"x.yaml:{row}:")
    assert "weighting.ahp.matrix[2][1]" in message and "not reciprocal" in message


@pytest.mark.parametrize(("rows", "expected"), [
    ([[1, 3], ["1/3", 1], [1, 1]], "matrix must be 2 x 2"),
    ([[1, 12], ["1/12", 1]], "outside Saaty's scale 1/9..9"),
    ([[2, 3], ["1/3", 1]], "the diagonal must be 1"),
    ([[1, "three"], ["1/3", 1]], "'three' is not a number or fraction"),
    ([[1, "1/0"], [0, 1]], "'1/0' is not a number or fraction"),
])
def test_malformed_matrices_are_refused(rows: list[list[object]], expected: str) -> None:
    message = _error(ahp_text(["x", "y"], rows))
    assert message.startswith("x.yaml:") and expected in message


def test_order_must_name_each_criterion_once() -> None:
    text = ahp_text(["x", "x"], [[1, 3], ["1/3", 1]], criteria=["x", "y"])
    assert "order must list each criterion once" in _error(text)


def test_direct_weights_and_ahp_together_are_refused() -> None:
    text = ahp_text(["x", "y"], [[1, 3], ["1/3", 1]], weight_line=", weight: 0.5")
    message = _error(text)
    assert message.startswith(f"x.yaml:{_line(text, 'weight: 0.5')}:")
    assert "not both" in message
