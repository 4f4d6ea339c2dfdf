"""GPU check: agreement of the batched and paper-faithful heads on the device, their throughput at the
paper's scale, a short search with the `paper` preset, and the projected wall time of a full search.

    python benchmarks/gpu_check.py [--device cuda] [--loop-steps 30] [--compile]
    python benchmarks/gpu_check.py --device cpu --smoke      # tiny sizes: checks the script itself

Run through `benchmarks/gpu_check.sh`, which bounds it to 5 minutes. Steps:
1. agreement: the batched heads and the per-attribute reference give the same logits and gradients on
   the same weights (float32, TF32 off), and bf16 autocast stays within its documented tolerance;
2. throughput at 224x224 with 251 attributes, batch 64 (as `search_throughput.py`): paper-faithful loops
   against the batched path, float32 and bf16;
3. a short search with the `paper` preset (few steps, small data) on the device: per-step times of
   phase 1, phase 2 and a retraining step of the derived network;
4. the projection: the `paper` preset's step counts times the measured step times.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch

# The sibling benchmark and, when galm is not installed, the checkout it belongs to.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from search_throughput import (  # noqa: E402  (the sibling benchmark's measuring code)
    BATCHED,
    BATCHED_BF16,
    LOOP_SEPARATE,
    LOOP_STACKED,
    PathBench,
    matmul_rate,
    peak_memory_gib,
    synchronize,
)

from galm.config.presets import PAPER_OVERRIDES  # noqa: E402
from galm.config.reader import read_config  # noqa: E402
from galm.config.schema import SpaceConfig
from galm.data.sources import config_domain
from galm.engine.placement import place_module  # noqa: E402
from galm.engine.precision import autocast  # noqa: E402
from galm.nn.network import FixedNetwork  # noqa: E402
from galm.nn.supernet import Supernet  # noqa: E402
from galm.search.derive import derive
from galm.search.jobs import build_search
from galm.search.phases import controller_step, shared_step
from galm.space.search_space import SearchSpace
from galm.training.losses import masked_bce  # noqa: E402

# Images behind the `paper` preset's budget: AwA2 + aPascal/aYahoo + SUN, of which train and val (retraining).
PAPER_RETRAIN_IMAGES = 53_600
AGREEMENT_TOLERANCE = 1e-4  # relative (norm) difference, float32 with TF32 off
BF16_TOLERANCE = 0.05  # absolute logit difference, as tests/test_precision.py


def agreement(device: torch.device, resolution: int) -> list[tuple[str, float, float]]:
    """(check, measured difference, tolerance) for batched vs per-attribute heads and bf16 vs float32."""
    space = SearchSpace(SpaceConfig(resolution=resolution))
    torch.manual_seed(0)
    n = 24
    rng = random.Random(1)
    archs = [space.sample(rng) for _ in range(n)]
    images = torch.randn(8, 3, resolution, resolution, device=device)
    outputs = []
    for mode in ("batched", "per_attribute"):
        torch.manual_seed(0)
        net = Supernet(n, space.config, head_mode=mode).to(device)
        logits = net(images, list(range(n)), archs)
        logits.square().sum().backward()
        grads = torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
        outputs.append((logits.detach(), grads))
    (batched, g_batched), (reference, g_reference) = outputs
    with torch.no_grad(), autocast("bf16", device):
        low = net.eval()(images, list(range(n)), archs).float()
    with torch.no_grad():
        full = net(images, list(range(n)), archs)

    def relative(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / b.norm().clamp_min(1e-12))

    return [
        ("logits, batched vs per-attribute", relative(batched, reference), AGREEMENT_TOLERANCE),
        ("gradients, batched vs per-attribute", relative(g_batched, g_reference), AGREEMENT_TOLERANCE),
        ("logits, bf16 vs float32 (max abs)", float((low - full).abs().max()), BF16_TOLERANCE),
    ]


# gpu_check's short labels for search_throughput's paths.
PATH_LABELS = {
    LOOP_STACKED: "paper loop, stacked heads", LOOP_SEPARATE: "paper loop, separate heads",
    BATCHED: "batched, float32", BATCHED_BF16: "batched, bf16",
}


def throughput(device: torch.device, n: int, resolution: int, batch: int, loop_steps: int, repeats: int
               ) -> dict[str, float]:
    """Median attribute-updates/s of the paper-faithful loops and the batched path (float32 and bf16)."""
    bench = PathBench(SearchSpace(SpaceConfig(resolution=resolution)), n, batch, device, loop_steps)
    rates = bench.alternate(repeats, bf16=True)
    return {PATH_LABELS[name]: statistics.median(values) for name, values in rates.items()}


def timed(run, steps: int, device: torch.device) -> float:
    """Median seconds of one call of `run` over `steps` calls (after one warm-up call)."""
    run()
    times = []
    for _ in range(steps):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def short_search(device: torch.device, overrides: list[str], steps: int) -> tuple[dict[str, float], object]:
    """Per-step seconds of phase 1, phase 2 and a retraining step under the `paper` preset."""
    config = read_config(None, [*PAPER_OVERRIDES, *overrides])
    domain = config_domain(config)
    search = build_search(config, domain, device)
    seconds = {
        "phase-1 step (all attributes)": timed(lambda: shared_step(search), steps, device),
        "phase-2 controller update": timed(lambda: controller_step(search), steps, device),
    }
    heads = derive(search, "argmax")
    net = place_module(FixedNetwork([h.architecture for h in heads], config.space), config.execution, device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch = search.train_order.next()

    def retrain_step() -> None:
        with autocast(search.precision, device):
            logits = net(search.batch_images(batch, augment=True))
        loss = masked_bce(logits.float(), search.batch_labels(batch, torch.arange(domain.n_attributes)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds["retraining step (derived network)"] = timed(retrain_step, steps, device)
    return seconds, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--loop-steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="timed steps of each phase in the short search")
    parser.add_argument("--compile", action="store_true", help="torch.compile the trunk in the short search")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script on a CPU")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device is visible to PyTorch (torch.cuda.is_available() is False)")
    n, resolution, batch = (8, 32, 8) if args.smoke else (251, 224, 64)
    data = ["data.synthetic.classes_per_domain=12", "data.synthetic.images_per_class=16",
            f"search.batch_size={batch}", "execution.input_cache=device", f"execution.compile={str(args.compile).lower()}"]
    if args.smoke:
        data += ["space.resolution=32", "data.synthetic.resolution=32", "data.synthetic.attributes_per_domain=8",
                 "data.synthetic.images_per_class=6"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; attributes {n}, resolution {resolution}, batch {batch}")

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    checks = agreement(device, 32 if args.smoke else 64)
    print("\n| agreement check | difference | tolerance | result |\n|---|---:|---:|---|")
    for check, diff, tol in checks:
        print(f"| {check} | {diff:.2e} | {tol:.0e} | {'ok' if diff <= tol else 'FAIL'} |")
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True

    rates = throughput(device, n, resolution, batch, 4 if args.smoke else args.loop_steps,
                       1 if args.smoke else args.repeats)
    fair = rates["paper loop, separate heads"]
    print("\n| path | attribute-updates/s | vs separate-heads loop |\n|---|---:|---:|")
    for path, value in rates.items():
        print(f"| {path} | {value:.1f} | {value / fair:.1f}x |")
    size = 256 if args.smoke else 8192
    print(f"matmul rate ({size}²): float32 (TF32 allowed) {matmul_rate(device, size) / 1e12:.1f} TFLOP/s; "
          f"bf16 {matmul_rate(device, size, dtype=torch.bfloat16) / 1e12:.1f} TFLOP/s")

    seconds, config = short_search(device, data, 2 if args.smoke else args.steps)
    print("\n| short search, `paper` preset | seconds per step |\n|---|---:|")
    for step, value in seconds.items():
        print(f"| {step} | {value:.4f} |")
    s = config.search
    search_seconds = s.episodes * (s.shared_steps * seconds["phase-1 step (all attributes)"]
                                   + s.controller_steps * seconds["phase-2 controller update"])
    retrain_seconds = config.train.epochs * PAPER_RETRAIN_IMAGES / config.train.batch_size \
        * seconds["retraining step (derived network)"]
    print(f"\npeak memory: {peak_memory_gib(device):.2f} GiB")
    print(f"projection for the `paper` preset ({s.episodes} episodes x ({s.shared_steps} phase-1 steps + "
          f"{s.controller_steps} controller updates), then {config.train.epochs} retraining epochs of "
          f"{PAPER_RETRAIN_IMAGES} images): search {search_seconds / 3600:.2f} h + retraining "
          f"{retrain_seconds / 3600:.2f} h")
    print(f"projected wall time: {(search_seconds + retrain_seconds) / 3600:.2f} h on {name}")
    print(f"speedup (batched bf16 vs separate-heads loop): {rates['batched, bf16'] / fair:.1f}")
    print(f"speedup: {rates['batched, float32'] / fair:.1f}")


if __name__ == "__main__":
    main()
