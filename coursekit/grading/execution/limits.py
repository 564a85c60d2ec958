"""Running a graded notebook: nbgrader's ``Execute`` with sealed tests and a budget.

``grader_config.py`` puts :class:`LimitedExecute` in place of nbgrader's ``Execute`` in
``Autograde.autograde_preprocessors``, and :class:`SaveVerdicts` in place of
``SaveAutoGrades``.

**Verdicts.** Every locked code cell of the module (given code and tests, taken from the
source notebook, hidden tests included) runs under the seal
(:mod:`coursekit.grading.execution.kernel.seal`, worker side
:mod:`coursekit.grading.execution.sealing`): the kernel is sent a short call in place of the
cell's code, and the cell's outcome comes back as one signed line. A test earns its points
only with a signed ``passed``; what the cell displays (an ``execute_result``, a message on
stderr) counts for nothing. A failed test's cell gets the failure as its first output (an
``error`` with the exception's name and message); a test without a valid outcome fails.

**Limits**, on top of the per-cell timeout (``Execute.timeout``):

* ``notebook_timeout``: a wall-clock limit for the whole notebook. Each cell's timeout is
  cut to what is left; once it is used up, later cells are not run (they get an error
  output, so their tests earn nothing; tests that passed before keep their points).
* a kernel that dies (``os._exit``, a segfault, out of memory) stops the run the same way
  instead of failing the whole submission, so earlier tests keep their points.
* the kernel and every process it starts, together: at most ``max_processes`` processes and
  ``memory_limit_mb`` MiB of resident memory, and ``cpu_limit_s`` seconds of CPU (checked
  while the notebook runs; beyond a limit the kernel and all it started are stopped). Each
  process also has ``RLIMIT_AS`` and ``RLIMIT_FSIZE`` (``memory_limit_mb``,
  ``file_limit_mb``), set by :mod:`coursekit.grading.execution.kernel.launcher`.
* output: ``max_output_bytes`` characters of text per cell (cut in the kernel too),
  ``max_display_bytes`` of other output (images, HTML) per cell, ``max_notebook_bytes`` of
  output for the whole notebook; beyond, outputs are dropped as they arrive.

What happened (limits, verdicts, flags) is written to ``report_file`` (JSON) for
``course grade``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, SaveAutoGrades
from nbgrader.utils import is_grade, is_solution
from traitlets import Float, Integer, Unicode

from coursekit.grading.execution import kernelserver, sealing
from coursekit.grading.execution.kernel.launcher import PREFIX, SEAL_PREFIX
from coursekit.grading.execution.kerneloutput import KernelOutput

OUTPUT_NOTICE = "\n[output cut by the grader after {n} characters]\n"
WATCH_EVERY = 0.25  # seconds between two looks at what a kernel uses


class ForkingProvisioner(LocalProvisioner):
    """Launches the kernel through this process's fork server
    (:mod:`coursekit.grading.execution.kernelserver`) when there is one; signals go through
    the server too (no process group: a sandboxed kernel is process 1 of a PID namespace of
    its own). Otherwise the usual way, with the seal's payload in a private file and the
    kernel's output in a pipe. :attr:`output` reads the kernel's output either way."""

    output: KernelOutput | None = None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        server = kernelserver.current()
        seal = getattr(self.parent, "seal_payload", None)
        process = (server.launch(cmd, kwargs.get("env"), kwargs.get("cwd"), self.parent, seal)
                   if server else None)
        if process is None:
            if seal is not None:
                fd, path = tempfile.mkstemp(prefix="coursekit-seal-", suffix=".json")
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(seal, fh)
                cmd = [*cmd, SEAL_PREFIX + path]
            kwargs["stdout"] = subprocess.PIPE
            kwargs["stderr"] = subprocess.STDOUT
            info = await super().launch_kernel(cmd, **kwargs)
            out = getattr(self.process, "stdout", None)
            if out is not None:
                self.output = KernelOutput(os.dup(out.fileno()))
                out.close()
            return info
        self.process = process
        self.output = process.output
        self.pid = process.pid
        self.pgid = None
        self.cwd = kwargs.get("cwd", Path.cwd())
        return self.connection_info


class LimitedKernelManager(AsyncKernelManager):
    """Starts ipykernel through :mod:`coursekit.grading.execution.kernel.launcher` with the
    grader's limits and seal (forked from the fork server, see
    :mod:`coursekit.grading.execution.kernel.forkserver`, where one runs)."""

    launcher_options: dict[str, Any] = {}
    seal_payload: dict[str, Any] | None = None

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
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        if kw.get("env") is not None:
            kw["env"] = kernelserver.with_arena_cap(kw["env"])
        return cmd, kw

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if len(cmd) >= 3 and cmd[1:3] == ["-m", "ipykernel_launcher"]:
            opts = json.dumps(self.launcher_options)
            return [cmd[0], "-m", "coursekit.grading.execution.kernel.launcher", PREFIX + opts,
                    *cmd[3:]]
        self.log.warning("kernel command %s is not ipykernel_launcher: no memory limit", cmd)
        return cmd

    def check_sockets(self) -> str:
        """Why the kernel's ipc sockets are not what the kernel bound (empty if they are):
        each path must be a socket, not a link to another one."""
        if self.transport != "ipc":
            return ""
        for port in (self.shell_port, self.iopub_port, self.stdin_port, self.control_port,
                     self.hb_port):
            path = f"{self.ip}-{port}"
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue  # not bound (yet): nothing to connect to
            if not stat.S_ISSOCK(mode):
                return f"{os.path.basename(path)} is not a socket"
        return ""


def _cell_name(cell: NotebookNode, index: int) -> str:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return grade_id or cell.get("id") or f"#{index}"


def _size(content: dict[str, Any]) -> int:
    """Bytes of a display message: its data and its metadata."""
    data = content.get("data") or {}
    size = sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in data.values())
    return size + len(json.dumps(content.get("metadata") or {}))


class LimitedExecute(Execute):
    """nbgrader's ``Execute`` with sealed locked cells, limits and output caps."""

    notebook_timeout = Integer(
        600, help="Seconds for the whole notebook (0: no limit)").tag(config=True)
    memory_limit_mb = Integer(
        2048, help="Resident memory of the kernel and all it starts, together, and RLIMIT_AS "
        "of each of its processes, in MiB (0: no limit)").tag(config=True)
    file_limit_mb = Integer(
        100, help="RLIMIT_FSIZE of the kernel's processes in MiB (0: no limit)").tag(config=True)
    max_processes = Integer(
        32, help="Processes of the kernel and all it starts, together (0: no limit)"
    ).tag(config=True)
    cpu_limit_s = Integer(
        0, help="CPU seconds of the kernel and all it starts, together (0: twice the "
        "notebook time limit)").tag(config=True)
    max_output_bytes = Integer(
        100_000, help="Characters of text output kept per cell (0: no limit)").tag(config=True)
    max_display_bytes = Integer(
        2_000_000, help="Bytes of other output (images, HTML) kept per cell (0: no limit)"
    ).tag(config=True)
    max_notebook_bytes = Integer(
        20_000_000, help="Bytes of output kept for the whole notebook (0: no limit)"
    ).tag(config=True)
    report_file = Unicode(
        "", help="Where to write what happened (JSON); empty: nowhere").tag(config=True)
    source_notebook = Unicode(
        "", help="The module's source notebook: the locked cells run sealed from it; empty: "
        "none sealed (every cell runs as it is)").tag(config=True)
    verdict_wait = Float(
        sealing.LINE_WAIT, help="Seconds to wait for a locked cell's signed outcome").tag(
        config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("kernel_manager_class", LimitedKernelManager)
        # widget state (comm messages) is kept by nbclient outside every output limit, and
        # grading has no use for it
        kwargs.setdefault("store_widget_state", False)
        super().__init__(*args, **kwargs)

    # -- set-up ----------------------------------------------------------------------
    def create_kernel_manager(self) -> Any:
        km = super().create_kernel_manager()
        if isinstance(km, LimitedKernelManager):
            km.launcher_options = {
                "memory_mb": self.memory_limit_mb,
                "file_mb": self.file_limit_mb,
                "output_bytes": self.max_output_bytes,
                "processes": self.max_processes,
                "files": 1024,
            }
            km.seal_payload = self._sealed.payload if self._sealed else None
        return km

    def preprocess(self, nb: NotebookNode, resources: Any = None,
                   km: Any = None) -> tuple[NotebookNode, Any]:
        self._deadline = (time.monotonic() + self.notebook_timeout
                          if self.notebook_timeout else math.inf)
        self._stopped: str | None = None
        self._events: list[dict[str, Any]] = []
        self._out_used: dict[int, int] = {}
        self._display_used: dict[int, int] = {}
        self._notebook_used = 0
        self._current = ""
        self._verdicts: dict[str, sealing.Verdict] = {}
        self._flags: list[str] = []
        self._limit_hit: str | None = None
        self._missing: list[str] = []  # locked cells without a signed outcome
        self._output: KernelOutput | None = None
        self._sent: set[tuple[str, str]] = set()  # (grade_id, nonce) the grader sent
        self._sealed = (sealing.payload(Path(self.source_notebook))
                        if self.source_notebook else None)
        self._watch_stop = threading.Event()
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            self._watch_stop.set()
            if resources is not None:
                resources["coursekit"] = self.outcome()
            if self.report_file:
                Path(self.report_file).write_text(json.dumps(self.outcome()),
                                                  encoding="utf-8")
        return nb, resources

    def outcome(self) -> dict[str, Any]:
        """What happened: limit events, verdicts of the locked cells, flags."""
        flags: list[str] = []
        sealed = self._sealed
        if sealed is not None:
            output = self._output
            sealing.read_flags(sealed, list(output.lines) if output else [])
            forged = sealing.count_forged(sealed, list(output.lines) if output else [])
            if forged:
                flags.append(f"{forged} line(s) on the kernel's output looked like the grader's "
                             "outcomes but were not signed (forged)")
            extra = sealing.unasked(sealed, list(output.lines) if output else [], self._sent)
            if extra:
                flags.append(f"the notebook's code ran the grader's runner itself "
                             f"({', '.join(extra[:3])})")
            if self._missing:
                flags.append(f"no signed outcome for {len(self._missing)} locked cell(s) "
                             f"({', '.join(self._missing[:3])}): the notebook's code changed how "
                             "cells run, or broke the grader's runner")
            flags += [f for f in sealed.flags if f not in flags]
        flags += [f for f in self._flags if f not in flags]
        return {"events": self._events,
                "verdicts": {gid: v.as_dict() for gid, v in self._verdicts.items()},
                "tests": sorted(g for g, k in (self._sealed.cells.items() if self._sealed
                                               else ()) if k == "test"),
                "flags": flags}

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        await super().async_start_new_kernel(**kwargs)
        self._output = getattr(getattr(self.km, "provisioner", None), "output", None)
        self._start_watch()

    start_new_kernel = run_sync(async_start_new_kernel)

    async def async_start_new_kernel_client(self) -> Any:
        kc = await super().async_start_new_kernel_client()
        km = self.km
        if isinstance(km, LimitedKernelManager):
            why = km.check_sockets()
            if why:
                self._flags.append(f"the kernel's sockets were tampered with ({why})")
                await km.shutdown_kernel(now=True)
                raise DeadKernelError(f"the kernel's sockets were tampered with ({why})")
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    # -- limits for the kernel and all it starts ------------------------------------------
    def _start_watch(self) -> None:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is None or not hasattr(process, "usage"):
            return
        cpu_limit = self.cpu_limit_s or (2 * self.notebook_timeout)

        def watch() -> None:
            while not self._watch_stop.wait(WATCH_EVERY):
                use = process.usage()
                if not use:
                    return
                why = None
                if self.max_processes and use["processes"] > self.max_processes:
                    why = (f"it ran {use['processes']} processes at once (the limit is "
                           f"{self.max_processes})")
                elif self.memory_limit_mb and use["rss_mb"] > self.memory_limit_mb:
                    why = (f"it and the processes it started used {use['rss_mb']:.0f} MiB of "
                           f"memory (the limit is {self.memory_limit_mb} MiB)")
                elif cpu_limit and use["cpu_s"] > cpu_limit:
                    why = (f"it and the processes it started used {use['cpu_s']:.0f} s of CPU "
                           f"(the limit is {cpu_limit} s)")
                if why:
                    self._limit_hit = why
                    process.kill()
                    return

        threading.Thread(target=watch, daemon=True, name="kernel-limits").start()

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
            if self._limit_hit:
                self._stop("limit", name, f"the kernel was stopped in cell {name}: "
                           f"{self._limit_hit}; later cells were not run")
            else:
                self._stop("kernel_died", name,
                           f"the kernel died in cell {name} (the code crashed Python, called "
                           "exit, or ran out of memory); later cells were not run")
            self._stop_cell(cell)
            return cell, resources

    async def async_execute_cell(self, cell: NotebookNode, cell_index: int,
                                 execution_count: int | None = None,
                                 store_history: bool = True) -> NotebookNode:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        sealed = self._sealed
        if sealed is None or gid not in sealed.cells or cell.cell_type != "code":
            return await super().async_execute_cell(cell, cell_index, execution_count,
                                                    store_history)
        nonce = sealing.nonce()
        self._sent.add((gid, nonce))
        source = cell.source
        cell.source = sealing.stub(gid, nonce)
        try:
            await super().async_execute_cell(cell, cell_index, execution_count,
                                             store_history=False)
        finally:
            cell.source = source
        verdict = await asyncio.to_thread(self._verdict, gid, nonce)
        self._verdicts[gid] = verdict
        if sealed.cells[gid] == "test":
            self._mark(cell, verdict)
        return cell

    execute_cell = run_sync(async_execute_cell)

    def _verdict(self, gid: str, nonce: str) -> sealing.Verdict:
        sealed = self._sealed
        assert sealed is not None
        output = self._output
        kind = sealed.cells[gid]
        if output is None:
            return sealing.Verdict("failed", "NotRunByGrader",
                                   "the grader could not read the kernel's outcome", kind)
        # the seal writes a cell's line before the kernel answers, so once what is in the
        # pipe is read, a missing line is missing
        lines = output.wait_for(sealing.token(nonce), self.verdict_wait)
        verdict = sealing.read_verdict(sealed, lines, gid, nonce)
        if verdict is None:
            if self._stopped is None and not output.closed:
                self._missing.append(gid)
            return sealing.Verdict("failed", "NotRunByGrader",
                                   self._stopped or "the grader could not see this cell run "
                                   "to its end", kind)
        return verdict

    @staticmethod
    def _mark(cell: NotebookNode, verdict: sealing.Verdict) -> None:
        """A test cell's outputs as the instructor sees them: what it printed, and its
        failure (if it failed) first; errors it displayed itself are dropped."""
        kept = [o for o in cell.get("outputs", [])
                if o.get("output_type") not in ("error", "execute_result")]
        if not verdict.passed:
            text = f"{verdict.ename}: {verdict.message}" if verdict.message else verdict.ename
            kept.insert(0, NotebookNode(output_type="error", ename=verdict.ename or "Error",
                                        evalue=verdict.message, traceback=[text]))
        cell.outputs = kept

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

    def _cut(self, what: str) -> None:
        event = {"kind": "output_cut", "cell": self._current,
                 "reason": f"output of cell {self._current} cut: {what}"}
        if event not in self._events:
            self._events.append(event)

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        kind = msg["msg_type"]
        if kind not in ("stream", "display_data", "execute_result", "error",
                        "update_display_data"):
            return super().output(outs, msg, display_id, cell_index)
        content = msg["content"]
        total = self.max_notebook_bytes
        if total and self._notebook_used >= total:
            self._cut(f"the notebook's outputs reached {total} bytes")
            return None
        cap = self.max_output_bytes
        if kind in ("stream", "error") and content.get("metadata"):
            content["metadata"] = {}  # nothing of the kernel's rides on a text output
        if kind == "stream":
            text = str(content.get("text", ""))
            used = self._out_used.get(cell_index, 0)
            if cap and used >= cap:
                return None
            if cap and used + len(text) > cap:
                content["text"] = text[: cap - used] + OUTPUT_NOTICE.format(n=cap)
                self._cut(f"{cap} characters")
            self._out_used[cell_index] = used + len(text)
            self._notebook_used += len(content["text"])
        elif kind == "error":
            tb = [str(t) for t in content.get("traceback") or []][:60]
            limit = cap or 100_000
            content["traceback"] = [t[:limit] for t in tb]
            content["evalue"] = str(content.get("evalue", ""))[:limit]
            content["ename"] = str(content.get("ename", ""))[:200]
            self._notebook_used += sum(len(t) for t in content["traceback"])
        else:
            size = _size(content)
            used = self._display_used.get(cell_index, 0)
            limit = self.max_display_bytes
            if limit and used + size > limit:
                self._cut(f"{limit} bytes of images and other displays")
                return None
            self._display_used[cell_index] = used + size
            self._notebook_used += size
        return super().output(outs, msg, display_id, cell_index)


class SaveVerdicts(SaveAutoGrades):
    """nbgrader's ``SaveAutoGrades`` with the sealed verdicts: a test cell earns its points
    if and only if the seal reported it passed (``resources["coursekit"]``, from
    :class:`LimitedExecute`); manually graded cells as nbgrader has them."""

    def _add_score(self, cell: NotebookNode, resources: Any) -> None:
        outcome = (resources or {}).get("coursekit")
        if outcome is None or not is_grade(cell) or is_solution(cell):
            return super()._add_score(cell, resources)
        gid = cell.metadata["nbgrader"]["grade_id"]
        grade = self.gradebook.find_grade(gid, self.notebook_id, self.assignment_id,
                                          self.student_id)
        verdict = outcome["verdicts"].get(gid)
        passed = verdict is not None and verdict.get("status") == "passed"
        grade.auto_score = float(grade.max_score) if passed else 0.0
        grade.needs_manual_grade = grade.manual_score is not None
        self.gradebook.db.commit()
