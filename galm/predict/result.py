"""What a prediction returns: per image and attribute a probability and a decision, the images that
could not be decoded, and tables of them (rows, pandas)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np


def probability_column(attribute: str) -> str:
    return f"{attribute}_probability"


def decision_column(attribute: str) -> str:
    return f"{attribute}_decision"


@dataclass
class Predictions:
    """``probabilities`` and ``decisions`` (N, m) of the N decoded images (``names``: their paths, or
    ``<image i>`` for in-memory ones), ``thresholds`` (m,) used, ``failures`` (name, reason) of the
    images left out."""

    names: list[str]
    attribute_names: list[str]
    logits: np.ndarray
    thresholds: np.ndarray
    failures: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.logits = np.asarray(self.logits, dtype=np.float32).reshape(len(self.names), len(self.attribute_names))
        self.thresholds = np.asarray(self.thresholds, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def probabilities(self) -> np.ndarray:
        """sigmoid(logits), float64, (N, m)."""
        return 1.0 / (1.0 + np.exp(-self.logits.astype(np.float64)))

    @property
    def decisions(self) -> np.ndarray:
        """probability >= the attribute's threshold, bool (N, m)."""
        return self.probabilities >= self.thresholds[None, :]

    def columns(self) -> list[str]:
        """``path``, then per attribute its probability and decision columns."""
        return ["path", *(c for a in self.attribute_names for c in (probability_column(a), decision_column(a)))]

    def rows(self) -> Iterator[dict[str, Any]]:
        """One flat dict per image, in :meth:`columns` order (decisions as 0/1)."""
        probabilities, decisions = self.probabilities, self.decisions
        for i, name in enumerate(self.names):
            row: dict[str, Any] = {"path": name}
            for a, attribute in enumerate(self.attribute_names):
                row[probability_column(attribute)] = float(probabilities[i, a])
                row[decision_column(attribute)] = int(decisions[i, a])
            yield row

    def to_pandas(self) -> Any:
        """A pandas DataFrame of :meth:`rows` (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as error:
            raise ImportError("Predictions.to_pandas needs pandas (pip install pandas)") from error
        return pd.DataFrame(list(self.rows()), columns=self.columns())
