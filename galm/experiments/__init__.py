"""Experiment grids (methods × scenarios × seeds, Tables 2 and 3), the method runners, and the demo.

May import every library package except ``galm.cli``.
"""
