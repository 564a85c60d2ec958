"""The Dask worker's side of grading: a worker plugin and the grading task.

``course grade --scheduler`` (:mod:`coursekit.grading.dispatch.cluster`) registers a
:class:`GradingPlugin` carrying the packed grading bundle. Dask hands it to every worker,
those connected now and those that join later (a worker restarted by its nanny, say). On
each worker, :meth:`GradingPlugin.setup` checks the bundle's SHA-256, unpacks it into the
worker's local folder, starts a :class:`coursekit.grading.dispatch.station.Station` there (grading
processes of the bundle's course package, exactly as ``course grade`` runs them locally) and
compares what the first process reports (Python, nbgrader, NumPy, course package, and
whether the sandbox runs) with the instructor's. Only a worker that matches gets the run's
Dask resource, and grading tasks (:func:`grade_task`) ask for it: a refused worker is never
given a submission, and says why (:func:`worker_status`).

Nothing here needs the course package on the worker: this module and
:mod:`coursekit.grading.dispatch.station` travel by value (cloudpickle), and import only the
standard library and ``distributed``.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from coursekit.grading.dispatch.station import (
    GradingProcessDied,
    Station,
    differences,
    remove_other_bundles,
    unpack,
)

PLUGIN = "coursekit-grading"
TOPIC = "coursekit-grading"  # events: a grading task started, on which worker


class GradingPlugin(WorkerPlugin):
    """Unpacks the grading bundle on a worker, checks the worker, runs its grading processes."""

    name = PLUGIN
    idempotent = False

    def __init__(self, data: bytes, digest: str, expected: dict[str, str],
                 options: list[str], job_timeout: float, resource: str) -> None:
        self.data = data
        self.digest = digest
        self.expected = expected
        self.options = options
        self.job_timeout = job_timeout
        self.resource = resource
        self.station: Station | None = None
        self.base: Path | None = None
        self.status: dict[str, Any] = {"state": "preparing", "reason": "", "versions": {}}

    async def setup(self, worker: Any) -> None:
        threads = int(worker.state.nthreads)
        self.status["threads"] = threads
        try:
            await asyncio.to_thread(self._prepare, Path(worker.local_directory), threads)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the worker is not used
            self.status.update(state="refused", reason=f"{type(exc).__name__}: {exc}")
        if self.status["state"] == "accepted":
            await worker.set_resources(**{self.resource: threads})

    def _prepare(self, local: Path, threads: int) -> None:
        self.base = local / "coursekit-grading"
        folder = unpack(self.data, self.digest, self.base)
        self.data = b""  # unpacked: no need to keep the archive in memory
        remove_other_bundles(self.base, folder)
        station = Station(folder, self.base / f"run-{self.digest[:16]}", self.options,
                          self.job_timeout)
        try:
            said = station.hello()
        except GradingProcessDied as died:
            station.close()
            self.status.update(state="refused",
                               reason=f"its grading process did not start ({died})")
            return
        self.status["versions"] = said.get("versions", {})
        diff = differences(said.get("versions", {}), self.expected)
        if diff or said.get("refused"):
            station.close()
            reason = (f"it differs from the instructor's machine: {'; '.join(diff)}" if diff
                      else str(said["refused"]))
            self.status.update(state="refused", reason=reason)
            return
        if threads > 1:
            station.start(threads - 1)  # one per thread; the first has said hello
        self.station = station
        self.status["state"] = "accepted"

    async def teardown(self, worker: Any) -> None:
        await asyncio.to_thread(self._remove)

    def _remove(self) -> None:
        if self.station is not None:
            self.station.close()
            self.station = None
        if self.base is not None:
            shutil.rmtree(self.base / f"run-{self.digest[:16]}", ignore_errors=True)
            shutil.rmtree(self.base / f"bundle-{self.digest[:16]}", ignore_errors=True)


def worker_status(dask_worker: Any) -> dict[str, Any]:
    """This worker's part in the run: ``state`` (preparing, accepted, refused), ``reason``,
    ``versions``, ``threads``."""
    plugin = dask_worker.plugins.get(PLUGIN)
    if plugin is None:
        return {"state": "preparing", "reason": "", "versions": {}}
    return dict(plugin.status)


def grade_task(request: dict[str, Any]) -> dict[str, Any]:
    """Grade one submission on this worker (a Dask task); the answer, with the worker's
    address. Says first, as an event, that it started here, so that the instructor's
    process can count how often a submission was started on workers that then died."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(TOPIC, {"key": worker.get_current_task(), "worker": worker.address})
    plugin = worker.plugins.get(PLUGIN)
    station = getattr(plugin, "station", None)
    if station is None:
        return {"failed": f"the Dask worker {worker.address} cannot grade: "
                          f"{getattr(plugin, 'status', {}).get('reason') or 'not set up'}",
                "retry": True, "worker": worker.address}
    answer = station.grade(request)
    answer["worker"] = worker.address
    return answer
