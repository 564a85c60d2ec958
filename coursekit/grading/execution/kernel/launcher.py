"""Start an IPython kernel under the grader's limits, with the seal.

Run as ``python -m coursekit.grading.execution.kernel.launcher`` (or called by the fork server,
:mod:`coursekit.grading.execution.kernel.forkserver`, in a forked process).

:class:`coursekit.grading.execution.limits.LimitedKernelManager` replaces
``-m ipykernel_launcher`` in the kernel command by this module and puts
``--coursekit-limits=<json>`` first. Before the kernel starts, this sets, in the kernel
process only:

* ``RLIMIT_AS`` (``memory_mb``): an allocation beyond it raises ``MemoryError`` in the cell;
* ``RLIMIT_CORE`` 0: a crashing kernel writes no core file;
* ``RLIMIT_FSIZE`` (``file_mb``): no file bigger than that;
* ``RLIMIT_NPROC`` (``processes``): where the system counts them (not for root);
* ``RLIMIT_NOFILE`` (``files``): open files per process;
* the output cap (``output_bytes``): :class:`coursekit.grading.execution.kernel.outstream.
  CappedOutStream` drops stdout/stderr beyond it per cell, before it is sent to the grader.

Then ipykernel sets itself up (its sockets are bound, the shell made), and before the first
cell: a kernel isolated in the sandbox makes its run folder read-only and drops every
privilege (:mod:`coursekit.grading.execution.kernel.isolate`), and the seal is installed
(:mod:`coursekit.grading.execution.kernel.seal`) with what the grader handed over: by the fork
server in memory, or (a kernel started the usual way) in a file named by
``--coursekit-seal=PATH``, read and deleted here. The seal writes on the process's original
standard output, which the grading worker reads.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from typing import Any

PREFIX = "--coursekit-limits="
SEAL_PREFIX = "--coursekit-seal="


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
    if opts.get("processes"):
        _limit(resource.RLIMIT_NPROC, int(opts["processes"]))
    if opts.get("files"):
        _limit(resource.RLIMIT_NOFILE, int(opts["files"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _seal_from_file(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            payload = json.load(fh)
    except (OSError, ValueError):
        return None
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    return payload


def main(argv: list[str], seal_payload: dict[str, Any] | None = None,
         lockdown: dict[str, Any] | None = None) -> None:
    """Parse the limits, apply them, start ipykernel with the remaining arguments; seal it
    (``seal_payload``) and, for an isolated kernel, lock it down (``lockdown``) before the
    first cell."""
    opts: dict = {}
    rest = []
    for arg in argv:
        if arg.startswith(PREFIX):
            opts = json.loads(arg[len(PREFIX):])
        elif arg.startswith(SEAL_PREFIX):
            seal_payload = _seal_from_file(arg[len(SEAL_PREFIX):])
        else:
            rest.append(arg)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if opts.get("output_bytes"):
        os.environ["COURSEKIT_OUTPUT_BYTES"] = str(int(opts["output_bytes"]))
    apply_limits(opts)

    from coursekit.grading.execution.kernel import seal

    if seal_payload is not None:
        # the process's own standard output, before ipykernel puts a pipe of its own there
        seal.prepare(seal_payload, os.dup(1))
    seal_payload = None

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
    cfg.IPKernelApp.outstream_class = "coursekit.grading.execution.kernel.outstream.CappedOutStream"
    sys.argv = [sys.argv[0], *rest]
    app = IPKernelApp.instance(config=cfg)
    app.initialize(rest)
    if lockdown:
        from coursekit.grading.execution.kernel import isolate

        isolate.lock_down(**lockdown)
    seal.install(app.shell)
    app.start()


if __name__ == "__main__":
    main(sys.argv[1:])
