"""Opening the domain a configuration names: a built-in synthetic domain or a prepared cache."""

from __future__ import annotations

from pathlib import Path

from galm.data.domain import AttributeDomain
from galm.data.synthetic import SyntheticConfig, generate_domain


def synthetic_domain_names(config: SyntheticConfig) -> list[str]:
    """Names of the built-in synthetic domains under `config` (syn1, syn2, ...)."""
    return [f"syn{i + 1}" for i in range(config.n_domains)]


def open_domain(source: str, domain: str, synthetic: SyntheticConfig, resolution: int) -> AttributeDomain:
    """The domain named by `data.source` / `data.domain`, checked against the working resolution."""
    if source == "synthetic":
        names = synthetic_domain_names(synthetic)
        if domain not in names:
            raise ValueError(f"data.domain: unknown synthetic domain {domain!r}; choose one of {names}")
        opened = generate_domain(synthetic, names.index(domain))
    else:
        path = Path(source)
        if not path.is_dir():
            raise FileNotFoundError(
                f"data.source: {source!r} is neither 'synthetic' nor a prepared domain directory"
            )
        opened = AttributeDomain.load(path)
    if opened.resolution != resolution:
        raise ValueError(
            f"domain {opened.name!r} holds {opened.resolution}-pixel images but space.resolution is "
            f"{resolution}; prepare the data at {resolution} pixels or set space.resolution={opened.resolution}"
        )
    return opened
