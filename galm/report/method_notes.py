"""Footnotes of the comparison tables: where a baseline departs from its paper's input or setting
because galm cannot have it here (no pretrained weights or downloadable features), one per method."""

from __future__ import annotations

from typing import Sequence

METHOD_NOTES: dict[str, str] = {
    "fmt": ("fmt (Lu et al. 2017): the thin network is galm's Table-1 stack trained from random weights "
            "at galm's resolution, not a thin VGG-16 initialised from ImageNet weights (nothing pretrained "
            "is downloadable here); each cell's tree is in its fmt_tree.json."),
    "amt": ("amt (Hand and Chellappa 2017, MCNN-AUX): attribute groups from label correlation on the "
            "training images (no semantic grouping exists for these domains), Table-1 layers from random "
            "weights, the auxiliary layer trained jointly within the retraining budget; groups in each "
            "cell's amt_groups.json."),
}


def method_notes(methods: Sequence[str]) -> str:
    """The footnotes of the listed methods that have one, in their order."""
    return " ".join(METHOD_NOTES[m] for m in methods if m in METHOD_NOTES)
