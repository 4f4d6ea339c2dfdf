"""Report figures as PNG bytes (matplotlib, Agg backend): Fig. 5 heatmaps, search curves, policy
probabilities, per-attribute AUC bars."""

from __future__ import annotations

import io
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["domain_heatmaps_png", "per_attribute_png", "probabilities_png", "search_curves_png"]


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _heatmap(ax: Any, matrix: np.ndarray, labels: Sequence[str], title: str) -> None:
    masked = np.ma.masked_invalid(matrix)
    finite = matrix[np.isfinite(matrix)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    image = ax.imshow(masked, cmap="viridis", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("source domain")
    ax.set_ylabel("target domain")
    ax.set_title(title)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            text = "" if not np.isfinite(matrix[i, j]) else f"{matrix[i, j]:.2f}"
            ax.text(j, i, text or "–", ha="center", va="center", color="white" if text else "grey", fontsize=8)
    plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04)


def domain_heatmaps_png(matrix: np.ndarray, labels: Sequence[str]) -> bytes:
    """Fig. 5: (a) mean cosine similarity between domains, same domain masked; (b) all pairs."""
    n = len(labels)
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.2 * n * 2, 1.5 + 1.1 * n))
    without = matrix.copy()
    np.fill_diagonal(without, np.nan)
    _heatmap(axes[0], without, labels, "(a) same domain ignored")
    _heatmap(axes[1], matrix, labels, "(b) with the same domain")
    fig.tight_layout()
    return _png(fig)


def search_curves_png(records: Sequence[dict[str, Any]], trace: Sequence[float], title: str) -> bytes:
    """Reward, baseline and entropy per episode (controller records) and reward per update (trace)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    steps = [r["step"] for r in records]
    for key in ("reward", "baseline"):
        values = [r.get(key, np.nan) for r in records]
        axes[0].plot(steps, values, marker="o", markersize=3, label=key)
    axes[0].set_xlabel("episode")
    axes[0].set_title("reward and baseline (episode means)")
    axes[0].legend()
    axes[1].plot(steps, [r.get("entropy", np.nan) for r in records], marker="o", markersize=3, color="tab:green")
    axes[1].set_xlabel("episode")
    axes[1].set_title("policy entropy (episode mean)")
    if len(trace):
        trace = np.asarray(trace, dtype=float)
        axes[2].plot(np.arange(1, len(trace) + 1), trace, alpha=0.35, label="per update")
        window = max(1, min(25, len(trace) // 5))
        if window > 1:
            smooth = np.convolve(trace, np.ones(window) / window, mode="valid")
            axes[2].plot(np.arange(window, len(trace) + 1), smooth, label=f"moving mean ({window})")
        axes[2].legend()
    axes[2].set_xlabel("controller update")
    axes[2].set_title("reward per update (search_trace.json)")
    fig.suptitle(title)
    fig.tight_layout()
    return _png(fig)


def probabilities_png(records: Sequence[dict[str, Any]], title: str) -> bytes:
    """One panel per decision: the policy's probability of each choice per episode (keys ``p.D=C``)."""
    decisions: dict[str, list[str]] = {}
    for record in records:
        for key in record:
            if key.startswith("p.") and "=" in key:
                decision, choice = key[2:].split("=", 1)
                if choice not in decisions.setdefault(decision, []):
                    decisions[decision].append(choice)
    n = max(len(decisions), 1)
    cols = min(5, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False)
    steps = [r["step"] for r in records]
    for ax, (decision, choices) in zip(axes.flat, decisions.items()):
        for choice in choices:
            ax.plot(steps, [r.get(f"p.{decision}={choice}", np.nan) for r in records], marker="o", markersize=2,
                    label=choice)
        ax.set_title(decision, fontsize=9)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(decisions):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return _png(fig)


def per_attribute_png(names: Sequence[str], series: dict[str, Sequence[float]], title: str) -> bytes:
    """Grouped bars of per-attribute AUC, one group per attribute, one bar per series."""
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(names) * max(len(series), 1) + 2), 3.6))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(names))
    for k, (label, values) in enumerate(series.items()):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("AUC (test classes)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return _png(fig)
