"""`model.pt`: a trained fixed network's weights with what rebuilds it (architectures, attribute
names, space). Loaded with `weights_only=True`: a model file from elsewhere cannot run code."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from galm.config.schema import SpaceConfig
from galm.nn.network import FixedNetwork
from galm.runs.atomic import atomic_torch_save
from galm.runs.torch_files import load_plain
from galm.space import Architecture


def save_model(path: Path, net: FixedNetwork, attribute_names: Sequence[str]) -> None:
    """Weights with what is needed to rebuild the network (architectures, names, space)."""
    atomic_torch_save(
        {
            "state_dict": net.state_dict(),
            "attribute_names": list(attribute_names),
            "architectures": [arch.to_json() for arch in net.architectures],
            "space": net.space.to_dict(),
        },
        path,
    )


def load_model(path: str | Path) -> tuple[FixedNetwork, list[str]]:
    """A fixed network saved by :func:`save_model` and its attribute names."""
    payload = load_plain(Path(path), "model file")
    try:
        space = SpaceConfig.from_dict(payload["space"])
        net = FixedNetwork([Architecture.from_json(a) for a in payload["architectures"]], space)
        net.load_state_dict(payload["state_dict"])
        return net, list(payload["attribute_names"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{path} is not a galm model file (or it is damaged): {error}") from error
