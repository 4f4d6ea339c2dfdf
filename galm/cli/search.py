"""`galm search`, `galm transfer`, `galm derive`, `galm retrain`: the search jobs of a run directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from galm.cli.arguments import (
    add_config_arguments,
    job_device,
    load_config,
    new_run,
    non_negative_int,
    prepare_process,
    restarted_run,
    run_path,
    writing_run,
)
from galm.cli.printing import print_heads, print_nearest, print_report
from galm.config import GalmConfig, config_from_mapping
from galm.config.typed import ConfigError, changed_keys, to_mapping
from galm.data.domain import AttributeDomain
from galm.data.sources import config_domain, domain_overrides
from galm.engine import distributed
from galm.experiments.spec import read_scenarios
from galm.runs.directory import RunDirectory
from galm.search.derive import DERIVE_METHODS
from galm.search.jobs import derive_run, retrain_run, search_run, transfer_run
from galm.search.transfer import (
    CONTROLLER_SHAPE_KEYS,
    check_transfer_config,
    read_transfer_record,
)


def register(commands: Any) -> None:
    search = commands.add_parser(
        "search",
        help="run the GALM search (Algorithm 1) and derive one architecture per attribute",
        description="Alternate training of the shared weights and of the ARM + MNAS controller by "
        "REINFORCE, checkpointing after every episode; then derive the final architectures "
        "(architectures.json) and the ARM attribute similarities (arm.json).",
    )
    add_config_arguments(search)
    search.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue a stopped search from its last checkpoint (its config is reused)")
    search.add_argument("--retrain", action="store_true",
                        help="also retrain the derived network on train+val and score it on the test split")

    transfer = commands.add_parser(
        "transfer",
        help="search unseen attributes (another domain) starting from a finished search (section 3.5.2)",
        description="Append the target domain's attributes to a finished search, initialise each from its "
        "most similar searched attribute (the one whose trained head best ranks the new attribute's "
        "training labels; transfer.init=warmup|probe|random choose otherwise), and "
        "search only the new attributes. The target run starts from the source run's configuration; "
        "--config/--set change it (the space and the controller's sizes must stay the source's). "
        "--scenarios runs several transfers listed in a YAML file.",
    )
    transfer.add_argument("--source", type=Path, metavar="RUN_DIR", help="a finished `galm search` run")
    transfer.add_argument("--target", help="a synthetic domain name (syn1, syn2, ...) or a prepared domain directory")
    add_config_arguments(transfer)
    transfer.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a stopped transfer run")
    transfer.add_argument("--retrain", action="store_true", help="also retrain and score the target network")
    transfer.add_argument("--scenarios", type=Path, metavar="YAML",
                          help="a list of {name, source, target, set: [key=value, ...]}; runs go under --out")

    derive = commands.add_parser("derive", help="derive the final architectures again from a search checkpoint")
    derive.add_argument("run", type=Path, metavar="RUN_DIR")
    derive.add_argument("--method", choices=DERIVE_METHODS,
                        help="default: the run's search.derive")
    derive.add_argument("--samples", type=non_negative_int,
                        help="k for best_of_k, trained and networks (default: the run's search.derive_samples)")

    retrain = commands.add_parser(
        "retrain", help="train the derived network from scratch on train+val, then score it on the test split"
    )
    retrain.add_argument("run", type=Path, metavar="RUN_DIR")


def _retrain_and_print(run: RunDirectory, domain: AttributeDomain, device: torch.device, title: str) -> None:
    print_report(retrain_run(run, domain, device), title)


def _resume_recorder(run: RunDirectory, config: GalmConfig) -> Callable[[str, int], None]:
    """An on_step callback that appends the resume to run.json at the first step; call it once
    more after the job (a finished search takes no step). A resume that fails while loading its
    checkpoint therefore leaves run.json as it was."""
    recorded = not distributed.current().is_main  # under torchrun rank 0 alone writes run.json

    def record(phase: str = "", step: int = 0) -> None:
        nonlocal recorded
        if not recorded:
            recorded = True
            run.record_resume(to_mapping(config))

    return record


def _check_against_checkpoint(run: RunDirectory, command: str, warn: bool) -> None:
    """Compare config.yaml with the settings run.json says the run's checkpoint was made with:
    a change of the space or the controller's shape is refused (the weights cannot fit), any other
    change is named in a warning when ``warn`` (a resume continues with config.yaml's values)."""
    changes = run.config_changes()
    if not changes or not run.search_checkpoint_path.is_file():
        return
    shape_keys = {f"controller.{key}" for key in CONTROLLER_SHAPE_KEYS}
    fixed = [c for c in changes if c[0].startswith("space.") or c[0] in shape_keys]
    words = ", ".join(f"{key} {before!r} -> {after!r}" for key, before, after in (fixed or changes))
    if fixed:
        raise ConfigError(
            f"{run.config_path} changes {words} from the settings {run.search_checkpoint_path} was made with "
            f"({run.run_info_path}); the checkpoint's weights fix space.* and the controller's sizes: restore "
            "config.yaml or start a new run"
        )
    if warn and distributed.current().is_main:
        print(f"galm {command}: warning: {run.config_path} differs from the settings the checkpoint was made with "
              f"({run.run_info_path}): {words}; continuing with config.yaml", file=sys.stderr)


def _open_resumed(run: RunDirectory, command: str, warn: bool = False, debug: bool = False) -> tuple[
        GalmConfig, torch.device, AttributeDomain]:
    """The checked configuration, device and domain of a run to continue (nothing is written)."""
    config = run.config()
    _check_against_checkpoint(run, command, warn)
    device = job_device(config, debug)
    prepare_process(config)
    return config, device, config_domain(config)


def command_search(args: argparse.Namespace) -> int:
    restarted = restarted_run(args.out) if args.resume is None else None
    if restarted is not None:
        _check_restart(restarted, load_config(args))
    if args.resume is not None or restarted is not None:
        if args.resume is not None and (args.config is not None or args.overrides or args.out is not None):
            raise ValueError("--resume continues a run with its own config.yaml; --config, --set and --out "
                             "are not allowed")
        with writing_run(args.resume or restarted, args.debug) as run:
            config, device, domain = _open_resumed(run, args.command, warn=True, debug=args.debug)
            print(f"galm search: run directory {run.path} on {device}")
            record = _resume_recorder(run, config)
            heads = search_run(run, config, domain, device, resume=True, on_step=record)
            record()
            _print_search(run, heads, domain, device, args.retrain)
        return 0
    config = load_config(args)
    device = job_device(config, args.debug)
    domain = config_domain(config)  # fails on bad data before the run directory exists
    with new_run(args.out, args.command, config) as run:
        print(f"galm search: run directory {run.path} on {device}")
        heads = search_run(run, config, domain, device)
        _print_search(run, heads, domain, device, args.retrain)
    return 0


def _check_restart(run_dir: Path, config: GalmConfig) -> None:
    """A restarted job's command line must still describe the run it continues."""
    if changed_keys(RunDirectory.open(run_dir).config_mapping(), to_mapping(config)):
        raise ConfigError(f"torchrun restarted this job, but {run_dir / 'config.yaml'} holds other settings than "
                          "this command line gives; resume it with `galm search --resume` or choose a new --out")


def _print_search(run: RunDirectory, heads, domain: AttributeDomain, device: torch.device, retrain: bool) -> None:
    if distributed.current().is_main:  # the other ranks of a torchrun job derived nothing
        print_heads(heads)
        print(f"architectures: {run.architectures_path}")
    if retrain:
        _retrain_and_print(run, domain, device, "Searched network, retrained on train+val")


def finished_search(path: Path) -> tuple[RunDirectory, GalmConfig]:
    """The source of a transfer: a finished `galm search` run (its checkpoint and arm.json exist)."""
    source = RunDirectory.open(path)
    config = source.config()
    if not source.search_checkpoint_path.is_file():
        raise FileNotFoundError(f"{source.search_checkpoint_path} is missing: the source must be a `galm search` run")
    if not source.arm_path.is_file():
        raise FileNotFoundError(f"{source.arm_path} is missing: the search in {source.path} has not finished; "
                                f"finish it with `galm search --resume {source.path}`")
    return source, config


def _transfer_once(source_dir: Path, target: str, overrides: list[str], config_file: Path | None,
                   out: Path | None, retrain: bool, debug: bool = False) -> None:
    source, source_config = finished_search(source_dir)
    config = config_from_mapping(source.config_mapping(), config_file, [*overrides, *domain_overrides(target)])
    check_transfer_config(source, source_config, config)
    device = job_device(config, debug)
    prepare_process(config)
    domain = config_domain(config)  # fails on bad data before the run directory exists
    with new_run(out, "transfer", config) as run:
        print(f"galm transfer: {source.path} -> {target}; run directory {run.path} on {device}")
        heads, nearest = transfer_run(run, source, config, domain, device)
        _print_transfer(run, heads, nearest, domain, device, retrain)


def _print_transfer(run, heads, nearest, domain: AttributeDomain, device: torch.device, retrain: bool) -> None:
    if distributed.current().is_main:  # the other ranks of a torchrun job derived nothing
        print_heads(heads)
        print_nearest(nearest)
        print(f"architectures: {run.architectures_path}")
    if retrain:
        _retrain_and_print(run, domain, device, "Transferred network, retrained on train+val")


def command_transfer(args: argparse.Namespace) -> int:
    # torchrun restarted the job (--max-restarts) after it created --out: continue that run.
    restarted = restarted_run(args.out) if args.resume is None and args.scenarios is None else None
    if args.resume is not None or restarted is not None:
        if args.resume is not None and (args.config is not None or args.overrides or args.source or args.target):
            raise ValueError("--resume continues a run with its own settings; give no other options")
        with writing_run(args.resume or restarted, args.debug) as run:
            config, device, domain = _open_resumed(run, args.command, warn=True, debug=args.debug)
            source, _ = finished_search(Path(read_transfer_record(run)["source_run"]))
            record = _resume_recorder(run, config)
            heads, nearest = transfer_run(run, source, config, domain, device, resume=True, on_step=record)
            record()
            _print_transfer(run, heads, nearest, domain, device, args.retrain)
        return 0
    if args.scenarios is not None:
        scenarios = read_scenarios(args.scenarios)
        root = run_path(args.out, "transfer")
        for scenario in scenarios:
            print(f"\n=== scenario {scenario.name} ===")
            _transfer_once(Path(scenario.source), scenario.target, [*scenario.overrides, *args.overrides],
                           args.config, root / scenario.name, args.retrain, args.debug)
        return 0
    if args.source is None or args.target is None:
        raise ValueError("galm transfer needs --source RUN_DIR and --target DOMAIN (or --scenarios / --resume)")
    _transfer_once(args.source, args.target, args.overrides, args.config, args.out, args.retrain, args.debug)
    return 0


def command_derive(args: argparse.Namespace) -> int:
    with RunDirectory.open(args.run).writing() as run:
        config, device, domain = _open_resumed(run, args.command)
        heads = derive_run(run, domain, device, args.method, args.samples)
    print_heads(heads)
    print(f"architectures: {run.architectures_path}")
    return 0


def command_retrain(args: argparse.Namespace) -> int:
    with writing_run(args.run, args.debug) as run:
        config, device, domain = _open_resumed(run, args.command, debug=args.debug)
        _retrain_and_print(run, domain, device, "Searched network, retrained")
    print(f"results: {run.results_path}")
    return 0


COMMANDS = {"search": command_search, "transfer": command_transfer, "derive": command_derive,
            "retrain": command_retrain}
