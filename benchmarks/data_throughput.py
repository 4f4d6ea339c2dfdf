"""Data throughput: how fast images are prepared into the cache, and whether reading minibatches from
the cache could slow down a search step.

    python benchmarks/data_throughput.py [--images 400] [--size 256] [--resolution 64] [--cache-images 20000]

1. Preparation: ``--images`` generated JPEGs of ``--size`` pixels (photo-like: smooth gradients plus
   noise) are prepared with 1 and 2 worker processes; prints images/second.
2. Training reads: random minibatches of 64 sorted indices are read from a memory-mapped cache of
   ``--cache-images`` images and converted with ``galm.engine.batches.images_to_tensor``; prints images/second.
3. For comparison, the time of one supernet training step (64 images, 40 attributes with sampled
   heads, forward + backward + Adam) at the same resolution on this CPU.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import galm.data.prepare.build as prepare_build
from galm.data.domain import AttributeDomain, class_split
from galm.data.prepare import open_prepared, prepare_domain
from galm.data.raw import RawDomain
from galm.engine.batches import images_to_tensor

BATCH = 64


def write_jpegs(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` photo-like JPEGs (colour gradients plus noise) of size×(3/4·size) pixels."""
    rng = np.random.default_rng(seed)
    height = size * 3 // 4
    ys, xs = np.mgrid[0:height, 0:size].astype(np.float32)
    paths = []
    for i in range(n):
        base = rng.uniform(0, 255, 3)
        slope = rng.uniform(-0.5, 0.5, (2, 3))
        pixels = base + xs[..., None] * slope[0] + ys[..., None] * slope[1] + rng.normal(0, 12, (height, size, 3))
        path = folder / f"img{i:05d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def raw_domain(paths: list[Path], n_attributes: int = 40, n_classes: int = 20) -> RawDomain:
    """Random labels and classes over the generated images."""
    rng = np.random.default_rng(1)
    class_index = np.arange(len(paths), dtype=np.int64) % n_classes
    return RawDomain(
        name="bench", image_paths=paths,
        labels=(rng.random((len(paths), n_attributes)) < 0.5).astype(np.float32),
        attribute_names=[f"a{i}" for i in range(n_attributes)], class_index=class_index,
        class_names=[f"c{i}" for i in range(n_classes)],
        splits=class_split(class_index, list(range(n_classes - max(1, n_classes // 5), n_classes)), 0.2, seed=0),
    )


def prepare_seconds(folder: Path, raw: RawDomain, resolution: int, workers: int, tag: str = "") -> float:
    """Seconds of one full prepare (including process start-up for workers > 1)."""
    out = folder / f"cache-w{workers}{tag}"
    start = time.perf_counter()
    prepare_domain(raw, out, resolution=resolution, workers=workers, overwrite=True)
    return time.perf_counter() - start


def read_speed(domain: AttributeDomain, seconds: float = 2.0, seed: int = 0) -> tuple[float, float]:
    """(images/second, milliseconds per batch) reading random sorted minibatches into tensors."""
    rng = np.random.default_rng(seed)
    n_batches, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        idx = np.sort(rng.choice(domain.n_images, size=BATCH, replace=False))
        images_to_tensor(domain.images[idx])
        n_batches += 1
    elapsed = time.perf_counter() - start
    return n_batches * BATCH / elapsed, 1000 * elapsed / n_batches


def big_cache(folder: Path, n: int, resolution: int) -> AttributeDomain:
    """A memory-mapped cache of ``n`` random images (bigger than the CPU caches) to read from."""
    rng = np.random.default_rng(2)
    class_index = np.arange(n, dtype=np.int64) % 10
    images = np.lib.format.open_memmap(folder / "big.npy", mode="w+", dtype=np.uint8,
                                       shape=(n, resolution, resolution, 3))
    for begin in range(0, n, 1024):
        block = images[begin:begin + 1024]
        block[...] = rng.integers(0, 256, block.shape, dtype=np.uint8)
    images.flush()
    domain = AttributeDomain(
        name="big", images=images, labels=np.zeros((n, 1), np.float32), attribute_names=["a"],
        class_index=class_index, class_names=[f"c{i}" for i in range(10)],
        splits=class_split(class_index, [9], 0.1, seed=0),
    )
    domain.save(folder / "big")
    del images, domain
    return AttributeDomain.load(folder / "big")


def supernet_step_seconds(resolution: int, n_attributes: int = 40, steps: int = 3) -> float | None:
    """Seconds of one supernet training step on 64 images (None when the supernet is unavailable)."""
    try:
        from galm.config.schema import SpaceConfig
        from galm.nn.supernet import Supernet
        from galm.space.search_space import SearchSpace
    except ImportError:
        return None
    space_config = SpaceConfig(resolution=resolution)
    space = SearchSpace(space_config)
    net = Supernet(n_attributes, space_config)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = random.Random(0)
    images = torch.randn(BATCH, 3, resolution, resolution)
    targets = (torch.rand(BATCH, n_attributes) < 0.5).float()
    times = []
    for step in range(steps + 1):
        archs = [space.sample(rng) for _ in range(n_attributes)]
        start = time.perf_counter()
        logits = net(images, list(range(n_attributes)), archs)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - start)
    return float(np.median(times))



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--cache-images", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    prepare_build.MIN_IMAGES_PER_WORKER = 0  # measure the worker pool even on a small set
    with tempfile.TemporaryDirectory(prefix="galm-bench-") as tmp:
        folder = Path(tmp)
        (folder / "src").mkdir()
        paths = write_jpegs(folder / "src", args.images, args.size)
        raw = raw_domain(paths)
        print(f"preparing {args.images} JPEGs of {args.size}x{args.size * 3 // 4} to {args.resolution}x{args.resolution}:")
        for workers in (1, 2):
            seconds = prepare_seconds(folder, raw, args.resolution, workers)
            line = f"  {workers} worker(s): {args.images / seconds:8.0f} images/s"
            if workers > 1:
                # Spawned workers re-import the main module (here: torch); a 2-image prepare measures that.
                startup = prepare_seconds(folder, raw_domain(paths[:2], n_classes=2), args.resolution, workers, "-s")
                line += (f" (includes {startup:.1f}s process start-up; "
                         f"{args.images / max(seconds - startup, 1e-9):.0f} images/s after it)")
            print(line)

        small = open_prepared(folder / "cache-w1")
        rate, ms = read_speed(small)
        print(f"training reads, {BATCH}-image minibatches -> tensors:")
        print(f"  {small.n_images:6d}-image cache: {rate:10.0f} images/s ({ms:.2f} ms per batch)")
        big = big_cache(folder, args.cache_images, args.resolution)
        rate, ms = read_speed(big)
        print(f"  {big.n_images:6d}-image cache: {rate:10.0f} images/s ({ms:.2f} ms per batch)")
        del small, big

    step = supernet_step_seconds(args.resolution)
    if step is None:
        print("supernet step: unavailable")
    else:
        print(f"supernet step (64 images, 40 attributes, forward+backward+Adam): {step * 1000:.0f} ms")
        print(f"  cache read share of a step: {ms / (step * 1000):.1%}")


if __name__ == "__main__":
    main()
