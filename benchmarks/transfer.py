"""Transfer between synthetic domains against a search from scratch on the target (issue: generalisation).

Per seed: synthetic domains drawn from that seed (`data.synthetic.seed`, so seeds are independent
data, not only independent searches); a GALM search on the source domain; a search from scratch on
the target; a transfer of the source search to the target per initialisation (`transfer.init`:
embedding warm-up, source-head agreement, trunk-feature probes, random), all under the same step
budget. Prints, per run, the target test mAUC of the retrained networks; the controller steps and
search seconds it needs to reach the reward the scratch run ends with; how well its final ARM space
separates the planted cross-domain pairs (attributes built from a common latent factor; "exact": the
same factors and rule) from the other cross-domain pairs, as an AUC; and how often the nearest source
it chose is a planted partner (against the rate of a uniformly random choice). `--joint` also scores
the ARM space of one search over source and target together. The generator's ground truth is used
here only to score the runs.

    python benchmarks/transfer.py [--seeds 0 1 2] [--inits warmup heads probe random] [--source syn1]
                                  [--target syn2] [--joint] [--set data.synthetic.shared_cues=same ...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from galm.config.presets import DEMO_OVERRIDES
from galm.config.reader import read_config
from galm.config.typed import to_mapping
from galm.data.sources import config_domain
from galm.data.synthetic import generate_domains, shared_factor_pairs
from galm.runs.atomic import read_json
from galm.runs.directory import RunDirectory
from galm.search.jobs import retrain_run, search_run, transfer_run
from galm.search.transfer import final_reward, seconds_to_reach, steps_to_reach


def planted_pairs(config, exact: bool = False) -> set[tuple[str, str]]:
    """Cross-domain attribute pairs built from a common latent factor (``exact``: the same factors
    and rule), both orders."""
    domains = generate_domains(config.data.synthetic)
    planted = {(p["attribute_a"], p["attribute_b"]) for p in shared_factor_pairs(domains) if p["exact"] or not exact}
    return planted | {(b, a) for a, b in planted}


def nearest_hit_rate(record: dict, config) -> tuple[float, float]:
    """Fraction of new attributes whose chosen source is a planted partner, and that of a random choice."""
    planted = planted_pairs(config)
    sources = record["source_attributes"]
    hits = [(new, v["nearest_source"]) in planted for new, v in record["nearest"].items()]
    chance = [np.mean([(new, s) in planted for s in sources]) for new in record["nearest"]]
    return float(np.mean(hits)), float(np.mean(chance))


def planted_pair_auc(arm: dict, config, exact: bool = False) -> float:
    """AUC of ARM cosine similarity separating planted cross-domain pairs from the other ones."""
    names = arm["attribute_names"]
    index = {name: i for i, name in enumerate(names)}
    similarity = np.asarray(arm["cosine_similarity"])
    planted = planted_pairs(config, exact)
    scores, labels = [], []
    for a in names:
        for b in names:
            if a < b and a.split("_")[0] != b.split("_")[0]:
                scores.append(similarity[index[a], index[b]])
                labels.append((a, b) in planted)
    if not any(labels) or all(labels):
        return float("nan")
    return float(roc_auc_score(labels, scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--source", default="syn1")
    parser.add_argument("--target", default="syn2")
    parser.add_argument("--inits", nargs="+", default=["warmup", "heads", "random"],
                        choices=["warmup", "heads", "probe", "random"])
    parser.add_argument("--joint", action="store_true",
                        help="also search source and target together and score that search's ARM space")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    device = torch.device("cpu")
    rows = []
    for seed in args.seeds:
        base = [*DEMO_OVERRIDES, f"seed={seed}", f"data.synthetic.seed={seed}", *args.overrides]
        source_config = read_config(None, [*base, f"data.domain={args.source}"])
        target_config = read_config(None, [*base, f"data.domain={args.target}"])
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            source = RunDirectory.create(root / "source", to_mapping(source_config))
            search_run(source, source_config, config_domain(source_config), device)
            scratch = RunDirectory.create(root / "scratch", to_mapping(target_config))
            start = time.perf_counter()
            search_run(scratch, target_config, config_domain(target_config), device)
            scratch_seconds = time.perf_counter() - start
            scratch_trace = read_json(scratch.path / "search_trace.json")
            goal = final_reward(scratch_trace["reward_trace"])
            result = {"seed": seed, "goal": goal, "scratch_steps": steps_to_reach(scratch_trace["reward_trace"], goal),
                      "scratch_reach_seconds": seconds_to_reach(scratch_trace, goal),
                      "budget": len(scratch_trace["reward_trace"]), "scratch_seconds": scratch_seconds,
                      "scratch_mauc": retrain_run(scratch, config_domain(scratch.config()), device).mauc}
            if args.joint:
                joint_config = read_config(None, [*base, f"data.domain={args.source}+{args.target}"])
                joint = RunDirectory.create(root / "joint", to_mapping(joint_config))
                search_run(joint, joint_config, config_domain(joint_config), device)
                arm = read_json(joint.path / "arm.json")
                result["joint_pair_auc"] = planted_pair_auc(arm, joint_config)
                result["joint_exact_auc"] = planted_pair_auc(arm, joint_config, exact=True)
            for init in args.inits:
                config = read_config(None, [*base, f"data.domain={args.target}", f"transfer.init={init}"])
                run = RunDirectory.create(root / f"transfer-{init}", to_mapping(config))
                start = time.perf_counter()
                transfer_run(run, source, config, config_domain(config), device)
                result[f"{init}_seconds"] = time.perf_counter() - start
                trace = read_json(run.path / "search_trace.json")
                result[f"{init}_steps"] = steps_to_reach(trace["reward_trace"], goal)
                result[f"{init}_reach_seconds"] = seconds_to_reach(trace, goal)
                result[f"{init}_mauc"] = retrain_run(run, config_domain(run.config()), device).mauc
                arm = read_json(run.path / "arm.json")
                result[f"{init}_pair_auc"] = planted_pair_auc(arm, config)
                result[f"{init}_exact_auc"] = planted_pair_auc(arm, config, exact=True)
                if init != "random":
                    hit, chance = nearest_hit_rate(read_json(run.path / "transfer.json"), config)
                    result[f"{init}_hit"], result[f"{init}_chance"] = hit, chance
        rows.append(result)
        print(result, flush=True)

    def fmt(value: object) -> str:
        if value is None:
            return "never"
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    def seconds(value: float | None) -> str:
        return "never" if value is None else f"{value:.0f}"

    print(f"\nTransfer {args.source} -> {args.target}: target test mAUC and controller steps to reach the "
          "scratch run's final reward (moving average of 10 updates)")
    print("| seed | run | mAUC | steps | budget | s to reach | search s | planted-pair AUC (final ARM) | exact-pair AUC "
          "| nearest is planted | random choice |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['seed']} | scratch | {fmt(r['scratch_mauc'])} | {fmt(r['scratch_steps'])} | {r['budget']} | "
              f"{seconds(r['scratch_reach_seconds'])} | {r['scratch_seconds']:.0f} | | | | |")
        if args.joint:
            print(f"| {r['seed']} | joint search | | | | | | {fmt(r['joint_pair_auc'])} | {fmt(r['joint_exact_auc'])} "
                  "| | |")
        for init in args.inits:
            print(f"| {r['seed']} | transfer {init} | {fmt(r[f'{init}_mauc'])} | {fmt(r[f'{init}_steps'])} | "
                  f"{r['budget']} | {seconds(r[f'{init}_reach_seconds'])} | {r[f'{init}_seconds']:.0f} | "
                  f"{fmt(r[f'{init}_pair_auc'])} | "
                  f"{fmt(r[f'{init}_exact_auc'])} | {fmt(r.get(f'{init}_hit', ''))} | "
                  f"{fmt(r.get(f'{init}_chance', ''))} |")
    for init in args.inits:
        reached = [r[f"{init}_steps"] / r["scratch_steps"] for r in rows if r[f"{init}_steps"] and r["scratch_steps"]]
        if reached:
            print(f"median ratio transfer ({init}) steps / scratch steps: {statistics.median(reached):.2f} "
                  f"({len(reached)} of {len(rows)} seeds reached the goal)")
        print(f"median planted-pair AUC ({init}): {statistics.median(r[f'{init}_pair_auc'] for r in rows):.2f}, "
              f"exact pairs {statistics.median(r[f'{init}_exact_auc'] for r in rows):.2f}")
    if args.joint:
        print(f"median planted-pair AUC (joint search): {statistics.median(r['joint_pair_auc'] for r in rows):.2f}, "
              f"exact pairs {statistics.median(r['joint_exact_auc'] for r in rows):.2f}")


if __name__ == "__main__":
    main()
