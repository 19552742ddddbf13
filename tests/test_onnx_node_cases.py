"""ONNX's own operator test cases: every case ONNX Runtime runs compiles to bricks that compute
what the original computes on the case's data, or is refused for a reason the README lists
(section "What compiles", between the `node-case-refusals` markers)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from node_cases import Outcome, all_cases, check_case, ort_outputs

README = Path(__file__).resolve().parents[1] / "README.md"
MAX_REFUSALS = 30
CASES = all_cases()


def listed_refusals() -> dict[str, str]:
    """`- test_name: reason` lines between the README's node-case-refusals markers."""
    text = README.read_text(encoding="utf-8")
    section = text.split("<!-- node-case-refusals:start -->")[1].split("<!-- node-case-refusals:end -->")[0]
    return dict(re.findall(r"^- `(test_\w+)`: (.+)$", section, flags=re.MULTILINE))


REFUSED = listed_refusals()


def test_the_readme_lists_at_most_30_refusals_of_known_cases():
    assert 0 < len(REFUSED) <= MAX_REFUSALS
    assert set(REFUSED) <= {c.name for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node_case_compiles_to_bricks_that_compute_the_original(case):
    expected = ort_outputs(case)
    if expected is None:
        pytest.skip("ONNX Runtime does not run this case")
    outcome: Outcome = check_case(case, expected)
    if case.name in REFUSED:
        assert outcome.status == "refused", outcome
        assert REFUSED[case.name] in outcome.detail, outcome
    else:
        # "folded": ONNX Runtime computes every output when the session starts (Shape of a
        # static input, Constant); there is no brick to run, as there is no kernel to time.
        assert outcome.status in ("equal", "folded"), outcome
