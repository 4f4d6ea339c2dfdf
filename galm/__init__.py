"""galm: searched neural architectures for many visual attributes at once (GALM, ACM MM 2018).

The public API is re-exported here and imported on first use, so ``import galm`` stays cheap and
torch-free until a network is asked for. Sub-packages by role (see docs/architecture.md):
``config`` (settings), ``space`` (Table 1), ``data`` (domains and readers), ``engine`` (device-side
input and execution), ``nn`` (models), ``training``, ``search``, ``runs`` (files on disk),
``baselines``, ``experiments``, ``report``, ``predict`` (applying a trained run), ``cli``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # settings
    "GalmConfig": "galm.config.schema",
    "SpaceConfig": "galm.config.schema",
    "SearchConfig": "galm.config.schema",
    "ControllerConfig": "galm.config.schema",
    "TrainConfig": "galm.config.schema",
    "read_config": "galm.config.reader",
    "ConfigError": "galm.config.typed",
    # the search space
    "Architecture": "galm.space",
    "SearchSpace": "galm.space",
    # data
    "AttributeDomain": "galm.data.domain",
    "open_domain": "galm.data.sources",
    "generate_domain": "galm.data.synthetic",
    "prepare_dataset": "galm.data.prepare",
    "open_prepared": "galm.data.prepare",
    # models
    "Supernet": "galm.nn.supernet",
    "FixedNetwork": "galm.nn.network",
    "Controller": "galm.nn.controller",
    # search and training
    "SearchState": "galm.search.state",
    "run_search": "galm.search.phases",
    "derive": "galm.search.derive",
    "search_run": "galm.search.jobs",
    "transfer_run": "galm.search.jobs",
    "train_and_evaluate": "galm.training.fixed",
    "AucReport": "galm.training.evaluate",
    # records
    "RunDirectory": "galm.runs.directory",
    "load_model": "galm.runs.model_file",
    # applying a trained run
    "Predictor": "galm.predict.predictor",
    "Predictions": "galm.predict.result",
    "export_run": "galm.predict.export",
    # experiments and reports
    "read_spec": "galm.experiments.spec",
    "run_experiment": "galm.experiments.grid",
    "write_report": "galm.report",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'galm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
