"""Attribute domains: the in-memory/cached form every reader fills, and built-in synthetic domains."""

from galm.config.schema import SyntheticConfig
from galm.data.domain import AttributeDomain, choose_test_classes, class_split
from galm.data.synthetic import generate_domain, generate_domains, shared_factor_pairs

__all__ = [
    "AttributeDomain",
    "SyntheticConfig",
    "choose_test_classes",
    "class_split",
    "generate_domain",
    "generate_domains",
    "shared_factor_pairs",
]
