"""Decision files: valid ones load as written, malformed ones fail with file:line:col and field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stackdecide
from stackdecide import DecisionFileError

MALFORMED = Path(__file__).parents[1] / "data" / "malformed"


def _expectation(path: Path) -> str:
    sidecar = path.with_suffix(".expect")
    if sidecar.exists():
        return sidecar.read_text().rstrip("\n")
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace")
    assert first.startswith("# expect: "), f"{path.name} needs an '# expect:' first line"
    return first[len("# expect: "):]


CORPUS = sorted(p for p in MALFORMED.iterdir() if p.suffix == ".yaml")


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_malformed_file_names_file_line_and_field(path: Path) -> None:
    with pytest.raises(DecisionFileError) as info:
        stackdecide.load(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert message[len(str(path)):] == _expectation(path)


def test_missing_file() -> None:
    with pytest.raises(DecisionFileError, match="no such file"):
        stackdecide.load("does/not/exist.yaml")


def test_directory_is_not_a_decision(tmp_path: Path) -> None:
    with pytest.raises(DecisionFileError, match="is a directory"):
        stackdecide.load(tmp_path)


def test_rtx4090_loads_as_the_report_wrote_it(rtx4090_path: Path) -> None:
    decision = stackdecide.load(rtx4090_path)
    assert decision.criterion_ids == ("fp8_performance", "rtx4090_optimization",
                                      "installation_stability", "performance_targets")
    np.testing.assert_allclose(decision.weights, [0.35, 0.25, 0.20, 0.20])
    np.testing.assert_allclose(decision.matrix, [[7.0, 6.0, 9.5, 7.0],
                                                 [9.5, 9.0, 8.0, 9.0],
                                                 [8.5, 8.5, 9.0, 8.0]])
    assert [c.reported_total for c in decision.candidates] == [72.5, 89.25, 83.5]
    recommended = decision.candidate("vllm-flashinfer-torch271").engine
    assert recommended["use_v2_block_manager"] is True  # kept as written; launch refuses it
    assert recommended["kv_cache_dtype"] == "fp8_e5m2"
    # The merge key gives the fallback candidate the report's config with its own backend.
    assert decision.candidate("vllm-cuda-torch271").engine["attention_backend"] == "FLASH_ATTN"
    assert decision.model.decision.date == "2025-08-20"


@pytest.mark.parametrize("weights", [("0.6", "0.4"), ("60", "40"), ("'60%'", "'40%'")])
def test_weights_as_fractions_or_percentages(small_text: str, weights: tuple[str, str]) -> None:
    text = small_text.replace("weight: 0.6", f"weight: {weights[0]}").replace(
        "weight: 0.4", f"weight: {weights[1]}")
    decision = stackdecide.parse(text, "w.yaml")
    np.testing.assert_allclose(decision.weights, [0.6, 0.4])
    assert decision.notes == ()


def test_normalising_weights_is_opt_in_and_said(small_text: str) -> None:
    text = small_text.replace("weight: 0.4", "weight: 0.6")
    with pytest.raises(DecisionFileError, match=r"add up to 1\.2"):
        stackdecide.parse(text, "w.yaml")
    decision = stackdecide.parse(
        text.replace("  title: Small decision\n",
                     "  title: Small decision\n  normalize_weights: true\n"), "w.yaml")
    np.testing.assert_allclose(decision.weights, [0.5, 0.5])
    assert "normalised" in decision.notes[0]


def test_ahp_weights_replace_direct_weights(small_text: str) -> None:
    text = (small_text.replace("{id: speed, weight: 0.6}", "{id: speed}")
            .replace("{id: stability, weight: 0.4}", "{id: stability}")
            + "weighting:\n  method: ahp\n  ahp:\n    order: [stability, speed]\n"
              "    matrix: [[1, 1/3], [3, 1]]\n")
    decision = stackdecide.parse(text, "ahp.yaml")
    np.testing.assert_allclose(decision.weights_by_id["speed"], 0.75)
    np.testing.assert_allclose(decision.weights_by_id["stability"], 0.25)
    assert "AHP" in decision.notes[0]


def test_cost_criterion_and_custom_scale(small_text: str) -> None:
    text = small_text.replace("{id: stability, weight: 0.4}",
                              "{id: stability, weight: 0.4, direction: cost, scale: [0, 20]}")
    decision = stackdecide.parse(text, "cost.yaml")
    np.testing.assert_allclose(decision.normalize(), [[0.7, 1 - 9 / 20], [0.9, 1 - 5 / 20]])


HOSTILE_TEXT = """\
schema: stackdecide/v1
decision:
  title: "T\\e[31m\\nwinner: b"
  source: |
    a report
criteria:
  - {id: speed, name: "Sp\\u202eeed", weight: 1, description: "zero\\u200bwidth"}
candidates:
  - {id: a, name: "Qwen3 — ü 漢", notes: "two\\nlines", scores: {speed: 7}}
  - {id: b, name: "B\\x9b2J", scores: {speed: 9}}
"""


def test_free_text_keeps_its_hidden_characters_escaped() -> None:
    decision = stackdecide.parse(HOSTILE_TEXT)
    assert decision.title == "T\\x1b[31m\\nwinner: b"
    assert decision.model.decision.source == "a report"  # a block's last newline is stripped
    criterion = decision.criteria[0]
    assert criterion.label == "Sp\\u202eeed" and criterion.description == "zero\\u200bwidth"
    first, second = decision.candidates
    assert first.label == "Qwen3 — ü 漢" and first.notes == "two\\nlines"
    assert second.label == "B\\x9b2J"


@pytest.mark.parametrize(("field", "written", "shown"), [
    ("candidates[0].id", "a\\u200b", "\\u200b"),
    ("candidates[0].id", "a\\e[31m", "\\x1b"),
    ("candidates[0].id", "a\\u2066", "\\u2066"),
])
def test_an_id_with_hidden_characters_is_refused_where_it_is_written(
        field: str, written: str, shown: str) -> None:
    text = HOSTILE_TEXT.replace("{id: a,", f'{{id: "{written}",')
    with pytest.raises(DecisionFileError) as caught:
        stackdecide.parse(text, "d.yaml")
    message = str(caught.value)
    assert message.startswith(f"d.yaml:9:10 {field}: ") and "an id cannot hold" in message
    assert shown in message and "\x1b" not in message


def test_merge_keys_merge_as_before_within_their_bound() -> None:
    text = HOSTILE_TEXT.replace("criteria:", "x-base: &base {speed: 3}\ncriteria:")
    decision = stackdecide.parse(text.replace("scores: {speed: 9}", "scores: {<<: *base}"))
    assert decision.candidates[1].scores == {"speed": 3.0}
    decision = stackdecide.parse(text.replace("scores: {speed: 9}", "scores: {<<: *base, speed: 9}"))
    assert decision.candidates[1].scores == {"speed": 9.0}  # the mapping's own key wins
