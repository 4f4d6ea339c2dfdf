"""galm: searched neural architectures for many visual attributes at once (GALM, ACM MM 2018)."""

__version__ = "0.1.0"
