"""The search (Algorithm 1): its state and checkpoint, the two phase steps, derivation, REINFORCE,
rewards, transfer to new attributes and the attribute-similarity measures, and the jobs that run
them into a run directory.

May import: ``galm.nn``, ``galm.engine``, ``galm.training``, ``galm.runs``, ``galm.data``,
``galm.space``, ``galm.config``.
"""
