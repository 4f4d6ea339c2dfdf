"""Training and scoring of a fixed network: the training loop, the masked loss, ROC AUC / mAUC.

May import: ``galm.nn``, ``galm.engine``, ``galm.runs``, ``galm.data``, ``galm.space``, ``galm.config``.
"""
