"""The `galm` command line: parses arguments and calls the library (no logic of its own)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from galm import __version__
from galm.config import GalmConfig, read_config
from galm.data.sources import open_domain
from galm.evaluate import AucReport
from galm.retrain import architectures_record, resolve_architectures, train_and_evaluate
from galm.rundir import RunDirectory, write_json
from galm.runtime import configure_threads, resolve_device, seed_everything
from galm.space import SearchSpace
from galm.typed_config import ConfigError, to_mapping, yaml_text


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file with settings (see configs/default.yaml)")
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

    demo = commands.add_parser(
        "demo", help="the main job on the built-in synthetic data, with a short summary",
        description="Train on the built-in synthetic domain and print the per-attribute AUC and mAUC.",
    )
    _add_config_arguments(demo)

    commands.add_parser("space", help="print the per-attribute decisions of the search space (Table 1)")

    config = commands.add_parser(
        "config", help="print the resolved configuration (defaults, --config file, --set overrides) as YAML"
    )
    config.add_argument("--config", type=Path, help="YAML file with settings")
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
    report = train_and_evaluate(run, domain, archs, config.space, config.train, config.seed, device)
    _print_report(report, f"Fixed network ({args.arch}) on {domain.name}")
    print(f"results: {run.results_path}")
    return 0


def command_demo(args: argparse.Namespace) -> int:
    args.arch = "random"
    return command_train(args)


def command_space(args: argparse.Namespace) -> int:
    space = SearchSpace()
    print(f"{len(space)} architectures per attribute; decisions (what a controller chooses):")
    for decision in space.decisions:
        print(f"  {decision.name:<18} {decision.size} choices: {list(decision.choices)}")
    return 0


def command_config(args: argparse.Namespace) -> int:
    print(yaml_text(read_config(args.config, args.overrides)), end="")
    return 0


COMMANDS = {"train": command_train, "demo": command_demo, "space": command_space, "config": command_config}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
