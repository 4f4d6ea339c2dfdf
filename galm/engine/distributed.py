"""Data-parallel execution under torchrun: one job over N processes (gloo on CPUs, NCCL on GPUs).

Every process runs the same program on the same seeds, so everything that is not data (sampled
architectures, controller updates, batch order) is identical on every rank without being sent.
Only what depends on the images is split: each rank takes its contiguous shard of every global
minibatch, and this module adds back what one process would have computed on the whole batch:
gradient sums, BatchNorm moments over all shards, the scores of all shards. Rank 0 alone writes
files and prints. Outside torchrun (or with one process) every call here is a no-op, so a
single-process run computes exactly what it did before.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np
import torch
import torch.distributed as dist

# Rank 0 alone derives, scores search quality and writes while the others wait at a barrier:
# a collective may wait this long before the job fails (torchrun ends the job sooner when a rank dies).
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)


class RanksDiverged(RuntimeError):
    """Raised by a debug check when the ranks of one job no longer hold the same values."""


def torchrun_world_size() -> int:
    """The number of processes torchrun started for this job (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def restarted_by_torchrun() -> bool:
    """Whether torchrun restarted this job's processes after a failure (``--max-restarts``)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


@dataclass
class DataParallel:
    """This process's place in a data-parallel job and the collectives the search and training use."""

    rank: int = 0
    world_size: int = 1
    checks: bool = False  # debug mode: compare hashes of what must be equal on every rank
    _sharding: bool = field(default=False, repr=False)

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run directory and prints."""
        return self.rank == 0

    @property
    def is_parallel(self) -> bool:
        return self.world_size > 1

    # ------------------------------------------------------------------ sharding
    def shard(self, batch_size: int) -> slice:
        """This rank's contiguous positions of a global minibatch of `batch_size` items (the first
        `batch_size % world_size` ranks take one item more)."""
        if batch_size < self.world_size:
            raise ValueError(f"a minibatch of {batch_size} images cannot be split over {self.world_size} processes; "
                             "use a batch size of at least the number of processes")
        base, extra = divmod(batch_size, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    @contextlib.contextmanager
    def sharded_step(self) -> Iterator[None]:
        """While the block runs, BatchNorm layers given :meth:`moments` normalise with the moments
        of the whole global minibatch (all shards); outside it, with their own batch as usual."""
        previous, self._sharding = self._sharding, self.is_parallel
        try:
            yield
        finally:
            self._sharding = previous

    def moments(self, x: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, int] | None:
        """Mean and biased variance (float32; float64 for float64 `x`) of `x` over `dims` of the
        global minibatch, and the number of values per statistic; None outside a sharded step (the
        layer then uses its own batch).

        Two all-reduces, as a two-pass variance: the sums (and counts) for the mean, then the sums of
        squared deviations from it (E[x^2] - mean^2 would lose digits to cancellation). They carry
        gradients back to every shard, so a synchronised BatchNorm trains as one process on the
        whole batch."""
        if not self._sharding:
            return None
        values = x if x.dtype == torch.float64 else x.float()
        shape = [s for d, s in enumerate(x.shape) if d not in dims]
        count = torch.tensor([float(np.prod([x.shape[d] for d in dims]))], dtype=values.dtype, device=x.device)
        sums = _sum_over_ranks(torch.cat([values.sum(dims).flatten(), count]))
        n = float(sums[-1].detach())
        mean = (sums[:-1] / n).reshape(shape)
        centred = values - mean.reshape([s if d not in dims else 1 for d, s in enumerate(x.shape)])
        var = _sum_over_ranks((centred * centred).sum(dims).flatten()).reshape(shape) / n
        return mean, var, int(n)

    # ------------------------------------------------------------------ sums and gathers
    def sum_gradients(self, parameters: Iterable[torch.nn.Parameter], loss: torch.Tensor) -> float:
        """Sum the gradients that exist (the same set on every rank) and the rank losses over the
        ranks, in one all-reduce; returns the summed loss. Each rank's loss is its shard's part of
        the global minibatch's loss, so the sums are the gradient and loss of the whole minibatch."""
        if not self.is_parallel:
            return float(loss.detach())
        grads = [p.grad for p in parameters if p.grad is not None]
        flat = torch.cat([*(g.reshape(-1).float() for g in grads), loss.detach().reshape(1).float()])
        dist.all_reduce(flat)
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
            offset += grad.numel()
        return float(flat[-1])

    def gather_rows(self, shard: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Every rank's rows of a global minibatch of `batch_size` items, in order (shards padded to
        equal length for the all-gather)."""
        if not self.is_parallel:
            return shard
        longest = -(-batch_size // self.world_size)
        padded = shard.new_zeros((longest, *shard.shape[1:]))
        padded[: shard.shape[0]] = shard
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded.contiguous())
        sizes = [DataParallel(r, self.world_size).shard(batch_size) for r in range(self.world_size)]
        return torch.cat([part[: s.stop - s.start] for part, s in zip(parts, sizes)])

    def barrier(self) -> None:
        """Wait until every rank got here (rank 0 has written what the others read next)."""
        if self.is_parallel:
            dist.barrier()

    def broadcast_text(self, text: str) -> str:
        """Rank 0's `text` on every rank (a path rank 0 chose, e.g. with the time in it)."""
        if not self.is_parallel:
            return text
        device = _collective_device()
        data = torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8, device=device)
        length = torch.tensor([data.numel()], dtype=torch.long, device=device)
        dist.broadcast(length, 0)
        buffer = data if self.is_main else torch.empty(int(length), dtype=torch.uint8, device=device)
        dist.broadcast(buffer, 0)
        return bytes(buffer.cpu().tolist()).decode("utf-8")

    # ------------------------------------------------------------------ debug checks
    def check_same(self, what: str, tensors: Iterable[torch.Tensor]) -> None:
        """In debug mode, raise :class:`RanksDiverged` unless `tensors` are bit-equal on every rank
        (compared by an all-gather of a hash)."""
        if not (self.checks and self.is_parallel):
            return
        digest = hashlib.sha256()
        for tensor in tensors:
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        mine = torch.tensor([int.from_bytes(digest.digest()[:7], "little")], dtype=torch.long,
                            device=_collective_device())
        hashes = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(hashes, mine)
        values = [int(h) for h in hashes]
        if len(set(values)) > 1:
            differing = [rank for rank, value in enumerate(values) if value != values[0]]
            raise RanksDiverged(f"{what} differ between ranks: ranks {differing} do not match rank 0")


class _SumOverRanks(torch.autograd.Function):
    """The sum of a tensor over the ranks; its gradient is the sum of the ranks' gradients (every
    rank's loss depends on every shard through it)."""

    @staticmethod
    def forward(ctx: object, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        total = grad.contiguous().clone()
        dist.all_reduce(total)
        return total


def _sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of `tensor` over the ranks, differentiable when it needs a gradient."""
    if torch.is_grad_enabled() and tensor.requires_grad:
        return _SumOverRanks.apply(tensor)
    total = tensor.detach().clone()
    dist.all_reduce(total)
    return total


def _collective_device() -> torch.device:
    """Where small tensors for collectives live: the rank's GPU under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


_SINGLE = DataParallel()
_current = _SINGLE


def current() -> DataParallel:
    """This process's data-parallel job (a single process unless :func:`join` started one)."""
    return _current


def join(device: torch.device, checks: bool = False) -> tuple[DataParallel, torch.device]:
    """Join the torchrun job of this process (once; later calls return the same) and its device:
    ``cuda`` becomes ``cuda:LOCAL_RANK`` with NCCL, the CPU uses gloo. Outside torchrun, or with
    one process, nothing is started and `device` is returned unchanged."""
    global _current
    if torchrun_world_size() <= 1:
        return _current, device
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"device: torchrun started local rank {local_rank}, but this node has "
                             f"{torch.cuda.device_count()} CUDA device(s): one process per GPU "
                             "(--nproc_per_node at most the GPU count), or device=cpu")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        store, rank, world_size = next(dist.rendezvous("env://", timeout=COLLECTIVE_TIMEOUT))
        # A job torchrun restarted (--max-restarts) meets in the same store as the failed attempt:
        # its own key prefix keeps the new processes from reading the dead ones' addresses.
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(backend, store=dist.PrefixStore(f"galm/attempt{attempt}/", store), rank=rank,
                                world_size=world_size, timeout=COLLECTIVE_TIMEOUT,
                                device_id=device if device.type == "cuda" else None)
        _current = DataParallel(dist.get_rank(), dist.get_world_size(), checks)
    return _current, device


def leave() -> None:
    """End this process's part in its torchrun job after its command finished (no-op outside one)."""
    global _current
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _current = _SINGLE
