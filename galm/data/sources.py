"""Opening the domain a configuration names: built-in synthetic domains or prepared caches.

Several domains joined with `+` (`data.domain=syn1+syn2`, or `data.source=DIR1+DIR2`) open as one
combined domain, the source of a multi-domain search.
"""

from __future__ import annotations

from pathlib import Path

from galm.config.schema import GalmConfig, SyntheticConfig
from galm.data.collection import combine_domains
from galm.data.domain import AttributeDomain
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
    """The domain a run's configuration names (open it once per command and pass it on)."""
    return open_domain(config.data.source, config.data.domain, config.data.synthetic, config.space.resolution)
