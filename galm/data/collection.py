"""Several attribute domains opened together (for transfer between domains)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from galm.data.domain import AttributeDomain

__all__ = ["DomainCollection", "combine_domains", "open_collection"]


class DomainCollection:
    """Domains with unique names and one common image resolution, looked up by name."""

    def __init__(self, domains: Sequence[AttributeDomain]) -> None:
        self.domains: list[AttributeDomain] = list(domains)
        if not self.domains:
            raise ValueError("a domain collection needs at least one domain")
        names = [d.name for d in self.domains]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"domain names must be unique within a collection; duplicated: {duplicated}")
        resolutions = {d.name: d.resolution for d in self.domains}
        if len(set(resolutions.values())) > 1:
            raise ValueError(f"domains of a collection must share one resolution; got {resolutions}")
        self._by_name = {d.name: d for d in self.domains}

    @property
    def names(self) -> list[str]:
        """Domain names in order."""
        return [d.name for d in self.domains]

    @property
    def resolution(self) -> int:
        """The common image side in pixels."""
        return self.domains[0].resolution

    def __getitem__(self, name: str) -> AttributeDomain:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no domain {name!r} in the collection; domains: {self.names}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[AttributeDomain]:
        return iter(self.domains)

    def __len__(self) -> int:
        return len(self.domains)

    def attribute_names(self) -> list[tuple[str, str]]:
        """Every (domain name, attribute name) pair, domain by domain."""
        return [(d.name, a) for d in self.domains for a in d.attribute_names]


def open_collection(paths: Sequence[str | os.PathLike[str]]) -> DomainCollection:
    """Open prepared domain caches together (memory-mapped), checking names and resolutions."""
    from galm.data.prepare import open_prepared

    opened = [open_prepared(Path(p)) for p in paths]
    seen: dict[str, Path] = {}
    for path, domain in zip(paths, opened):
        if domain.name in seen:
            raise ValueError(
                f"{path} and {seen[domain.name]} both hold a domain named {domain.name!r}; "
                "domain names must be unique within a collection"
            )
        seen[domain.name] = Path(path)
    return DomainCollection(opened)


def combine_domains(domains: Sequence[AttributeDomain]) -> AttributeDomain:
    """One domain holding several: the search over a multi-domain source (the paper's S1,2-D3 rows).

    Images and splits are stacked; each domain's attributes are unknown (NaN) on the other domains'
    images, so a minibatch trains every attribute on its own domain's images only. Classes are
    renamed `<domain>/<class>`. Images are read into memory (fine for the small working resolution).
    """
    collection = DomainCollection(domains)
    names = [a for d in collection.domains for a in d.attribute_names]
    clashes = sorted({a for a in names if names.count(a) > 1})
    if clashes:
        raise ValueError(f"attribute names must differ between combined domains; shared: {clashes[:5]}")
    n_images = sum(d.n_images for d in collection.domains)
    labels = np.full((n_images, len(names)), np.nan, dtype=np.float32)
    class_index, class_names, splits = [], [], {}
    row = column = class_offset = 0
    for d in collection.domains:
        labels[row:row + d.n_images, column:column + d.n_attributes] = d.labels
        class_index.append(np.asarray(d.class_index, dtype=np.int64) + class_offset)
        class_names += [f"{d.name}/{c}" for c in d.class_names]
        for split, indices in d.splits.items():
            splits.setdefault(split, []).append(np.asarray(indices, dtype=np.int64) + row)
        row, column, class_offset = row + d.n_images, column + d.n_attributes, class_offset + d.n_classes
    return AttributeDomain(
        name="+".join(collection.names),
        images=np.concatenate([np.asarray(d.images) for d in collection.domains]),
        labels=labels,
        attribute_names=names,
        class_index=np.concatenate(class_index),
        class_names=class_names,
        splits={split: np.concatenate(parts) for split, parts in splits.items()},
        label_level="class" if all(d.label_level == "class" for d in collection.domains) else "image",
        metadata={
            "combined_from": collection.names,
            "domain_of_attribute": {a: d.name for d in collection.domains for a in d.attribute_names},
        },
    )
