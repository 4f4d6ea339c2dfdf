"""Search-step throughput: the paper-faithful loop (one attribute per step) against the batched path
(every attribute from one trunk pass, batched heads), measured side by side in one process.

    python benchmarks/search_throughput.py [--attributes 251] [--resolution 64] [--batch 64] [--repeats 3]
                                           [--device cpu|cuda]

One attribute-update = one attribute's head trained on one minibatch (forward, backward, optimiser
step) plus its reward evaluation on a validation minibatch. Two paper-faithful loops are timed: on the
stacked supernet (its Adam step runs over every head tensor, mostly zero gradients) and with separate
per-attribute head modules and optimisers (only the sampled head and the trunk are stepped: the fair
reference, against which `speedup` is reported). All paths use the same head code, configuration and
data; repetitions alternate between the paths and the median is reported. Also
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
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from galm.config.schema import SpaceConfig
from galm.engine.precision import autocast, cpu_has_fast_bf16
from galm.nn.controller import Controller
from galm.nn.supernet import SharedHeads, Supernet
from galm.search.reinforce import ControllerTrainer, RewardBaseline
from galm.space.search_space import Architecture, SearchSpace
from galm.training.losses import masked_bce


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock times cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, size: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """Measured matrix-multiply rate of this device, FLOP/s (best of `repeats`)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


@dataclass
class Workload:
    """Fixed random batches, labels and one sampled architecture per attribute."""

    images: torch.Tensor
    val_images: torch.Tensor
    labels: torch.Tensor
    archs: list[Architecture]

    @classmethod
    def make(cls, space: SearchSpace, n: int, batch: int, device: torch.device) -> "Workload":
        r = space.config.resolution
        rng = random.Random(0)
        return cls(
            torch.randn(batch, 3, r, r, device=device), torch.randn(batch, 3, r, r, device=device),
            torch.randint(0, 2, (batch, n), device=device).float(), [space.sample(rng) for _ in range(n)],
        )


def train_and_reward(supernet: Supernet, optimizer: torch.optim.Optimizer, work: Workload, ids: list[int],
                     precision: str = "float32") -> None:
    """One phase-1 update of the given heads plus their reward forward pass (the unit being timed)."""
    device = work.images.device
    archs = [work.archs[a] for a in ids]
    supernet.train()
    with autocast(precision, device):
        logits = supernet(work.images, ids, archs)
    loss = masked_bce(logits.float(), work.labels[:, ids])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    supernet.eval()
    with torch.no_grad(), autocast(precision, device):
        supernet(work.val_images, ids, archs)


class SeparateHeadsLoop:
    """The paper-faithful loop as a per-attribute implementation would run it: one head module and one
    optimiser per attribute, so a step touches only the trunk and the sampled attribute's head."""

    def __init__(self, supernet: Supernet, space: SpaceConfig, n: int, device: torch.device) -> None:
        self.trunk = supernet.trunk
        self.heads = [SharedHeads(1, space).to(device) for _ in range(n)]
        self.trunk_optimizer = torch.optim.Adam(self.trunk.parameters(), lr=1e-3)
        self.head_optimizers = [torch.optim.Adam(h.parameters(), lr=1e-3) for h in self.heads]
        self.zero = torch.zeros(1, dtype=torch.long, device=device)

    def update(self, work: Workload, attribute: int) -> None:
        head, arch = self.heads[attribute], [work.archs[attribute]]
        self.trunk.train(), head.train()
        logits = head(self.trunk(work.images), self.zero, arch)
        loss = masked_bce(logits, work.labels[:, attribute:attribute + 1])
        self.trunk_optimizer.zero_grad(set_to_none=True)
        self.head_optimizers[attribute].zero_grad(set_to_none=True)
        loss.backward()
        self.trunk_optimizer.step()
        self.head_optimizers[attribute].step()
        self.trunk.eval(), head.eval()
        with torch.no_grad():
            head(self.trunk(work.val_images), self.zero, arch)


def rate(updates: int, run: Callable[[], None], device: torch.device) -> float:
    """Attribute-updates per second of `run`."""
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return updates / (time.perf_counter() - start)


LOOP_STACKED = "paper-faithful loop, stacked heads (dense Adam)"
LOOP_SEPARATE = "paper-faithful loop, separate heads (sparse steps)"
BATCHED = "batched heads"
BATCHED_BF16 = "batched heads, bf16 autocast"


class PathBench:
    """The paths being compared, on one supernet and one workload, timed alternately."""

    def __init__(self, space: SearchSpace, n: int, batch: int, device: torch.device, loop_steps: int) -> None:
        torch.manual_seed(0)
        self.device, self.n, self.loop_steps = device, n, loop_steps
        self.supernet = Supernet(n, space.config).to(device)
        self.optimizer = torch.optim.Adam(self.supernet.parameters(), lr=1e-3)
        self.separate = SeparateHeadsLoop(self.supernet, space.config, n, device)
        self.work = Workload.make(space, n, batch, device)
        self.rng = random.Random(0)
        self.everyone = list(range(n))

    def _stacked_loop(self) -> None:
        for _ in range(self.loop_steps):
            train_and_reward(self.supernet, self.optimizer, self.work, [self.rng.randrange(self.n)])

    def _separate_loop(self) -> None:
        for _ in range(self.loop_steps):
            self.separate.update(self.work, self.rng.randrange(self.n))

    def _batched(self, precision: str = "float32") -> None:
        train_and_reward(self.supernet, self.optimizer, self.work, self.everyone, precision)

    def alternate(self, repeats: int, bf16: bool) -> dict[str, list[float]]:
        """Attribute-updates/s of every path per repetition, after one warm-up round."""
        paths: dict[str, tuple[int, Callable[[], None]]] = {
            LOOP_STACKED: (self.loop_steps, self._stacked_loop),
            LOOP_SEPARATE: (self.loop_steps, self._separate_loop),
            BATCHED: (self.n, self._batched),
        }
        if bf16:
            paths[BATCHED_BF16] = (self.n, lambda: self._batched("bf16"))
        for updates, run in paths.values():
            rate(updates, run, self.device)
        rates: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(repeats):
            for name, (updates, run) in paths.items():
                rates[name].append(rate(updates, run, self.device))
        return rates


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def print_profile(run: Callable[[], None], device: torch.device, rows: int) -> None:
    """torch.profiler's table of the costliest operators of one call of `run` (self time)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        run()
        synchronize(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attributes", type=int, default=251)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-steps", type=int, default=20, help="paper-loop updates timed per repetition")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--profile", type=int, default=0, metavar="ROWS",
                        help="also profile one batched step with torch.profiler and print its ROWS costliest ops")
    parser.add_argument("--bf16", choices=("auto", "yes", "no"), default="auto",
                        help="also time the batched path under bf16 autocast (auto: GPUs and CPUs with native bf16)")
    args = parser.parse_args()
    device = torch.device(args.device)
    space = SearchSpace(SpaceConfig(resolution=args.resolution))
    n = args.attributes
    bench = PathBench(space, n, args.batch, device, args.loop_steps)
    bf16 = args.bf16 == "yes" or (args.bf16 == "auto" and (device.type == "cuda" or cpu_has_fast_bf16()))
    rates = bench.alternate(args.repeats, bf16)
    supernet, optimizer, work, everyone = bench.supernet, bench.optimizer, bench.work, bench.everyone
    median = {name: statistics.median(values) for name, values in rates.items()}

    controller = Controller(n, space.decision_sizes).to(device)
    trainer = ControllerTrainer(controller, 1e-4, RewardBaseline(0.95, True, n))
    ids = torch.arange(n, device=device)
    controller_times = []
    for _ in range(args.repeats + 1):
        synchronize(device)
        start = time.perf_counter()
        sample = controller.sample(ids)
        trainer.step(ids, sample, torch.rand(n, device=device))
        synchronize(device)
        controller_times.append(time.perf_counter() - start)

    with FlopCounterMode(display=False) as counter:
        train_and_reward(supernet, optimizer, work, everyone)
    flops = counter.get_total_flops()
    step_seconds = n / median[BATCHED]
    machine_rate = matmul_rate(device)
    fair_loop = median[LOOP_SEPARATE]

    print(f"device {device}, attributes {n}, resolution {args.resolution}, batch {args.batch}, "
          f"threads {torch.get_num_threads()}")
    print("| path | attribute-updates/s (median) | all repetitions |")
    print("|---|---:|---|")
    for name, values in rates.items():
        print(f"| {name} | {median[name]:.1f} | {', '.join(f'{r:.1f}' for r in values)} |")
    print(f"controller phase step ({n} attributes, one batched call): "
          f"{statistics.median(controller_times[1:]) * 1000:.1f} ms")
    print(f"batched step: {flops / 1e9:.1f} GFLOP in {step_seconds:.3f} s = {flops / step_seconds / 1e9:.1f} GFLOP/s; "
          f"float32 matmul rate {machine_rate / 1e9:.1f} GFLOP/s; fraction {flops / step_seconds / machine_rate:.2f}")
    print(f"peak memory: {peak_memory_gib(device):.2f} GiB")
    stacked = median[LOOP_STACKED]
    print(f"speedup against the stacked-heads loop: {median[BATCHED] / stacked:.2f}")
    if BATCHED_BF16 in median:
        print(f"speedup (bf16): {median[BATCHED_BF16] / fair_loop:.2f}")
    else:
        print("speedup (bf16): n/a (this CPU has no native bf16 units; emulated bf16 is slower than float32)")
    if args.profile:
        print_profile(lambda: train_and_reward(supernet, optimizer, work, everyone), device, args.profile)
    print(f"speedup: {median[BATCHED] / fair_loop:.2f}")


if __name__ == "__main__":
    main()
