"""How often each design choice was taken over a set of heads (the paper's Table 4)."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from galm.space.search_space import Architecture, SearchSpace


def choice_frequencies(archs: Sequence[Architecture], space: SearchSpace) -> dict[str, dict[str, float]]:
    """Share of heads taking each choice of each decision."""
    counts = [Counter() for _ in space.decisions]
    for arch in archs:
        for counter, action in zip(counts, space.encode(arch)):
            counter[action] += 1
    return {
        decision.name: {str(choice): counter[i] / max(len(archs), 1) for i, choice in enumerate(decision.choices)}
        for decision, counter in zip(space.decisions, counts)
    }
