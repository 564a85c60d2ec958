"""Sending grading work out: the bundle, requests and answers, grading processes, the
local pool and the Dask cluster."""
