"""tinytorch: a small NumPy deep-learning framework, built module by module in the course.

The code under ``tinytorch/core/`` is generated from ``modules/``; see ``modules/AUTHORING.md``.
"""
