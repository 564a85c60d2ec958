"""Limits on every graded notebook: nbgrader's ``Execute`` with a budget.

``grader_config.py`` puts :class:`LimitedExecute` in place of nbgrader's ``Execute`` in
``Autograde.autograde_preprocessors``. On top of the per-cell timeout
(``Execute.timeout``) it enforces:

* ``notebook_timeout``: a wall-clock limit for the whole notebook. Each cell's timeout is
  cut to what is left; once it is used up, later cells are not run (they get an error
  output, so their tests earn nothing; tests that passed before keep their points).
* a kernel that dies (``os._exit``, a segfault, out of memory) stops the run the same way
  instead of failing the whole submission, so earlier tests keep their points.
* ``max_output_bytes``: stream text and displayed data of a cell beyond it are dropped
  as they arrive (and, in the kernel, before they are sent: see ``kernel_guard``).
* ``memory_limit_mb``/``file_limit_mb``: ``RLIMIT_AS``/``RLIMIT_FSIZE`` of the kernel
  process, set by :mod:`coursekit.grading.execution.kernel.launcher`, which
  :class:`LimitedKernelManager` puts in the kernel command.

What happened is written to ``report_file`` (JSON) for ``course grade``.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from pathlib import Path
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer, Unicode

from coursekit.grading.execution import kernelserver
from coursekit.grading.execution.kernel.launcher import PREFIX

OUTPUT_NOTICE = "\n[output cut by the grader after {n} characters]\n"


class ForkingProvisioner(LocalProvisioner):
    """Launches the kernel through this process's fork server
    (:mod:`coursekit.grading.execution.kernelserver`) when there is one; signals go through the
    server too (no process group: a sandboxed kernel is process 1 of a PID namespace of its
    own)."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        server = kernelserver.current()
        process = (server.launch(cmd, kwargs.get("env"), kwargs.get("cwd"), self.parent)
                   if server else None)
        if process is None:
            return await super().launch_kernel(cmd, **kwargs)
        self.process = process
        self.pid = process.pid
        self.pgid = None
        self.cwd = kwargs.get("cwd", Path.cwd())
        return self.connection_info


class LimitedKernelManager(AsyncKernelManager):
    """Starts ipykernel through :mod:`coursekit.grading.execution.kernel.launcher` with the
    grader's limits (forked from the fork server, see
    :mod:`coursekit.grading.execution.kernel.forkserver`, where one runs)."""

    launcher_options: dict[str, Any] = {}

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        server = kernelserver.current()
        if server is not None and server.sandbox is not None:
            # Unix sockets in the one folder the sandbox shares: it has no network
            self.transport = "ipc"
            self.ip = str(server.sandbox.run_dir / "k")
        if self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = ForkingProvisioner(kernel_id=self.kernel_id,
                                                  kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if len(cmd) >= 3 and cmd[1:3] == ["-m", "ipykernel_launcher"]:
            opts = json.dumps(self.launcher_options)
            return [cmd[0], "-m", "coursekit.grading.execution.kernel.launcher", PREFIX + opts,
                    *cmd[3:]]
        self.log.warning("kernel command %s is not ipykernel_launcher: no memory limit", cmd)
        return cmd


def _cell_name(cell: NotebookNode, index: int) -> str:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return grade_id or cell.get("id") or f"#{index}"


class LimitedExecute(Execute):
    """nbgrader's ``Execute`` with a notebook time limit, kernel limits and an output cap."""

    notebook_timeout = Integer(
        600, help="Seconds for the whole notebook (0: no limit)").tag(config=True)
    memory_limit_mb = Integer(
        2048, help="RLIMIT_AS of the kernel process in MiB (0: no limit)").tag(config=True)
    file_limit_mb = Integer(
        100, help="RLIMIT_FSIZE of the kernel process in MiB (0: no limit)").tag(config=True)
    max_output_bytes = Integer(
        100_000, help="Characters of output kept per cell (0: no limit)").tag(config=True)
    guard = Bool(
        True, help="Restore replaced library functions before every cell").tag(config=True)
    report_file = Unicode(
        "", help="Where to write what the limits did (JSON); empty: nowhere").tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("kernel_manager_class", LimitedKernelManager)
        super().__init__(*args, **kwargs)

    # -- set-up ----------------------------------------------------------------------
    def create_kernel_manager(self) -> Any:
        km = super().create_kernel_manager()
        if isinstance(km, LimitedKernelManager):
            km.launcher_options = {
                "memory_mb": self.memory_limit_mb,
                "file_mb": self.file_limit_mb,
                "output_bytes": self.max_output_bytes,
                "guard": self.guard,
                "report": self._kernel_report,
            }
        return km

    @property
    def _kernel_report(self) -> str:
        return self.report_file + ".kernel" if self.report_file else ""

    def preprocess(self, nb: NotebookNode, resources: Any = None,
                   km: Any = None) -> tuple[NotebookNode, Any]:
        self._deadline = (time.monotonic() + self.notebook_timeout
                          if self.notebook_timeout else math.inf)
        self._stopped: str | None = None
        self._events: list[dict[str, Any]] = []
        self._out_used: dict[int, int] = {}
        self._current = ""
        if self._kernel_report:
            Path(self._kernel_report).unlink(missing_ok=True)
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if self.report_file:
                Path(self.report_file).write_text(json.dumps(self._events), encoding="utf-8")

    # -- per cell ----------------------------------------------------------------------
    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        timeout = super()._get_timeout(cell)
        left = self._deadline - time.monotonic()
        if math.isinf(left):
            return timeout
        left_s = max(1, math.ceil(left))
        return left_s if timeout is None else min(timeout, left_s)

    def _stop_cell(self, cell: NotebookNode) -> None:
        cell.outputs = [NotebookNode(
            output_type="error", ename="NotRunByGrader", evalue=self._stopped or "",
            traceback=[f"NotRunByGrader: {self._stopped}"])]

    def preprocess_cell(self, cell: NotebookNode, resources: Any,
                        index: int) -> tuple[NotebookNode, Any]:
        if cell.cell_type != "code" or not cell.source.strip():
            return super().preprocess_cell(cell, resources, index)
        name = _cell_name(cell, index)
        self._current = name
        if self._stopped is None and time.monotonic() >= self._deadline:
            self._stop("notebook_timeout", name,
                       f"the {self.notebook_timeout} s limit for the whole notebook was used up "
                       f"before cell {name}; it and later cells were not run")
        if self._stopped is not None:
            self._stop_cell(cell)
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stop("kernel_died", name,
                       f"the kernel died in cell {name} (the code crashed Python, called exit, "
                       "or ran out of memory); later cells were not run")
            self._stop_cell(cell)
            return cell, resources

    def _stop(self, kind: str, cell: str, reason: str) -> None:
        self._stopped = reason
        self._events.append({"kind": kind, "cell": cell, "reason": reason})

    def on_cell_executed(self, **kwargs: Any) -> None:
        super().on_cell_executed(**kwargs)
        reply = kwargs["execute_reply"]
        if reply["content"].get("ename") != self.error_on_timeout.get("ename"):
            return
        cell = self._current
        if time.monotonic() >= self._deadline - 1:
            self._stop("notebook_timeout", cell,
                       f"the {self.notebook_timeout} s limit for the whole notebook ran out in "
                       f"cell {cell}; later cells were not run")
        else:
            self._events.append({
                "kind": "cell_timeout", "cell": cell,
                "reason": f"cell {cell} was stopped after the {self.timeout} s cell time limit"})

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        cap = self.max_output_bytes
        if cap and msg["msg_type"] in ("stream", "display_data", "execute_result", "error"):
            content = msg["content"]
            used = self._out_used.get(cell_index, 0)
            if msg["msg_type"] == "stream":
                text = content.get("text", "")
                if used >= cap:
                    return None
                if used + len(text) > cap:
                    content["text"] = text[: cap - used] + OUTPUT_NOTICE.format(n=cap)
                    self._events.append({"kind": "output_cut", "cell": self._current,
                                         "reason": f"output of cell {self._current} cut at "
                                                   f"{cap} characters"})
                self._out_used[cell_index] = used + len(text)
            elif msg["msg_type"] == "error":
                tb = content.get("traceback") or []
                if sum(len(t) for t in tb) > cap:
                    content["traceback"] = [t[:cap] for t in tb[:20]]
                content["evalue"] = str(content.get("evalue", ""))[:cap]
            else:
                data = content.get("data") or {}
                for key, value in list(data.items()):
                    if isinstance(value, str) and len(value) > cap:
                        data[key] = value[:cap] + OUTPUT_NOTICE.format(n=cap)
        return super().output(outs, msg, display_id, cell_index)
