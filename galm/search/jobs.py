"""The search jobs of a run directory: search, transfer, derive and retrain, as the CLI and the
experiment grid call them. Each takes the domain its command opened once."""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import torch

from galm.config.schema import GalmConfig
from galm.data.domain import AttributeDomain
from galm.data.info import unlearnable_attributes
from galm.nn.network import FixedNetwork
from galm.runs.architectures import read_architectures
from galm.runs.atomic import read_json, write_json
from galm.runs.directory import RunDirectory
from galm.runs.metrics import MetricsLogger, rewrite_metrics
from galm.search.derive import DerivedHead, arm_record, derive
from galm.search.phases import run_search
from galm.search.quality import search_quality
from galm.search.state import SearchState
from galm.search.transfer import (
    NearestSource,
    build_transfer,
    read_transfer_record,
    start_transfer,
)
from galm.training.evaluate import AucReport
from galm.training.fixed import train_and_evaluate

SEARCH_PHASES = ("shared", "controller")


def build_search(config: GalmConfig, domain: AttributeDomain, device: torch.device) -> SearchState:
    """A new search over `domain` with the run's settings."""
    return SearchState(
        domain, config.space, config.search, config.controller, config.seed, device, execution=config.execution
    )


def source_domains(source: RunDirectory) -> list[str]:
    """The domain of every attribute of a finished search, from its ``arm.json``."""
    arm = read_json(source.arm_path)
    names = arm["attribute_names"]
    return list(arm.get("domain_of_attribute") or [arm.get("domain", "source")] * len(names))


def write_derived(
    run: RunDirectory, heads: list[DerivedHead], search: SearchState, sources: Sequence[str] = ()
) -> None:
    """`architectures.json` (name -> architecture, probability, validation reward), `arm.json`
    (ARM representations, cosine similarities, the domain of every attribute) and
    `search_trace.json` (reward and search seconds per update). `sources`: the source
    attributes' domains of a transfer."""
    own = search.domain.metadata.get("domain_of_attribute", {})
    domains = [*sources, *[own.get(name, search.domain.name) for name in search.domain.attribute_names]]
    default = search.space.default()
    skipped = {name: {"architecture": default.to_json(), "short": default.short(), "skipped": reason}
               for name, reason in search.skipped.items()}
    write_json(run.architectures_path, {**{head.attribute: head.to_json() for head in heads}, **skipped})
    write_json(run.arm_path, arm_record(search, domains))
    write_json(run.trace_path, search.trace_record())
    write_json(run.search_quality_path, search_quality(search, heads))


def continue_search(
    run: RunDirectory, search: SearchState, resume: bool, on_step: Callable[[str, int], None] | None = None,
    sources: Sequence[str] = (),
) -> list[DerivedHead]:
    """Resume from the run's checkpoint if asked, run the remaining episodes, derive, record."""
    checkpoint = run.search_checkpoint_path
    main = search.parallel.is_main  # under torchrun every rank searches, rank 0 alone writes
    if resume and checkpoint.is_file():
        search.load_checkpoint(checkpoint)
        done = search.episode
        # What an interrupted episode logged after the last checkpoint is redone, so drop it.
        if main:
            rewrite_metrics(run.metrics_path, lambda r: r.get("phase") not in SEARCH_PHASES or r["step"] <= done)
    elif resume and main:
        rewrite_metrics(run.metrics_path, lambda r: r.get("phase") not in SEARCH_PHASES)
    with MetricsLogger(run) if main else contextlib.nullcontext() as logger:
        run_search(search, logger, checkpoint if main else None, on_step)
    heads = []
    if main:
        heads = derive(search, train=run.config().train)
        write_derived(run, heads, search, sources)
    search.parallel.barrier()  # the other ranks may read architectures.json next (--retrain)
    return heads


def search_run(
    run: RunDirectory,
    config: GalmConfig,
    domain: AttributeDomain,
    device: torch.device,
    resume: bool = False,
    on_step: Callable[[str, int], None] | None = None,
) -> list[DerivedHead]:
    """Algorithm 1 into `run` (continuing from its checkpoint when resuming), then derive."""
    return continue_search(run, build_search(config, domain, device), resume, on_step)


def transfer_run(
    run: RunDirectory,
    source: RunDirectory,
    config: GalmConfig,
    domain: AttributeDomain,
    device: torch.device,
    resume: bool = False,
    on_step: Callable[[str, int], None] | None = None,
    source_domain: AttributeDomain | None = None,
) -> tuple[list[DerivedHead], list[NearestSource]]:
    """Search the target domain's attributes starting from a finished search (section 3.5.2).

    ``source_domain`` (the source search's data) is needed by ``transfer.init=probe`` only; it is
    opened from the source's configuration when not given.
    """
    from galm.data.sources import config_domain

    source_config = source.config()
    search = build_transfer(source, source_config, config, domain, device)
    sources = source_domains(source)
    if resume and run.search_checkpoint_path.is_file():
        record = read_transfer_record(run)
        nearest = [NearestSource(name, **{"source": v["nearest_source"], "similarity": v["similarity"]})
                   for name, v in record["nearest"].items()]
    else:
        if config.transfer.init == "probe" and source_domain is None:
            source_domain = config_domain(source_config)
        nearest = start_transfer(search, config.transfer, source_domain)
        source_names = search.attribute_names[: len(search.frozen)]
        if search.parallel.is_main:
            write_json(run.transfer_path, {
                "source_run": str(source.path.resolve()),
                "source_domain": "+".join(dict.fromkeys(sources)),
                "source_attributes": source_names,
                "source_domain_of_attribute": sources,
                "target_domain": search.domain.name,
                "init": config.transfer.init,
                "nearest": {n.attribute: n.to_json() for n in nearest},
            })
            search.save_checkpoint(run.search_checkpoint_path)  # a resume continues after the initialisation
        search.parallel.barrier()  # every rank then continues from that checkpoint
    return continue_search(run, search, resume=True, on_step=on_step, sources=sources), nearest


def open_search(run: RunDirectory, config: GalmConfig, domain: AttributeDomain, device: torch.device) -> SearchState:
    """The search state of a search or transfer run, from its last checkpoint."""
    if run.is_transfer():
        source = RunDirectory.open(read_transfer_record(run)["source_run"])
        search = build_transfer(source, source.config(), config, domain, device)
    else:
        search = build_search(config, domain, device)
    search.load_checkpoint(run.search_checkpoint_path)
    return search


def derive_run(
    run: RunDirectory, domain: AttributeDomain, device: torch.device, method: str | None, samples: int | None
) -> list[DerivedHead]:
    """Derive the final architectures again from a run's search checkpoint."""
    config = run.config()
    search = open_search(run, config, domain, device)
    heads = derive(search, method, samples, train=config.train)
    sources = source_domains(RunDirectory.open(read_transfer_record(run)["source_run"])) if run.is_transfer() else ()
    write_derived(run, heads, search, sources)
    return heads


def retrain_run(run: RunDirectory, domain: AttributeDomain, device: torch.device) -> AucReport:
    """Retrain the derived network on train+val (section 4.1) and score it on the test classes."""
    config = run.config()
    if not run.architectures_path.is_file():
        raise FileNotFoundError(f"{run.architectures_path} is missing: run `galm search` (or `galm derive`) first")
    archs = read_architectures(run.architectures_path, domain.attribute_names)
    net = None
    if config.search.retrain_init == "supernet":
        search = open_search(run, config, domain, device)
        net = FixedNetwork([archs[name] for name in domain.attribute_names], config.space)
        net.load_from_supernet(search.supernet, search.active.tolist())
    return train_and_evaluate(
        run, domain, archs, config.space, config.retrain, config.seed, device, net=net,
        extra_results={"retrain_init": config.search.retrain_init}, execution=config.execution,
        excluded=unlearnable_attributes(domain, config.search.min_positives),
    )
