"""Tables the commands print: per-attribute AUC, derived heads, nearest sources of a transfer."""

from __future__ import annotations

from galm.search.derive import DerivedHead
from galm.search.transfer import NearestSource
from galm.training.evaluate import AucReport


def print_report(report: AucReport, title: str) -> None:
    print(f"\n{title}")
    width = max((len(name) for name in report.per_attribute_auc), default=10)
    for name, auc in report.per_attribute_auc.items():
        print(f"  {name:<{width}}  AUC {auc:.3f}")
    for name in report.undefined_attributes:
        print(f"  {name:<{width}}  undefined (constant on {report.split})")
    print(
        f"mAUC on {report.split}: {report.mauc:.4f} "
        f"({report.n_attributes_scored} attributes scored, {report.n_attributes_undefined} undefined)"
    )


def print_heads(heads: list[DerivedHead]) -> None:
    width = max(len(h.attribute) for h in heads)
    print(f"\n{'attribute':<{width}}  {'architecture':<30} {'p(policy)':>9} {'val reward':>10}")
    for h in heads:
        print(f"{h.attribute:<{width}}  {h.architecture.short():<30} {h.probability:>9.3f} {h.val_reward:>10.3f}")


def print_nearest(nearest: list[NearestSource]) -> None:
    if not nearest:
        return
    width = max(len(n.attribute) for n in nearest)
    print(f"\n{'attribute':<{width}}  nearest searched attribute (similarity)")
    for n in nearest:
        print(f"{n.attribute:<{width}}  {n.source} ({n.similarity:.3f})")
