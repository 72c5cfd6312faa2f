"""Exact two-dimensional examples, computed in closed form or by plain NumPy/SciPy."""
