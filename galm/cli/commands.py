"""The `galm` command line: parses arguments and calls the library (no logic of its own)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

from galm import __version__
from galm.cli import data as data_commands
from galm.cli import report as report_commands
from galm.config.presets import PRESETS, preset_overrides
from galm.config.reader import config_from_mapping, read_config
from galm.config.schema import GalmConfig
from galm.config.typed import ConfigError, to_mapping, yaml_text
from galm.data.sources import domain_overrides, open_domain
from galm.engine.device import configure_threads, resolve_device, seed_everything
from galm.experiments.demo import DEMO_OVERRIDES, run_demo
from galm.experiments.scenarios import read_scenarios
from galm.runs.architectures import architectures_record, resolve_architectures
from galm.runs.atomic import write_json
from galm.runs.directory import RunDirectory
from galm.search.jobs import (
    config_domain,
    derive_run,
    evaluate_run,
    retrain_run,
    run_config,
    search_run,
    transfer_run,
)
from galm.search.state import DerivedHead
from galm.search.transfer import NearestSource, read_transfer_record
from galm.space.search_space import SearchSpace
from galm.training.evaluate import AucReport
from galm.training.fixed import train_and_evaluate


def _add_preset_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset", choices=sorted(PRESETS),
        help="named configuration, applied after --config and before --set: 'demo' (minutes on a CPU) or 'paper' "
        "(251 attributes at 224x224, the paper's budget; see configs/paper.yaml)",
    )


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file with settings (see configs/default.yaml)")
    _add_preset_argument(parser)
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one setting, e.g. --set train.epochs=5 --set space.resolution=224 (repeatable)",
    )
    parser.add_argument("--out", type=Path, help="run directory to create (default: runs/<command>-<time>)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="galm",
        description="GALM: search, train and evaluate per-attribute network heads on a shared trunk.",
    )
    parser.add_argument("--version", action="version", version=f"galm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train",
        help="train a fixed multi-attribute network for given architectures, then report mAUC",
        description="Train the fixed network (shared trunk + one chosen head per attribute) on the "
        "configured splits and score per-attribute ROC AUC and mAUC on the evaluation split.",
    )
    _add_config_arguments(train)
    train.add_argument(
        "--arch", default="random",
        help="'random' (one seeded architecture per attribute), an architectures JSON file "
        "(attribute name -> architecture), or one architecture string for every attribute, "
        "e.g. c4k3s12-c5k5s3-f128-f64-o2 (default: random)",
    )

    search = commands.add_parser(
        "search",
        help="run the GALM search (Algorithm 1) and derive one architecture per attribute",
        description="Alternate training of the shared weights and of the ARM + MNAS controller by "
        "REINFORCE, checkpointing after every episode; then derive the final architectures "
        "(architectures.json) and the ARM attribute similarities (arm.json).",
    )
    _add_config_arguments(search)
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
        "--config/--set change it. --scenarios runs several transfers listed in a YAML file.",
    )
    transfer.add_argument("--source", type=Path, metavar="RUN_DIR", help="a finished `galm search` run")
    transfer.add_argument("--target", help="a synthetic domain name (syn1, syn2, ...) or a prepared domain directory")
    _add_config_arguments(transfer)
    transfer.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a stopped transfer run")
    transfer.add_argument("--retrain", action="store_true", help="also retrain and score the target network")
    transfer.add_argument("--scenarios", type=Path, metavar="YAML",
                          help="a list of {name, source, target, set: [key=value, ...]}; runs go under --out")

    derive = commands.add_parser("derive", help="derive the final architectures again from a search checkpoint")
    derive.add_argument("run", type=Path, metavar="RUN_DIR")
    derive.add_argument("--method", choices=("argmax", "best_of_k"), help="default: the run's search.derive")
    derive.add_argument("--samples", type=int, help="k for best_of_k (default: the run's search.derive_samples)")

    retrain = commands.add_parser(
        "retrain", help="train the derived network from scratch on train+val, then score it on the test split"
    )
    retrain.add_argument("run", type=Path, metavar="RUN_DIR")

    evaluate = commands.add_parser("evaluate", help="score a run's trained network on a split")
    evaluate.add_argument("run", type=Path, metavar="RUN_DIR")
    evaluate.add_argument("--split", default="test", help="train, val or test (default: test)")

    demo = commands.add_parser(
        "demo", help="search -> derive -> retrain -> evaluate on the built-in data, against a random control",
        description="The main job on the built-in synthetic domain with a small budget: a GALM search, "
        "the derived network retrained and scored on unseen classes, next to random architectures "
        "retrained with the same budget, and the most frequent design choices.",
    )
    _add_config_arguments(demo)

    data_commands.register(commands)
    report_commands.register(commands)

    commands.add_parser("space", help="print the per-attribute decisions of the search space (Table 1)")

    config = commands.add_parser(
        "config", help="print the resolved configuration (defaults, --config file, --set overrides) as YAML"
    )
    config.add_argument("--config", type=Path, help="YAML file with settings")
    _add_preset_argument(config)
    config.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return parser


def _load(args: argparse.Namespace) -> GalmConfig:
    config = read_config(args.config, args.overrides)
    configure_threads(config.threads)
    seed_everything(config.seed)
    return config


def _run_dir(args: argparse.Namespace, config: GalmConfig) -> RunDirectory:
    path = args.out or Path("runs") / f"{args.command}-{time.strftime('%Y%m%d-%H%M%S')}"
    return RunDirectory.create(path, to_mapping(config))


def _print_report(report: AucReport, title: str) -> None:
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


def command_train(args: argparse.Namespace) -> int:
    config = _load(args)
    domain = open_domain(config.data.source, config.data.domain, config.data.synthetic, config.space.resolution)
    space = SearchSpace(config.space)
    archs = resolve_architectures(args.arch, domain.attribute_names, space, config.seed)
    run = _run_dir(args, config)
    write_json(run.architectures_path, architectures_record(archs))
    device = resolve_device(config.device)
    print(f"galm train: domain {domain.name} ({domain.n_images} images, {domain.n_attributes} attributes) "
          f"on {device}; run directory {run.path}")
    report = train_and_evaluate(
        run, domain, archs, config.space, config.train, config.seed, device, execution=config.execution
    )
    _print_report(report, f"Fixed network ({args.arch}) on {domain.name}")
    print(f"results: {run.results_path}")
    return 0


def command_search(args: argparse.Namespace) -> int:
    if args.resume is not None:
        if args.config is not None or args.overrides:
            raise ValueError("--resume continues a run with its own config.yaml; --config and --set are not allowed")
        run = RunDirectory.open(args.resume)
        config = run_config(run)
        configure_threads(config.threads)
        seed_everything(config.seed)
        RunDirectory.create(run.path, to_mapping(config), exist_ok=True)  # records the resume in run.json
    else:
        config = _load(args)
        config_domain(config)  # fail on bad data before creating the run directory
        run = _run_dir(args, config)
    device = resolve_device(config.device)
    print(f"galm search: run directory {run.path} on {device}")
    heads = search_run(run, config, device, resume=args.resume is not None)
    _print_heads(heads)
    print(f"architectures: {run.architectures_path}")
    if args.retrain:
        _print_report(retrain_run(run, device), "Searched network, retrained on train+val")
    return 0


def _print_heads(heads: list[DerivedHead]) -> None:
    width = max(len(h.attribute) for h in heads)
    print(f"\n{'attribute':<{width}}  {'architecture':<30} {'p(policy)':>9} {'val reward':>10}")
    for h in heads:
        print(f"{h.attribute:<{width}}  {h.architecture.short():<30} {h.probability:>9.3f} {h.val_reward:>10.3f}")


def _transfer_once(source_dir: Path, target: str, overrides: list[str], config_file: Path | None,
                   out: Path | None, retrain: bool) -> None:
    source = RunDirectory.open(source_dir)
    base = source.config_mapping()
    config = config_from_mapping(base, config_file, [*overrides, *domain_overrides(target)])
    configure_threads(config.threads)
    seed_everything(config.seed)
    config_domain(config)  # fail on bad data before creating the run directory
    path = out or Path("runs") / f"transfer-{time.strftime('%Y%m%d-%H%M%S')}"
    run = RunDirectory.create(path, to_mapping(config))
    device = resolve_device(config.device)
    print(f"galm transfer: {source.path} -> {target}; run directory {run.path} on {device}")
    heads, nearest = transfer_run(run, source, config, device)
    _print_transfer(heads, nearest, run, retrain, device)


def _print_transfer(
    heads: list[DerivedHead], nearest: list[NearestSource], run: RunDirectory, retrain: bool, device: torch.device
) -> None:
    _print_heads(heads)
    if nearest:
        width = max(len(n.attribute) for n in nearest)
        print(f"\n{'attribute':<{width}}  nearest searched attribute (cosine similarity)")
        for n in nearest:
            print(f"{n.attribute:<{width}}  {n.source} ({n.similarity:.3f})")
    print(f"architectures: {run.architectures_path}")
    if retrain:
        _print_report(retrain_run(run, device), "Transferred network, retrained on train+val")


def command_transfer(args: argparse.Namespace) -> int:
    if args.resume is not None:
        if args.config is not None or args.overrides or args.source or args.target:
            raise ValueError("--resume continues a run with its own settings; give no other options")
        run = RunDirectory.open(args.resume)
        config = run_config(run)
        configure_threads(config.threads)
        source = RunDirectory.open(read_transfer_record(run)["source_run"])
        device = resolve_device(config.device)
        heads, nearest = transfer_run(run, source, config, device, resume=True)
        _print_transfer(heads, nearest, run, args.retrain, device)
        return 0
    if args.scenarios is not None:
        scenarios = read_scenarios(args.scenarios)
        root = args.out or Path("runs") / f"transfer-{time.strftime('%Y%m%d-%H%M%S')}"
        for scenario in scenarios:
            print(f"\n=== scenario {scenario.name} ===")
            _transfer_once(scenario.source, scenario.target, [*scenario.overrides, *args.overrides],
                           args.config, root / scenario.name, args.retrain)
        return 0
    if args.source is None or args.target is None:
        raise ValueError("galm transfer needs --source RUN_DIR and --target DOMAIN (or --scenarios / --resume)")
    _transfer_once(args.source, args.target, args.overrides, args.config, args.out, args.retrain)
    return 0


def command_derive(args: argparse.Namespace) -> int:
    run = RunDirectory.open(args.run)
    config = run_config(run)
    heads = derive_run(run, resolve_device(config.device), args.method, args.samples)
    _print_heads(heads)
    print(f"architectures: {run.architectures_path}")
    return 0


def command_retrain(args: argparse.Namespace) -> int:
    run = RunDirectory.open(args.run)
    config = run_config(run)
    configure_threads(config.threads)
    report = retrain_run(run, resolve_device(config.device))
    _print_report(report, "Searched network, retrained")
    print(f"results: {run.results_path}")
    return 0


def command_evaluate(args: argparse.Namespace) -> int:
    run = RunDirectory.open(args.run)
    config = run_config(run)
    _print_report(evaluate_run(run, args.split, resolve_device(config.device)), f"Trained network of {run.path}")
    return 0


def command_demo(args: argparse.Namespace) -> int:
    config = read_config(args.config, [*DEMO_OVERRIDES, *args.overrides])
    configure_threads(config.threads)
    seed_everything(config.seed)
    run = _run_dir(args, config)
    device = resolve_device(config.device)
    print(f"galm demo: GALM search on {config.data.domain} ({config.search.episodes} episodes), "
          f"then retraining; run directory {run.path}")
    summary = run_demo(run, config, device)
    print(summary)
    return 0


def command_space(args: argparse.Namespace) -> int:
    space = SearchSpace()
    print(f"{len(space)} architectures per attribute; decisions (what a controller chooses):")
    for decision in space.decisions:
        print(f"  {decision.name:<18} {decision.size} choices: {list(decision.choices)}")
    return 0


def command_config(args: argparse.Namespace) -> int:
    print(yaml_text(read_config(args.config, args.overrides)), end="")
    return 0


COMMANDS = {
    "train": command_train, "search": command_search, "derive": command_derive, "retrain": command_retrain,
    "evaluate": command_evaluate, "transfer": command_transfer, "data": data_commands.run,
    "experiment": report_commands.run, "report": report_commands.run, "demo": command_demo, "space": command_space, "config": command_config,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "preset", None):
        args.overrides = [*preset_overrides(args.preset), *args.overrides]
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"galm {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"galm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
