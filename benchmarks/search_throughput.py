"""Search-step throughput: the paper-faithful loop (one attribute per step) against the batched path
(every attribute from one trunk pass, batched heads), measured side by side in one process.

    python benchmarks/search_throughput.py [--attributes 251] [--resolution 64] [--batch 64] [--repeats 3]

One attribute-update = one attribute's head trained on one minibatch (forward, backward, optimiser
step) plus its reward evaluation on a validation minibatch. Both paths use the same supernet code,
configuration and data; repetitions alternate between the paths and the median is reported. Also
timed: a controller phase step (sampling + REINFORCE update for all attributes, one batched call),
the floating-point operations of a batched step (torch's FLOP counter) against this machine's float32
matrix-multiply rate, and the process's peak resident memory. The last line is `speedup: <ratio>`.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from galm.controller import Controller
from galm.losses import masked_bce
from galm.precision import autocast, cpu_has_fast_bf16
from galm.reinforce import ControllerTrainer, RewardBaseline
from galm.space import SearchSpace, SpaceConfig
from galm.supernet import Supernet


def matmul_rate(size: int = 2048, repeats: int = 5) -> float:
    """Measured float32 matrix-multiply rate of this machine, FLOP/s (best of `repeats`)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def train_and_reward(supernet: Supernet, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                     labels: torch.Tensor, val_images: torch.Tensor, ids: list[int], archs: list,
                     precision: str = "float32") -> None:
    """One phase-1 update of the given heads plus their reward forward pass (the unit being timed)."""
    cpu = torch.device("cpu")
    supernet.train()
    with autocast(precision, cpu):
        logits = supernet(images, ids, archs)
    loss = masked_bce(logits.float(), labels[:, ids])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    supernet.eval()
    with torch.no_grad(), autocast(precision, cpu):
        supernet(val_images, ids, archs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attributes", type=int, default=251)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-steps", type=int, default=20, help="paper-loop updates timed per repetition")
    parser.add_argument("--bf16", choices=("auto", "yes", "no"), default="auto",
                        help="also time the batched path under bf16 autocast (auto: only on CPUs with native bf16)")
    args = parser.parse_args()
    torch.manual_seed(0)
    space = SearchSpace(SpaceConfig(resolution=args.resolution))
    n = args.attributes
    supernet = Supernet(n, space.config)
    optimizer = torch.optim.Adam(supernet.parameters(), lr=1e-3)
    images = torch.randn(args.batch, 3, args.resolution, args.resolution)
    val_images = torch.randn(args.batch, 3, args.resolution, args.resolution)
    labels = torch.randint(0, 2, (args.batch, n)).float()
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(n)]

    def paper_loop() -> float:
        start = time.perf_counter()
        for step in range(args.loop_steps):
            a = rng.randrange(n)
            train_and_reward(supernet, optimizer, images, labels, val_images, [a], [archs[a]])
        return args.loop_steps / (time.perf_counter() - start)

    def batched(precision: str = "float32") -> float:
        start = time.perf_counter()
        train_and_reward(supernet, optimizer, images, labels, val_images, list(range(n)), archs, precision)
        return n / (time.perf_counter() - start)

    paper_loop(), batched()  # warm-up
    use_bf16 = args.bf16 == "yes" or (args.bf16 == "auto" and cpu_has_fast_bf16())
    if use_bf16:
        batched("bf16")  # warm-up
    loop_rates, batched_rates, bf16_rates = [], [], []
    for _ in range(args.repeats):
        loop_rates.append(paper_loop())
        batched_rates.append(batched())
        if use_bf16:
            bf16_rates.append(batched("bf16"))

    controller = Controller(n, space.decision_sizes)
    trainer = ControllerTrainer(controller, 1e-4, RewardBaseline(0.95, True, n))
    ids = torch.arange(n)
    controller_times = []
    for _ in range(args.repeats + 1):
        start = time.perf_counter()
        sample = controller.sample(ids)
        trainer.step(ids, sample, torch.rand(n))
        controller_times.append(time.perf_counter() - start)

    with FlopCounterMode(display=False) as counter:
        train_and_reward(supernet, optimizer, images, labels, val_images, list(range(n)), archs)
    flops = counter.get_total_flops()
    step_seconds = n / statistics.median(batched_rates)
    rate = matmul_rate()
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    loop, fast = statistics.median(loop_rates), statistics.median(batched_rates)
    print(f"attributes {n}, resolution {args.resolution}, batch {args.batch}, threads {torch.get_num_threads()}")
    print("| path | attribute-updates/s (median) | all repetitions |")
    print("|---|---:|---|")
    print(f"| paper-faithful loop | {loop:.1f} | {', '.join(f'{r:.1f}' for r in loop_rates)} |")
    print(f"| batched heads | {fast:.1f} | {', '.join(f'{r:.1f}' for r in batched_rates)} |")
    print(f"controller phase step ({n} attributes, one batched call): "
          f"{statistics.median(controller_times[1:]) * 1000:.1f} ms")
    print(f"batched step: {flops / 1e9:.1f} GFLOP in {step_seconds:.2f} s = {flops / step_seconds / 1e9:.1f} GFLOP/s; "
          f"float32 matmul rate {rate / 1e9:.1f} GFLOP/s; fraction {flops / step_seconds / rate:.2f}")
    print(f"peak resident memory: {peak_gib:.2f} GiB")
    if bf16_rates:
        print(f"| batched heads, bf16 autocast | {statistics.median(bf16_rates):.1f} | "
              f"{', '.join(f'{r:.1f}' for r in bf16_rates)} |")
        print(f"speedup (bf16): {statistics.median(bf16_rates) / loop:.2f}")
    else:
        print("speedup (bf16): n/a (this CPU has no native bf16 units; emulated bf16 is slower than float32)")
    print(f"speedup: {fast / loop:.2f}")


if __name__ == "__main__":
    main()
