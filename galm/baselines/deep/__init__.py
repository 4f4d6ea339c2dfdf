"""Deep multi-task baselines of the paper's section 4.2.3, trained on images with galm's budget.

* **FMT** (Lu et al., CVPR 2017): a thin shared network widened top-down into a tree by task
  affinity (:mod:`galm.baselines.deep.fmt`, its network :mod:`galm.baselines.deep.tree`).
* **AMT** (Hand and Chellappa, AAAI 2017, MCNN-AUX): attribute groups on a shared trunk plus an
  auxiliary layer over all groups' scores (:mod:`galm.baselines.deep.amt`).

Both are built from the Table-1 layers galm's own networks use (``galm.nn``) and return logits for
every attribute, so the training loop, masked loss and AUC evaluation of ``galm.training`` apply.
"""

from galm.baselines.deep.amt import AuxiliaryMultiTaskNetwork, correlation_groups
from galm.baselines.deep.fmt import FmtDesign, FmtSettings, design_tree, final_network
from galm.baselines.deep.tree import BranchingNetwork, BranchTree

__all__ = [
    "AuxiliaryMultiTaskNetwork", "BranchTree", "BranchingNetwork", "FmtDesign", "FmtSettings",
    "correlation_groups", "design_tree", "final_network",
]
