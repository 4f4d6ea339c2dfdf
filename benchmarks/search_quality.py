"""Is the search worth it? Whether its shared-weight rewards rank heads as training does, and whether
its network beats random heads and the best single fixed head at equal retraining budget.

Per seed, on syn1 (default) or a prepared cache (``--data DIR``):

1. the GALM search with the demo budget (plus ``--set``), derived as configured;
2. ranking: K heads per searched attribute drawn uniformly; each head's reward on the shared
   weights at the end of the search (whole validation split, the search's reward metric), and the
   same heads trained stand-alone with the retraining budget (train+val, all attributes' candidates
   in one batched network, ``galm.training.candidates``) and scored on the test split; Kendall tau
   between the two, per attribute (mean) and pooled over every (attribute, head) pair; and the same
   tau for the signal ``search.derive=trained`` ranks by (validation AUC after
   ``search.derive_epochs`` of stand-alone training on the training split, or the cross-validated
   AUC of ``search.derive_folds``);
3. networks, each trained from scratch with the retraining budget and scored on the test classes:
   the searched heads, ``--randoms`` networks of random heads, and one fixed head for every
   attribute among smallest, largest and hand-designed.

Items 2's stand-alone training and 3's reference networks do not depend on the search settings, so
they are cached per (data, seed, budget) under ``--cache`` and reused when only the search changes.

``--retrain-seeds R`` trains every compared network (searched, random, fixed) R times with different
training seeds and compares their means: one training's mAUC varies by about as much as the margins
the search is asked for, so single trainings cannot tell a better search from a luckier one.

``--ceiling`` measures, without any search, how far stand-alone training ranks heads reproducibly:
the same K heads per attribute trained stand-alone a second time with another seed, and Kendall tau
between the two runs' test AUCs. No proxy (shared-weight reward, short training) can be expected to
rank heads better than training ranks itself, so this is the ceiling of ``kendall tau``.

    python benchmarks/search_quality.py [--data DIR] [--seeds 0 1 2] [--candidates 8] [--randoms 5]
        [--set key=value ...] [--out results.json] [--retrain-seeds 1]
        [--skip-short] [--skip-ranking] [--ceiling] [--references-only]

The last two lines are ``kendall tau: <mean>`` and ``searched minus random median: <mAUC points>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from galm.config.presets import DEMO_OVERRIDES  # noqa: E402
from galm.config.reader import read_config  # noqa: E402
from galm.config.schema import GalmConfig  # noqa: E402
from galm.config.typed import to_mapping  # noqa: E402
from galm.data.domain import AttributeDomain  # noqa: E402
from galm.data.info import unlearnable_attributes  # noqa: E402
from galm.data.sources import config_domain  # noqa: E402
from galm.engine.threads import configure_threads  # noqa: E402
from galm.runs.architectures import read_architectures, resolve_architectures  # noqa: E402
from galm.runs.directory import RunDirectory  # noqa: E402
from galm.search.derive import candidate_scores, validation_rewards  # noqa: E402
from galm.search.jobs import continue_search, build_search, retrain_run  # noqa: E402
from galm.space import Architecture, SearchSpace  # noqa: E402
from galm.training.candidates import train_candidates  # noqa: E402
from galm.training.fixed import train_and_evaluate  # noqa: E402

FIXED = {
    "smallest": "c4k3s0-c5k3s0-f64-f64-o1",
    "largest": "c4k5s12-c5k5s123-f256-f256-o2",
    "hand_designed": "c4k3s0-c5k3s0-f256-f128-o2",
}


def finite_mean(values) -> float:
    """Mean of the finite values, NaN (without numpy's empty-slice warning) when there are none, as
    with ``--skip-ranking``, where no tau is measured."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def retrain_seed(config: GalmConfig, repeat: int) -> int:
    """The training seed of the `repeat`-th retraining of a network (the run's own seed first)."""
    return config.seed + 7919 * repeat


def fixed_network_mauc(config: GalmConfig, domain: AttributeDomain, archs: dict[str, Architecture],
                       device: torch.device, repeat: int = 0) -> float:
    """Test mAUC of the fixed network of `archs` trained with the retraining budget (a throwaway run)."""
    excluded = unlearnable_attributes(domain, config.search.min_positives)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDirectory.create(Path(tmp) / "run", to_mapping(config))
        report = train_and_evaluate(run, domain, archs, config.space, config.retrain, retrain_seed(config, repeat),
                                    device, execution=config.execution, excluded=excluded)
    return report.mauc


def reference_networks(config: GalmConfig, domain: AttributeDomain, args: argparse.Namespace,
                       device: torch.device, repeat: int) -> dict:
    """The random-head and fixed networks' test mAUC for one retraining seed."""
    names = domain.attribute_names
    space = SearchSpace(config.space)
    randoms = [fixed_network_mauc(config, domain, resolve_architectures("random", names, space, 1000 * config.seed + r),
                                  device, repeat) for r in range(args.randoms)]
    fixed = {name: fixed_network_mauc(config, domain, {a: Architecture.parse(short) for a in names}, device, repeat)
             for name, short in FIXED.items()}
    return {"random_mauc": randoms, "fixed_mauc": fixed}


def averaged_reference(ref: dict, config: GalmConfig, domain: AttributeDomain, args: argparse.Namespace,
                       device: torch.device) -> dict:
    """Each reference network's mAUC averaged over ``--retrain-seeds`` trainings (extra ones cached)."""
    repeats = ref.setdefault("repeats", {})
    for repeat in range(1, args.retrain_seeds):
        if str(repeat) not in repeats:
            repeats[str(repeat)] = reference_networks(config, domain, args, device, repeat)
            reference_path(config, args).write_text(json.dumps(ref))
    runs = [ref] + [repeats[str(r)] for r in range(1, args.retrain_seeds)]
    return {"random_mauc": np.mean([r["random_mauc"] for r in runs], axis=0).tolist(),
            "fixed_mauc": {name: float(np.mean([r["fixed_mauc"][name] for r in runs])) for name in FIXED},
            "random_mauc_by_seed": [r["random_mauc"] for r in runs]}


def candidate_heads(space: SearchSpace, n_attributes: int, k: int, seed: int) -> list[list[Architecture]]:
    """K uniformly drawn heads for each of n attributes (candidates[k][j])."""
    rng = random.Random(seed + 7919)
    return [[space.sample(rng) for _ in range(n_attributes)] for _ in range(k)]


def reference_path(config: GalmConfig, args: argparse.Namespace) -> Path:
    """The cache file of the reference results: named by everything they depend on."""
    key = json.dumps({"data": args.data, "seed": config.seed, "train": to_mapping(config.train),
                      "splits": list(config.search.retrain_splits), "space": to_mapping(config.space),
                      "synthetic": to_mapping(config.data.synthetic), "k": args.candidates,
                      "randoms": args.randoms, "min_positives": config.search.min_positives}, sort_keys=True)
    return Path(args.cache) / f"reference-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def seed_config(seed: int, args: argparse.Namespace) -> GalmConfig:
    """The demo budget on the benchmark's data with the command line's overrides, for one seed."""
    data = [f"data.source={args.data}"] if args.data else []
    config = read_config(None, [*DEMO_OVERRIDES, *data, f"seed={seed}", *args.overrides])
    configure_threads(config.threads)
    torch.manual_seed(seed)
    return config


def reference(config: GalmConfig, domain: AttributeDomain, searched: list[str], args: argparse.Namespace,
              device: torch.device, ranking: bool = True) -> dict:
    """What does not depend on the search: random-head and fixed networks and (with `ranking`) the
    stand-alone test AUC of the K candidates. Cached on disk by everything it depends on; a part
    missing from the cache is computed and added."""
    path = reference_path(config, args)
    record = json.loads(path.read_text()) if path.is_file() else {}
    missing = "random_mauc" not in record or (ranking and "standalone_test_auc" not in record)
    if "random_mauc" not in record:
        start = time.perf_counter()
        record.update(reference_networks(config, domain, args, device, 0))
        record["seconds"] = time.perf_counter() - start
    if ranking and "standalone_test_auc" not in record:
        candidates = candidate_heads(SearchSpace(config.space), len(searched), args.candidates, config.seed)
        record["standalone_test_auc"] = train_candidates(
            domain.subset_attributes(searched), candidates, config.space, config.retrain, config.seed, device,
            splits=config.retrain.splits, score_split="test", execution=config.execution).tolist()
    if missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))
    return record


def repeat_standalone(config: GalmConfig, domain: AttributeDomain, args: argparse.Namespace,
                      device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """The reference stand-alone test AUCs (K, m) and the same heads trained again with another seed."""
    excluded = unlearnable_attributes(domain, config.search.min_positives)
    searched = [name for name in domain.attribute_names if name not in excluded]
    ref = reference(config, domain, searched, args, device)
    if "standalone_repeat_test_auc" not in ref:
        candidates = candidate_heads(SearchSpace(config.space), len(searched), args.candidates, config.seed)
        repeat = train_candidates(domain.subset_attributes(searched), candidates, config.space, config.retrain,
                                  config.seed + 1009, device, splits=config.retrain.splits, score_split="test",
                                  execution=config.execution)
        ref["standalone_repeat_test_auc"] = repeat.tolist()
        reference_path(config, args).write_text(json.dumps(ref))
    return (np.asarray(ref["standalone_test_auc"], dtype=float),
            np.asarray(ref["standalone_repeat_test_auc"], dtype=float))


def ceiling(args: argparse.Namespace, device: torch.device) -> None:
    """Print the seed-to-seed Kendall tau of stand-alone training per seed and on average."""
    means = []
    for seed in args.seeds:
        config = seed_config(seed, args)
        first, second = repeat_standalone(config, config_domain(config), args, device)
        tau, pooled, _ = kendall(first, second)
        spread = float(np.nanmean(np.nanstd(first, axis=0)))
        noise = float(np.nanmean(np.abs(first - second)) / np.sqrt(2))
        means.append(tau)
        print(f"seed {seed}: stand-alone seed-to-seed kendall tau {tau:.3f} (pooled {pooled:.3f}); "
              f"AUC spread across heads {spread:.4f}, seed noise per head {noise:.4f}", flush=True)
    print(f"kendall tau ceiling: {np.nanmean(means):.3f}")


def kendall(shared: np.ndarray, standalone: np.ndarray) -> tuple[float, float, list[float]]:
    """Mean over attributes of Kendall tau (K heads each), pooled tau over all pairs, per-attribute taus."""
    taus = []
    for j in range(shared.shape[1]):
        ok = np.isfinite(shared[:, j]) & np.isfinite(standalone[:, j])
        if ok.sum() >= 3 and np.ptp(shared[ok, j]) > 0 and np.ptp(standalone[ok, j]) > 0:
            taus.append(float(kendalltau(shared[ok, j], standalone[ok, j]).statistic))
    ok = np.isfinite(shared) & np.isfinite(standalone)
    pooled = float(kendalltau(shared[ok], standalone[ok]).statistic) if ok.sum() >= 3 else float("nan")
    return (float(np.mean(taus)) if taus else float("nan")), pooled, taus


def run_seed(seed: int, args: argparse.Namespace, device: torch.device) -> dict:
    config = seed_config(seed, args)
    domain = config_domain(config)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDirectory.create(Path(tmp) / "run", to_mapping(config))
        state = build_search(config, domain, device)
        searched = [state.attribute_names[a] for a in state.active.tolist()]
        start = time.perf_counter()
        heads = continue_search(run, state, resume=False)
        search_seconds = time.perf_counter() - start
        space = SearchSpace(config.space)
        candidates = candidate_heads(space, len(searched), args.candidates, seed)
        shared = torch.stack([validation_rewards(state, state.active_ids(), archs) for archs in candidates]).numpy()
        short = np.full_like(shared, np.nan)
        if not (args.skip_short or args.skip_ranking):
            short = candidate_scores(domain.subset_attributes(searched), candidates, config.search, config.space,
                                     config.retrain, seed, device, config.execution)
        searched_by_seed = [retrain_run(run, domain, device).mauc]
        archs = read_architectures(run.architectures_path, domain.attribute_names)
        searched_by_seed += [fixed_network_mauc(config, domain, archs, device, r) for r in range(1, args.retrain_seeds)]
        searched_mauc = float(np.mean(searched_by_seed))
        quality = json.loads(run.search_quality_path.read_text())
    raw = reference(config, domain, searched, args, device, ranking=not args.skip_ranking)
    ref = {**raw, **averaged_reference(raw, config, domain, args, device)}
    standalone = np.asarray(ref.get("standalone_test_auc", np.full_like(shared, np.nan)), dtype=float)
    tau, pooled, taus = kendall(shared, standalone)
    short_tau, short_pooled, _ = kendall(short, standalone)
    # Against the mean of two stand-alone trainings where --ceiling has trained the second one.
    repeat = ref.get("standalone_repeat_test_auc")
    two_seed_tau = kendall(shared, (standalone + np.asarray(repeat, dtype=float)) / 2)[0] if repeat else float("nan")
    best_fixed = max(ref["fixed_mauc"], key=ref["fixed_mauc"].get)
    return {
        "seed": seed, "searched_mauc": searched_mauc, "searched_mauc_by_seed": searched_by_seed,
        "random_mauc": ref["random_mauc"], "random_mauc_by_seed": ref["random_mauc_by_seed"],
        "random_median": statistics.median(ref["random_mauc"]), "random_best": max(ref["random_mauc"]),
        "fixed_mauc": ref["fixed_mauc"], "best_fixed": best_fixed, "best_fixed_mauc": ref["fixed_mauc"][best_fixed],
        "kendall_tau_mean": tau, "kendall_tau_pooled": pooled, "kendall_taus": taus,
        "two_seed_reference_tau_mean": two_seed_tau, "short_training_tau_mean": short_tau, "short_training_tau_pooled": short_pooled,
        "search_seconds": search_seconds, "n_searched": len(searched), "n_skipped": len(state.skipped),
        "heads": {name: arch.short() for name, arch in archs.items()}, "derived": [h.attribute for h in heads],
        "policy_entropy": quality["policy_entropy"], "max_policy_entropy": quality["max_policy_entropy"],
        "searched_val_mauc_shared": quality["searched_val_mauc"], "random_val_mauc_shared": quality["random_val_mauc"],
        "derived_network": quality.get("derived_network"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a prepared cache directory (default: the synthetic syn1)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--candidates", type=int, default=8, help="heads per attribute for the ranking check")
    parser.add_argument("--randoms", type=int, default=5, help="random-head networks per seed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--cache", default=".cache/search_quality", help="where reference results are kept")
    parser.add_argument("--out", type=Path, help="write every figure as JSON here")
    parser.add_argument("--retrain-seeds", type=int, default=1,
                        help="train every compared network this many times (training seeds) and average")
    parser.add_argument("--skip-short", action="store_true",
                        help="skip the short-training ranking check (its tau prints as nan; saves one training "
                             "of K heads per attribute for search.derive_epochs epochs)")
    parser.add_argument("--skip-ranking", action="store_true",
                        help="compare networks only: no stand-alone training of the K candidates, so every "
                             "kendall tau prints as nan (on Clothing that training is a third of the cost)")
    parser.add_argument("--references-only", action="store_true",
                        help="only train and cache the random-head and fixed networks (no search), so that "
                             "later runs with other search settings reuse them")
    parser.add_argument("--ceiling", action="store_true",
                        help="only measure how reproducibly stand-alone training ranks heads (no search)")
    args = parser.parse_args()
    if args.candidates < 2:
        parser.error("--candidates must be at least 2")
    if args.retrain_seeds < 1:
        parser.error("--retrain-seeds must be at least 1")
    device = torch.device("cpu")
    if args.ceiling:
        ceiling(args, device)
        return
    if args.references_only:
        for seed in args.seeds:
            config = seed_config(seed, args)
            domain = config_domain(config)
            ref = averaged_reference(reference(config, domain, [], args, device, ranking=False), config, domain,
                                     args, device)
            print(f"seed {seed}: random median {statistics.median(ref['random_mauc']):.4f}  fixed "
                  + "  ".join(f"{name} {value:.4f}" for name, value in ref["fixed_mauc"].items()), flush=True)
        return
    rows = []
    for seed in args.seeds:
        row = run_seed(seed, args, device)
        rows.append(row)
        print(f"seed {seed}: searched {row['searched_mauc']:.4f}  random median {row['random_median']:.4f} "
              f"best {row['random_best']:.4f}  best fixed {row['best_fixed']} {row['best_fixed_mauc']:.4f}  "
              f"kendall tau {row['kendall_tau_mean']:.3f} (pooled {row['kendall_tau_pooled']:.3f}; "
              f"short training {row['short_training_tau_mean']:.3f})  "
              f"search {row['search_seconds']:.0f} s", flush=True)
        choice = row["derived_network"]
        if choice:
            scores = ", ".join(f"{n['candidate']} {n['mauc']:.4f}" for n in choice["networks"])
            gain = (f"; best searched {100 * choice['gain_over_anchor']:+.2f} ± "
                    f"{100 * choice['gain_standard_error']:.2f} points over the best anchor"
                    if "gain_over_anchor" in choice else "")
            print(f"seed {seed}: derive=networks kept {choice['chosen']} ({scores}{gain})", flush=True)
    print("\n| seed | searched | random median | random best | best fixed | kendall tau (mean / pooled) | search s |")
    print("|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['seed']} | {r['searched_mauc']:.4f} | {r['random_median']:.4f} | {r['random_best']:.4f} | "
              f"{r['best_fixed']} {r['best_fixed_mauc']:.4f} | {r['kendall_tau_mean']:.3f} / "
              f"{r['kendall_tau_pooled']:.3f} | {r['search_seconds']:.0f} |")
    margins = [100 * (r["searched_mauc"] - r["random_median"]) for r in rows]
    above = sum(m > 0 for m in margins)
    fixed_ok = sum(r["searched_mauc"] >= r["best_fixed_mauc"] for r in rows)
    print(f"\nabove the random median on {above}/{len(rows)} seeds; at or above the best fixed head on "
          f"{fixed_ok}/{len(rows)} seeds")
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))
    if args.retrain_seeds > 1:
        noise = np.mean([np.std(np.asarray(r["random_mauc_by_seed"]), axis=0, ddof=1).mean() for r in rows])
        print(f"retraining noise: one network's test mAUC varies by {100 * noise:.2f} points (std over "
              f"{args.retrain_seeds} training seeds); each figure above is the mean of {args.retrain_seeds}")
    two_seed = [r["two_seed_reference_tau_mean"] for r in rows if np.isfinite(r["two_seed_reference_tau_mean"])]
    if two_seed:
        print(f"kendall tau against the mean of two stand-alone trainings ({len(two_seed)} seeds where "
              f"--ceiling ran): {np.mean(two_seed):.3f}")
    print(f"kendall tau of short stand-alone training: {finite_mean(r['short_training_tau_mean'] for r in rows):.3f}")
    print(f"kendall tau: {finite_mean(r['kendall_tau_mean'] for r in rows):.3f}")
    print(f"searched minus random median: {np.mean(margins):+.2f}")


if __name__ == "__main__":
    main()
