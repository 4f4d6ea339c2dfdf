"""Does a search's ARM space put correlated attributes of different domains close together?

Per seed: synthetic domains drawn from that seed, one GALM search over two domains at once
(`data.domain=syn1+syn2`, as the paper searches several domains to draw Fig. 5), and the AUC with
which the cosine similarity of its ARM representations separates the cross-domain pairs that the
generator built from a common latent factor ("planted"; "exact": the same factors and rule) from the
other cross-domain pairs. 0.5 = no separation. Run it with `data.synthetic.shared_cues=same`
(a shared factor looks alike in both domains) and `=rotate` (nothing visible links a pair: the control).

    python benchmarks/arm_pairs.py [--seeds 0 1 2 3 4 5] [--domains syn1+syn2] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from transfer import (
    planted_pair_auc,  # the sibling benchmark (this directory is on sys.path)
)

from galm.config.presets import DEMO_OVERRIDES
from galm.config.reader import read_config
from galm.config.typed import to_mapping
from galm.data.sources import config_domain
from galm.runs.atomic import read_json
from galm.runs.directory import RunDirectory
from galm.search.jobs import search_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--domains", default="syn1+syn2", help="domains searched together, joined with +")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        config = read_config(None, [*DEMO_OVERRIDES, f"seed={seed}", f"data.synthetic.seed={seed}",
                                    f"data.domain={args.domains}", *args.overrides])
        with tempfile.TemporaryDirectory() as tmp:
            run = RunDirectory.create(Path(tmp) / "joint", to_mapping(config))
            search_run(run, config, config_domain(config), torch.device("cpu"))
            arm = read_json(run.path / "arm.json")
        row = {"seed": seed, "planted": planted_pair_auc(arm, config), "exact": planted_pair_auc(arm, config, True)}
        rows.append(row)
        print(row, flush=True)
    print(f"\nARM space of a joint search over {args.domains} (shared_cues={config.data.synthetic.shared_cues}): "
          "AUC of cosine similarity, planted cross-domain pairs against the other cross-domain pairs")
    print("| seed | planted-pair AUC | exact-pair AUC |")
    print("|---:|---:|---:|")
    for row in rows:
        print(f"| {row['seed']} | {row['planted']:.3f} | {row['exact']:.3f} |")
    for key in ("planted", "exact"):
        values = [row[key] for row in rows]
        spread = statistics.stdev(values) if len(values) > 1 else float("nan")
        print(f"{key} pairs: mean AUC {statistics.mean(values):.3f} (sd {spread:.3f}), median "
              f"{statistics.median(values):.3f}, above 0.5 in {sum(v > 0.5 for v in values)} of {len(values)} seeds")


if __name__ == "__main__":
    main()
