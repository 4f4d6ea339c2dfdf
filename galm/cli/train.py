"""`galm train` (a fixed network for given architectures) and `galm evaluate` (score a trained run)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from galm.cli.arguments import add_config_arguments, job_device, load_config, new_run
from galm.cli.printing import print_report
from galm.config.schema import SPLITS
from galm.data.info import unlearnable_attributes
from galm.data.sources import config_domain
from galm.engine import distributed
from galm.engine.device import resolve_device
from galm.runs.architectures import architectures_record, resolve_architectures
from galm.runs.atomic import write_json
from galm.runs.directory import RunDirectory
from galm.space import SearchSpace
from galm.training.fixed import evaluate_run, train_and_evaluate


def register(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train a fixed multi-attribute network for given architectures, then report mAUC",
        description="Train the fixed network (shared trunk + one chosen head per attribute) on the "
        "configured splits and score per-attribute ROC AUC and mAUC on the evaluation split.",
    )
    add_config_arguments(train)
    train.add_argument(
        "--arch", default="random",
        help="'random' (one seeded architecture per attribute), an architectures JSON file "
        "(attribute name -> architecture), or one architecture string for every attribute, "
        "e.g. c4k3s12-c5k5s3-f128-f64-o2 (default: random)",
    )
    evaluate = commands.add_parser("evaluate", help="score a run's trained network on a split")
    evaluate.add_argument("run", type=Path, metavar="RUN_DIR")
    evaluate.add_argument("--split", default="test", choices=SPLITS, help="the split to score (default: test)")


def command_train(args: argparse.Namespace) -> int:
    config = load_config(args)
    device = job_device(config, args.debug)
    domain = config_domain(config)
    archs = resolve_architectures(args.arch, domain.attribute_names, SearchSpace(config.space), config.seed)
    with new_run(args.out, args.command, config) as run:
        if distributed.current().is_main:
            write_json(run.architectures_path, architectures_record(archs))
        print(f"galm train: domain {domain.name} ({domain.n_images} images, {domain.n_attributes} attributes) "
              f"on {device}; run directory {run.path}")
        report = train_and_evaluate(
            run, domain, archs, config.space, config.train, config.seed, device, execution=config.execution,
            excluded=unlearnable_attributes(domain, config.search.min_positives),
        )
    print_report(report, f"Fixed network ({args.arch}) on {domain.name}")
    print(f"results: {run.results_path}")
    return 0


def command_evaluate(args: argparse.Namespace) -> int:
    with RunDirectory.open(args.run).writing() as run:
        config = run.config()
        device = resolve_device(config.device)
        report = evaluate_run(run, config_domain(config), args.split, device)
    print_report(report, f"Trained network of {run.path}")
    return 0


COMMANDS = {"train": command_train, "evaluate": command_evaluate}
