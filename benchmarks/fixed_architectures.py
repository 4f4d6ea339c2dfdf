"""Do head architectures matter? Train fixed networks of different architectures on the default
synthetic domain under the same budget and print per-attribute test AUC side by side.

    python benchmarks/fixed_architectures.py [--epochs 12] [--seed 0] [--domain syn1]
"""

from __future__ import annotations

import argparse
import random
import time

import torch

from galm.config.reader import read_config
from galm.data.sources import open_domain
from galm.nn.network import FixedNetwork
from galm.space.search_space import Architecture, SearchSpace
from galm.training.train import evaluate_network, train_network

CANDIDATES = {
    "smallest": "c4k3s0-c5k3s0-f64-f64-o1",
    "largest": "c4k5s12-c5k5s123-f256-f256-o2",
    "skips-only": "c4k3s12-c5k3s123-f64-f64-o1",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--domain", default="syn1")
    args = parser.parse_args()
    config = read_config(None, [f"train.epochs={args.epochs}", f"data.domain={args.domain}"])
    domain = open_domain("synthetic", args.domain, config.data.synthetic, config.space.resolution)
    space = SearchSpace(config.space)
    heads = {label: [Architecture.parse(text)] * domain.n_attributes for label, text in CANDIDATES.items()}
    rng = random.Random(args.seed)
    heads["random"] = [space.sample(rng) for _ in domain.attribute_names]
    reports, seconds = {}, {}
    for label, archs in heads.items():
        torch.manual_seed(args.seed)
        net = FixedNetwork(archs, config.space)
        start = time.perf_counter()
        train_network(net, domain, config.train, seed=args.seed)
        seconds[label] = time.perf_counter() - start
        reports[label] = evaluate_network(net, domain, "test")
    labels = list(heads)
    width = max(len(n) for n in domain.attribute_names)
    print(f"\nTest-class AUC on {domain.name}, {args.epochs} epochs, seed {args.seed}")
    print(f"{'attribute':<{width}}  " + "  ".join(f"{label:>10}" for label in labels) + "  spread")
    for name in domain.attribute_names:
        values = [reports[label].per_attribute_auc.get(name, float("nan")) for label in labels]
        print(f"{name:<{width}}  " + "  ".join(f"{v:>10.3f}" for v in values) + f"  {max(values) - min(values):.3f}")
    print(f"{'mAUC':<{width}}  " + "  ".join(f"{reports[label].mauc:>10.4f}" for label in labels))
    print(f"{'train seconds':<{width}}  " + "  ".join(f"{seconds[label]:>10.1f}" for label in labels))


if __name__ == "__main__":
    main()
