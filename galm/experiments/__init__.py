"""Experiment grids (methods × scenarios × seeds, Tables 2 and 3), the method runners, the executors
(serial, ``--jobs``, Ray) that run their cells, and the demo.

May import every library package except ``galm.cli``.
"""
