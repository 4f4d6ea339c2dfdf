"""Does the search find better heads than chance? Per seed: the GALM search with the demo budget,
its derived network retrained on train+val, against random architectures retrained with the same
budget; test-class mAUC of each.

    python benchmarks/search_vs_random.py [--seeds 0 1 2] [--randoms 5] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from galm.config.presets import DEMO_OVERRIDES
from galm.config.reader import read_config
from galm.config.typed import to_mapping
from galm.data.sources import config_domain
from galm.nn.network import FixedNetwork
from galm.runs.directory import RunDirectory
from galm.search.jobs import open_search, retrain_run, search_run
from galm.space.search_space import SearchSpace
from galm.training.train import evaluate_network, train_network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--randoms", type=int, default=5)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        config = read_config(None, [*DEMO_OVERRIDES, f"seed={seed}", *args.overrides])
        device = torch.device("cpu")
        with tempfile.TemporaryDirectory() as tmp:
            run = RunDirectory.create(Path(tmp) / "run", to_mapping(config))
            start = time.perf_counter()
            search_run(run, config, config_domain(config), device)
            search_seconds = time.perf_counter() - start
            searched = retrain_run(run, config_domain(run.config()), device).mauc
            domain = config_domain(config)
            # With retrain_init=supernet the random heads start from the supernet's weights too.
            supernet = (open_search(run, config, domain, device).supernet
                        if config.search.retrain_init == "supernet" else None)
        space = SearchSpace(config.space)
        retrain = config.retrain
        randoms = []
        for k in range(args.randoms):
            rng = random.Random(1000 * seed + k + 1)
            torch.manual_seed(seed)
            net = FixedNetwork([space.sample(rng) for _ in domain.attribute_names], config.space)
            if supernet is not None:
                net.load_from_supernet(supernet, list(range(domain.n_attributes)))
            train_network(net, domain, retrain, seed)
            randoms.append(evaluate_network(net, domain, "test").mauc)
        rows.append((seed, searched, statistics.median(randoms), max(randoms), search_seconds))
        print(f"seed {seed}: searched {searched:.4f}  random median {statistics.median(randoms):.4f} "
              f"best {max(randoms):.4f}  (all: {', '.join(f'{r:.4f}' for r in randoms)})", flush=True)
    print("\n| seed | searched mAUC | random median | random best | search seconds |")
    print("|---:|---:|---:|---:|---:|")
    for seed, searched, median, best, seconds in rows:
        print(f"| {seed} | {searched:.4f} | {median:.4f} | {best:.4f} | {seconds:.0f} |")
    wins = sum(searched >= median for _, searched, median, _, _ in rows)
    print(f"\nsearched >= random median on {wins}/{len(rows)} seeds")


if __name__ == "__main__":
    main()
