"""Models only: the shared trunk, the weight-sharing supernet, the fixed network, the controller.

May import: ``galm.space``, ``galm.config``. Never data, runs, search or training code.
"""
