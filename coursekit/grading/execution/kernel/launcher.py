"""Start an IPython kernel under the grader's limits.

Run as ``python -m coursekit.grading.execution.kernel.launcher``.

:class:`coursekit.grading.execution.limits.LimitedKernelManager` replaces
``-m ipykernel_launcher`` in the kernel command by this module and puts
``--coursekit-limits=<json>`` first. Before the kernel starts, this sets, in the kernel process
only:

* ``RLIMIT_AS`` (``memory_mb``): an allocation beyond it raises ``MemoryError`` in the cell;
* ``RLIMIT_CORE`` 0: a crashing kernel writes no core file;
* ``RLIMIT_FSIZE`` (``file_mb``): no file bigger than that;
* the output cap (``output_bytes``):
  :class:`coursekit.grading.execution.kernel.guard.CappedOutStream` drops stdout/stderr beyond
  it per cell, before it is sent to the grader;
* the guard extension (``guard``): library functions restored before every cell.
"""

from __future__ import annotations

import json
import os
import resource
import sys

PREFIX = "--coursekit-limits="


def _limit(kind: int, value: int) -> None:
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, hard if hard != resource.RLIM_INFINITY else value))


def apply_limits(opts: dict) -> None:
    """Set the resource limits of this process from the options dict."""
    mb = 1024 * 1024
    if opts.get("memory_mb"):
        _limit(resource.RLIMIT_AS, int(opts["memory_mb"]) * mb)
    if opts.get("file_mb"):
        _limit(resource.RLIMIT_FSIZE, int(opts["file_mb"]) * mb)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> None:
    """Parse the limits, apply them, then run ipykernel with the remaining arguments."""
    opts: dict = {}
    rest = []
    for arg in argv:
        if arg.startswith(PREFIX):
            opts = json.loads(arg[len(PREFIX):])
        else:
            rest.append(arg)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if opts.get("output_bytes"):
        os.environ["COURSEKIT_OUTPUT_BYTES"] = str(int(opts["output_bytes"]))
    if opts.get("report"):
        os.environ["COURSEKIT_GUARD_REPORT"] = str(opts["report"])
    apply_limits(opts)

    import logging

    from ipykernel.kernelapp import IPKernelApp
    from traitlets.config import Config

    # The grader talks to its kernels on loopback, every message signed with the key in the
    # connection file; ipykernel's warning about unencrypted TCP would be printed once per
    # graded notebook on the instructor's console.
    logging.getLogger(IPKernelApp.__name__).addFilter(
        lambda record: "without encryption" not in record.getMessage())

    cfg = Config()
    # ipykernel reads JPY_PARENT_PID when it is imported; a kernel forked from a process that
    # imported it earlier (coursekit.grading.execution.kernel.forkserver) must be told again
    cfg.IPKernelApp.parent_handle = int(os.environ.get("JPY_PARENT_PID") or 0)
    cfg.IPKernelApp.outstream_class = "coursekit.grading.execution.kernel.guard.CappedOutStream"
    if opts.get("guard", True):
        cfg.InteractiveShellApp.extensions = ["coursekit.grading.execution.kernel.guard"]
    sys.argv = [sys.argv[0], *rest]
    IPKernelApp.launch_instance(config=cfg)


if __name__ == "__main__":
    main(sys.argv[1:])
