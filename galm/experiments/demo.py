"""`galm demo`: a GALM search on the built-in data with a small budget, against a random control."""

from __future__ import annotations

import torch

from galm.config.schema import GalmConfig
from galm.config.typed import to_mapping
from galm.data.sources import config_domain
from galm.runs.architectures import architectures_record, resolve_architectures
from galm.runs.atomic import atomic_write_bytes, write_json
from galm.runs.directory import RunDirectory
from galm.search.derive import DerivedHead
from galm.search.jobs import retrain_run, search_run
from galm.space import SearchSpace, choice_frequencies
from galm.training.evaluate import AucReport
from galm.training.fixed import train_and_evaluate


def run_demo(run: RunDirectory, config: GalmConfig, device: torch.device) -> str:
    """Search, derive, retrain and evaluate, then retrain random heads with the same budget; a summary."""
    domain = config_domain(config)
    heads = search_run(run, config, domain, device)
    searched = retrain_run(run, domain, device)
    space = SearchSpace(config.space)
    control_run = RunDirectory.create(run.control_dir, to_mapping(config))
    archs = resolve_architectures("random", domain.attribute_names, space, config.seed + 1)
    write_json(control_run.architectures_path, architectures_record(archs))
    retrain = config.retrain
    control = train_and_evaluate(
        control_run, domain, archs, config.space, retrain, config.seed, device, execution=config.execution
    )
    text = demo_summary(heads, searched, control, space)
    atomic_write_bytes(run.summary_path, text.encode("utf-8"))
    return text


def demo_summary(heads: list[DerivedHead], searched: AucReport, control: AucReport, space: SearchSpace) -> str:
    """Markdown: per-attribute AUC of the searched and the random network, mAUC, frequent choices."""
    lines = [
        f"## GALM demo: test-class AUC ({searched.split} split, unseen classes)",
        "",
        "| attribute | searched head | searched AUC | random AUC |",
        "|---|---|---:|---:|",
    ]
    for head in heads:
        a = _auc_text(searched.per_attribute_auc.get(head.attribute))
        b = _auc_text(control.per_attribute_auc.get(head.attribute))
        lines.append(f"| {head.attribute} | `{head.architecture.short()}` | {a} | {b} |")
    lines += [
        f"| **mAUC** | | **{searched.mauc:.4f}** | **{control.mauc:.4f}** |",
        "",
        f"Searched network mAUC {searched.mauc:.4f} vs random-architecture control {control.mauc:.4f} "
        f"({'at or above' if searched.mauc >= control.mauc else 'below'} the control).",
        "",
        "Most frequent choices of the derived heads:",
        "",
    ]
    for decision, freqs in choice_frequencies([h.architecture for h in heads], space).items():
        choice, share = max(freqs.items(), key=lambda item: item[1])
        lines.append(f"- {decision}: {choice} ({share:.0%})")
    return "\n".join(lines) + "\n"


def _auc_text(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"
