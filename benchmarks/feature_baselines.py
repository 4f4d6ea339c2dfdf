"""The feature-based baselines (DAP, IAP, ALE, HAP, UMF, MDG, AFS) on one set of features: test-class
mAUC and fit seconds per method.

Features come from a finished galm run's trunk (``--run``, e.g. a ``hand_designed`` cell of an
experiment) over the ``--target`` domain (and the ``--source`` domain for AFS), or from FeatureSet
``.npz`` files (``--target-features`` / ``--source-features``, as written by ``FeatureSet.save``:
e.g. features of a pretrained network a user extracted with ``features_from_module``). ``--set``
takes the same overrides as the grid's ``base`` (the synthetic domains' size and resolution must
match the run's). Fits on train+val, scores the test classes; every method with its defaults.

    python benchmarks/feature_baselines.py --run runs/synthetic/cells/S1-D2/hand_designed/seed0 \\
        --target syn2 --source syn1 --set space.resolution=32 --set data.synthetic.resolution=32 \\
        --set data.synthetic.images_per_class=40 [--methods hap mdg] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
import warnings

from galm.baselines import BASELINES, ConstantAttributeWarning, FeatureSet, features_from_run, run_baseline
from galm.config.reader import read_config
from galm.data.sources import config_domain, domain_overrides


def run_features(run: str, domain: str, overrides: list[str]) -> FeatureSet:
    """Conv-3 features of ``run``'s trunk over ``domain`` opened with ``overrides``."""
    return features_from_run(run, config_domain(read_config(None, [*overrides, *domain_overrides(domain)])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a finished galm run directory (its model.pt trunk extracts the features)")
    parser.add_argument("--target", help="target domain (synthetic name or prepared cache), with --run")
    parser.add_argument("--source", help="source domain for AFS, with --run")
    parser.add_argument("--target-features", help="a FeatureSet .npz instead of --run/--target")
    parser.add_argument("--source-features", help="a FeatureSet .npz for AFS instead of --run/--source")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--methods", nargs="+", default=list(BASELINES), choices=list(BASELINES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.target_features:
        target = FeatureSet.load(args.target_features)
    elif args.run and args.target:
        target = run_features(args.run, args.target, args.set)
    else:
        parser.error("give --target-features, or --run with --target")
    source = None
    if args.source_features:
        source = FeatureSet.load(args.source_features)
    elif args.run and args.source:
        source = run_features(args.run, args.source, args.set)
    print(f"target {target.name}: {target.n_images} images, {target.n_features}-d features, "
          f"{target.n_attributes} attributes" + (f"; source {source.name}: {source.n_images} images" if source else ""))
    print("| method | test mAUC | fit + score seconds |\n|---|---:|---:|")
    for name in args.methods:
        if name == "afs" and source is None:
            print("| afs | (needs --source or --source-features) | |")
            continue
        options = {"source": source} if name == "afs" else {}
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConstantAttributeWarning)
            _, report = run_baseline(name, target, ("train", "val"), "test", args.seed, **options)
        print(f"| {name} | {report.mauc:.4f} | {time.perf_counter() - start:.2f} |")


if __name__ == "__main__":
    main()
