"""Reference implementations exported from the course modules (generated files).

The code under ``tinytorch/core/`` is generated from ``modules/`` by ``course build``; see
``modules/AUTHORING.md``.
"""
