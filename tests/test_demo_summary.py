"""The `galm demo` summary: per-attribute table, verdict against the control, and what derive=networks kept."""

from galm.experiments.demo import demo_summary
from galm.search.derive import DerivedHead
from galm.space import SearchSpace
from galm.training.evaluate import AucReport


def _summary(choice):
    space = SearchSpace()
    heads = [DerivedHead("striped", space.largest(), 0.4, 0.71), DerivedHead("furry", space.largest(), 0.3, 0.66)]
    searched = AucReport({"striped": 0.81, "furry": 0.69}, split="test")
    control = AucReport({"striped": 0.74, "furry": 0.70}, split="test")
    return demo_summary(heads, searched, control, space, choice)


def _choice(chosen: str, gain: float, standard_error: float, scores: dict[str, float]) -> dict:
    """A ``derived_network`` record of search_quality.json with a margin of one standard error."""
    return {"metric": "cross_validated_mauc", "chosen": chosen, "gain_over_anchor": gain,
            "gain_standard_error": standard_error, "margin_se": 1.0,
            "networks": [{"candidate": name, "mauc": mauc} for name, mauc in scores.items()]}


def test_demo_summary_states_the_verdict_and_which_network_the_derivation_kept():
    text = _summary(_choice("anchor largest", 0.003, 0.0058, {"argmax": 0.7332, "anchor largest": 0.7491}))
    assert "| striped | `c4k5s12-c5k5s123-f256-f256-o2` | 0.810 | 0.740 |" in text
    assert "Searched network mAUC 0.7500 vs random-architecture control 0.7200 (at or above the control)" in text
    assert "argmax 0.7332, anchor largest 0.7491) and kept anchor largest" in text
    assert ("+0.30 ± 0.58 points from the best anchor, not more than the 1 × standard error a searched network "
            "must beat it by, so the anchor stayed.") in text


def test_demo_summary_says_when_a_searched_network_replaced_the_anchor():
    text = _summary(_choice("sample 1", 0.0226, 0.011, {"sample 1": 0.7469, "anchor largest": 0.7244}))
    assert "and kept sample 1; the best searched network was +2.26 ± 1.10 points from the best anchor" in text
    assert "more than the 1 × standard error a searched network must beat it by, so it replaced the anchor." in text


def test_demo_summary_of_a_per_attribute_derivation_has_no_network_line():
    assert "whole networks" not in _summary(None)
