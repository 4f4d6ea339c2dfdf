"""The records on disk: run directories and the name of every file in them, atomic and durable
writes, provenance, metrics logs, architecture records, saved models, experiment directories.

``atomic``, ``directory``, ``metrics``, ``provenance`` and ``architectures`` import no torch code
(the report reads runs through them); ``model_file`` builds networks and may import ``galm.nn``.
"""
