"""`galm demo` (the main job on the built-in data), `galm space` and `galm config` (what can be set)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from galm.cli.arguments import (
    add_config_arguments,
    add_preset_argument,
    load_config,
    new_run,
)
from galm.config import read_config
from galm.config.presets import DEMO_OVERRIDES
from galm.config.typed import yaml_text
from galm.engine.device import resolve_device
from galm.experiments.demo import run_demo
from galm.space import SearchSpace


def register(commands: Any) -> None:
    demo = commands.add_parser(
        "demo", help="search -> derive -> retrain -> evaluate on the built-in data, against a random control",
        description="The main job on the built-in synthetic domain with a small budget: a GALM search, "
        "the derived network retrained and scored on unseen classes, next to random architectures "
        "retrained with the same budget, and the most frequent design choices.",
    )
    add_config_arguments(demo)
    commands.add_parser("space", help="print the per-attribute decisions of the search space (Table 1)")
    config = commands.add_parser(
        "config", help="print the resolved configuration (defaults, --config file, --set overrides) as YAML"
    )
    config.add_argument("--config", type=Path, help="YAML file with settings")
    add_preset_argument(config)
    config.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def command_demo(args: argparse.Namespace) -> int:
    config = load_config(args, DEMO_OVERRIDES)
    device = resolve_device(config.device)
    with new_run(args.out, args.command, config) as run:
        print(f"galm demo: GALM search on {config.data.domain} ({config.search.episodes} episodes), "
              f"then retraining; run directory {run.path}")
        print(run_demo(run, config, device))
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


COMMANDS = {"demo": command_demo, "space": command_space, "config": command_config}
