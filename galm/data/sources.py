"""Opening the domain a configuration names: built-in synthetic domains or prepared caches.

Several domains joined with `+` (`data.domain=syn1+syn2`, or `data.source=DIR1+DIR2`) open as one
combined domain, the source of a multi-domain search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from galm.config.schema import GalmConfig, SyntheticConfig
from galm.data.collection import combine_domains
from galm.data.domain import AttributeDomain, class_split
from galm.data.synthetic import generate_domain


def synthetic_domain_names(config: SyntheticConfig) -> list[str]:
    """Names of the built-in synthetic domains under `config` (syn1, syn2, ...)."""
    return [f"syn{i + 1}" for i in range(config.n_domains)]


def _synthetic(name: str, synthetic: SyntheticConfig) -> AttributeDomain:
    names = synthetic_domain_names(synthetic)
    if name not in names:
        raise ValueError(f"data.domain: unknown synthetic domain {name!r}; choose among {names} (join with +)")
    return generate_domain(synthetic, names.index(name))


def _prepared(source: str) -> AttributeDomain:
    path = Path(source)
    if not path.is_dir():
        raise FileNotFoundError(f"data.source: {source!r} is neither 'synthetic' nor a prepared domain directory")
    return AttributeDomain.load(path)


def _prepared_parts(source: str) -> list[str]:
    parts = source.split("+")
    return parts if len(parts) > 1 and not Path(source).is_dir() else [source]


def open_domain(source: str, domain: str, synthetic: SyntheticConfig, resolution: int) -> AttributeDomain:
    """The domain named by `data.source` / `data.domain`, checked against the working resolution."""
    if source == "synthetic":
        parts = [_synthetic(name, synthetic) for name in domain.split("+")]
    else:
        parts = [_prepared(part) for part in _prepared_parts(source)]
    opened = parts[0] if len(parts) == 1 else combine_domains(parts)
    if opened.resolution != resolution:
        raise ValueError(
            f"domain {opened.name!r} holds {opened.resolution}-pixel images but space.resolution is "
            f"{resolution}; prepare the data at {resolution} pixels or set space.resolution={opened.resolution}"
        )
    return opened


def domain_overrides(domain: str) -> list[str]:
    """Config overrides that select `domain`: a prepared directory, else synthetic domain name(s)."""
    if Path(domain).is_dir():
        return [f"data.source={domain}"]
    return ["data.source=synthetic", f"data.domain={domain}"]


def config_domain(config: GalmConfig) -> AttributeDomain:
    """The domain a run's configuration names (open it once per command and pass it on), with the
    validation split `data.val_split` asks for."""
    domain = open_domain(config.data.source, config.data.domain, config.data.synthetic, config.space.resolution)
    if config.data.val_split == "classes":
        domain = class_disjoint_validation(domain, config.data.val_fraction, config.seed)
    return domain


def class_disjoint_validation(domain: AttributeDomain, fraction: float, seed: int) -> AttributeDomain:
    """`domain` with train+val re-split so that val holds `fraction` of the training classes whole.

    Needs a class-disjoint test split and at least two training classes; the test split is kept.
    """
    test = domain.split("test")
    test_classes = np.unique(domain.class_index[test])
    pool = np.concatenate([domain.split("train"), domain.split("val")])
    if not np.array_equal(np.sort(test), np.flatnonzero(np.isin(domain.class_index, test_classes))):
        raise ValueError(f"data.val_split=classes: the test split of domain {domain.name!r} is not class-disjoint "
                         "(its classes also have training images); use data.val_split=domain")
    if len(np.unique(domain.class_index[pool])) < 2:
        raise ValueError(f"data.val_split=classes: domain {domain.name!r} has fewer than two training classes")
    splits = class_split(domain.class_index, test_classes.tolist(), fraction, seed, val_by_class=True)
    return domain.with_splits({**domain.splits, "train": splits["train"], "val": splits["val"]})
