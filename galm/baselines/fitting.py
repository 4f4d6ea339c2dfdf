"""Fitting the gradient-trained feature baselines (UMF, AFS): Adam over seeded shuffled minibatches."""

from __future__ import annotations

from typing import Callable, Iterable

import torch


def fit_by_minibatches(
    parameters: Iterable[torch.nn.Parameter],
    n: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device | str,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
) -> list[float]:
    """Minimise ``batch_loss(rows)`` with Adam over ``epochs`` seeded shuffles of ``n`` rows; the
    mean loss per epoch. The shuffles come from their own generator: the caller's RNG is untouched."""
    generator = torch.Generator().manual_seed(int(seed))
    optimiser = torch.optim.Adam(parameters, lr=lr)
    history = []
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(device)
        total = 0.0
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            loss = batch_loss(batch)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * batch.numel()
        history.append(total / n)
    return history


def known_label_bce(logits: torch.Tensor, labels: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy averaged over the known labels of a batch (``known``: 1 where known)."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, weight=known, reduction="sum")
    return bce / known.sum().clamp(min=1.0)
