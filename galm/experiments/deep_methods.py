"""The deep multi-task baselines of a grid: ``fmt`` and ``amt`` cells (section 4.2.3).

Both train on images of the scenario's (target) domain, with the layer shapes of the spec's
``hand_designed`` head, galm's retraining budget (``config.retrain``: train+val, the same epochs,
optimiser and masked loss) and its scoring (ROC AUC on the test split, unlearnable attributes left
out of mAUC). Neither scores architectures on validation data, so both count 0 evaluations.

* ``fmt``: the widening (:func:`galm.baselines.deep.fmt.design_tree`, its rounds logged as phase
  ``fmt_widen``) designs the tree, recorded in ``fmt_tree.json``; the tree is then trained.
* ``amt``: attribute groups from label correlation on the training splits (``amt_groups.json``),
  then MCNN-AUX is trained.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from galm.baselines.deep.amt import AuxiliaryMultiTaskNetwork, correlation_groups, label_correlation
from galm.baselines.deep.fmt import FmtSettings, design_tree, final_network
from galm.config import GalmConfig
from galm.data.info import unlearnable_attributes
from galm.data.sources import config_domain
from galm.experiments.spec import Cell
from galm.runs.atomic import write_json
from galm.runs.directory import RunDirectory
from galm.runs.metrics import MetricsLogger
from galm.space import Architecture
from galm.training.fixed import train_and_record
from galm.training.train import split_indices


class CellContext(Protocol):
    """What these runners use of :class:`galm.experiments.methods.CellContext` (which registers
    them, so this module cannot import it)."""

    cell: Cell
    device: torch.device

    def config(self, domain: str | None = None) -> GalmConfig: ...

    def run_directory(self, config: GalmConfig, path: Path | None = None) -> RunDirectory: ...


def run_fmt(ctx: CellContext, settings: FmtSettings | None = None) -> dict[str, Any]:
    """Widen a thin network into a tree by task affinity, then train the tree."""
    settings = settings or FmtSettings()
    config = ctx.config()
    domain = config_domain(config)
    head = ctx.cell.options["architecture"]
    arch = Architecture.parse(head)
    run = ctx.run_directory(config)
    excluded = unlearnable_attributes(domain, config.search.min_positives)
    with MetricsLogger(run) as log:
        design = design_tree(domain, config.space, arch, config.retrain, config.seed, ctx.device, settings,
                             config.execution, on_round=lambda step, record: log.log(step, "fmt_widen", record),
                             excluded=excluded)
    write_json(run.fmt_tree_path, {"architecture": head, "settings": asdict(settings),
                                   **design.to_json(domain.attribute_names)})
    net = final_network(design, config.space, arch, config.seed, settings)
    report = train_and_record(run, domain, net, config.retrain, config.seed, ctx.device,
                              extra_results={"n_branches": design.tree.n_branches()}, execution=config.execution,
                              excluded=excluded)
    return {**report.to_json(), "domain": domain.name, "evaluations": 0, "architecture": head,
            "n_branches": design.tree.n_branches()}


def run_amt(ctx: CellContext, n_groups: int | None = None) -> dict[str, Any]:
    """Group the attributes by label correlation on the training splits, then train MCNN-AUX."""
    config = ctx.config()
    domain = config_domain(config)
    head = ctx.cell.options["architecture"]
    arch = Architecture.parse(head)
    run = ctx.run_directory(config)
    labels = np.asarray(domain.labels[split_indices(domain, config.retrain.splits)], dtype=np.float64)
    groups = correlation_groups(labels, n_groups)
    names = domain.attribute_names
    correlation = label_correlation(labels)
    write_json(run.amt_groups_path, {
        "architecture": head, "source": "label_correlation", "splits": list(config.retrain.splits),
        "groups": [[names[a] for a in group] for group in groups],
        "abs_label_correlation": {names[i]: {names[j]: float(correlation[i, j]) for j in range(len(names))}
                                  for i in range(len(names))},
    })
    torch.manual_seed(config.seed)
    net = AuxiliaryMultiTaskNetwork(groups, domain.n_attributes, config.space, arch)
    report = train_and_record(run, domain, net, config.retrain, config.seed, ctx.device,
                              extra_results={"n_groups": len(groups)}, execution=config.execution,
                              excluded=unlearnable_attributes(domain, config.search.min_positives))
    return {**report.to_json(), "domain": domain.name, "evaluations": 0, "architecture": head,
            "n_groups": len(groups)}
