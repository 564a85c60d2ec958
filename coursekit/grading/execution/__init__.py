"""Grading one notebook: the sandbox, kernels, limits, restored cells, flags and feedback."""
