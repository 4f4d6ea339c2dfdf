"""`galm demo`: a GALM search on the built-in data with a small budget, against a random control."""

from __future__ import annotations

import csv
import io

import numpy as np
import torch
from PIL import Image

from galm.config.schema import GalmConfig
from galm.config.typed import to_mapping
from galm.data.domain import AttributeDomain
from galm.data.sources import config_domain
from galm.runs.architectures import architectures_record, resolve_architectures
from galm.runs.atomic import atomic_write_bytes, read_json, write_json
from galm.runs.directory import RunDirectory
from galm.search.derive import DerivedHead, is_anchor
from galm.search.jobs import retrain_run, search_run
from galm.space import SearchSpace, choice_frequencies
from galm.training.evaluate import AucReport
from galm.training.fixed import train_and_evaluate


def run_demo(run: RunDirectory, config: GalmConfig, device: torch.device) -> str:
    """Search, derive, retrain and evaluate, then retrain random heads with the same budget; a summary."""
    domain = config_domain(config)
    heads = search_run(run, config, domain, device)
    searched = retrain_run(run, domain, device)
    write_samples(run, domain)
    space = SearchSpace(config.space)
    control_run = RunDirectory.create(run.control_dir, to_mapping(config))
    archs = resolve_architectures("random", domain.attribute_names, space, config.seed + 1)
    write_json(control_run.architectures_path, architectures_record(archs))
    retrain = config.retrain
    control = train_and_evaluate(
        control_run, domain, archs, config.space, retrain, config.seed, device, execution=config.execution
    )
    choice = read_json(run.search_quality_path).get("derived_network") if run.search_quality_path.is_file() else None
    text = demo_summary(heads, searched, control, space, choice)
    atomic_write_bytes(run.summary_path, text.encode("utf-8"))
    return text


SAMPLE_IMAGES = 8
SAMPLES_TABLE = "samples.csv"


def write_samples(run: RunDirectory, domain: AttributeDomain, n: int = SAMPLE_IMAGES) -> None:
    """A few test-split images (spread over its classes) as PNG files and ``samples.csv`` (image path
    and true labels), so that ``galm predict`` has something to be tried on right after the demo."""
    test = domain.split("test")
    indices = np.unique(test[np.linspace(0, len(test) - 1, min(n, len(test))).astype(int)]) if len(test) else test
    table = io.StringIO(newline="")
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["image", *domain.attribute_names])
    for index in indices:
        name = f"test-{int(index):05d}.png"
        png = io.BytesIO()
        Image.fromarray(np.asarray(domain.images[index])).save(png, format="PNG")
        atomic_write_bytes(run.samples_dir / name, png.getvalue())
        labels = domain.labels[index]
        writer.writerow([name, *("" if np.isnan(v) else int(v) for v in labels)])
    atomic_write_bytes(run.samples_dir / SAMPLES_TABLE, table.getvalue().encode("utf-8"))


def demo_summary(heads: list[DerivedHead], searched: AucReport, control: AucReport, space: SearchSpace,
                 choice: dict | None = None) -> str:
    """Markdown: per-attribute AUC of the searched and the random network, mAUC, which whole network a
    ``search.derive=networks`` kept (`choice`, from ``search_quality.json``), frequent choices."""
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
        *_network_choice_lines(choice),
        "Most frequent choices of the derived heads:",
        "",
    ]
    for decision, freqs in choice_frequencies([h.architecture for h in heads], space).items():
        choice, share = max(freqs.items(), key=lambda item: item[1])
        lines.append(f"- {decision}: {choice} ({share:.0%})")
    return "\n".join(lines) + "\n"


def _network_choice_lines(choice: dict | None) -> list[str]:
    """What ``search.derive=networks`` kept and why, in a sentence (nothing for other derivations)."""
    if not choice:
        return []
    scores = ", ".join(f"{n['candidate']} {n['mauc']:.4f}" for n in choice["networks"])
    text = f"The derivation scored whole networks ({choice['metric']}: {scores}) and kept {choice['chosen']}"
    if "gain_over_anchor" in choice:
        cleared = not is_anchor(str(choice["chosen"]))
        text += (f"; the best searched network was {100 * choice['gain_over_anchor']:+.2f} ± "
                 f"{100 * choice['gain_standard_error']:.2f} points from the best anchor, "
                 f"{'more' if cleared else 'not more'} than the {choice['margin_se']:g} × standard error a searched "
                 f"network must beat it by, so {'it replaced the anchor' if cleared else 'the anchor stayed'}")
    return [text + ".", ""]


def _auc_text(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"
