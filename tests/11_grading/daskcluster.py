"""A Dask cluster on 127.0.0.1 for the tests: the real ``dask scheduler`` and ``dask worker``
commands, started and stopped by process id.

Each worker runs as a machine of its own would: in its own working folder, inside a
bubblewrap sandbox (:meth:`DaskCluster.isolation`) where the course folder holds nothing but
its Python environment (``.venv``, as if installed from ``requirements.txt``) and the test's
folders (submissions, grading root) are hidden. The course package, the source notebooks and
the reference package reach it only in the grading bundle. That sandbox keeps the machine's
``/proc`` and network: bubblewrap nested in bubblewrap (the grading sandbox inside it)
cannot mount a new ``/proc`` when the outer one mounted its own, and the worker talks to the
scheduler on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class DaskCluster:
    """A scheduler and workers, each process started here and stopped by its id."""

    def __init__(self, folder: Path, hide: list[Path]) -> None:
        self.folder = folder
        self.hide = [p.resolve() for p in hide]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.address = ""
        folder.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> DaskCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self, name: str, cmd: list[str], cwd: Path,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("ab")
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, **(env or {})), start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        """What process ``name`` printed."""
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def start_scheduler(self, port: int = 0) -> str:
        """Start ``dask scheduler`` on 127.0.0.1 (a free port unless ``port``); its address."""
        info = self.folder / "scheduler.json"
        info.unlink(missing_ok=True)
        self._start("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard",
                                  "--scheduler-file", str(info)], self.folder)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if info.is_file():
                try:
                    self.address = json.loads(info.read_text())["address"]
                    return self.address
                except (ValueError, KeyError):
                    pass
            if self.procs["scheduler"].poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"dask scheduler did not start:\n{self.log('scheduler')[-2000:]}")

    def isolation(self, workdir: Path) -> list[str]:
        """The bubblewrap command that makes ``workdir`` a machine of its own."""
        from coursekit.grading.execution.sandbox import bwrap_path

        cmd = [bwrap_path(), "--dev-bind", "/", "/", "--die-with-parent"]
        for folder in self.hide:
            cmd += ["--tmpfs", str(folder)]
        venv = Path(sys.prefix)
        if any(venv.is_relative_to(h) for h in self.hide):
            cmd += ["--ro-bind", str(venv), str(venv)]
        return [*cmd, "--bind", str(workdir), str(workdir), "--chdir", str(workdir), "--"]

    def start_worker(self, name: str, env: dict[str, str] | None = None) -> Path:
        """Start ``dask worker`` (one thread, no nanny) in its own folder, isolated; the
        folder."""
        workdir = self.folder / name
        workdir.mkdir(parents=True, exist_ok=True)
        cmd = [str(BIN / "dask"), "worker", self.address, "--name", name, "--nthreads", "1",
               "--no-nanny", "--no-dashboard", "--local-directory", str(workdir)]
        self._start(name, [*self.isolation(workdir), *cmd], workdir, env)
        return workdir

    def run_isolated(self, workdir: Path, code: str) -> str:
        """Run Python ``code`` as a worker would run (same isolation); its output."""
        done = subprocess.run([*self.isolation(workdir), sys.executable, "-c", code],
                              capture_output=True, text=True, timeout=60, cwd=workdir)
        return done.stdout + done.stderr

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        """Wait until ``n`` workers are connected to the scheduler."""
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            try:
                client.wait_for_workers(n, timeout=timeout)
            except TimeoutError:
                logs = "\n".join(f"== {k}\n{self.log(k)[-1500:]}" for k in self.procs)
                raise RuntimeError(f"{n} dask workers did not connect:\n{logs}") from None

    def kill(self, name: str) -> None:
        """Kill process ``name`` at once (SIGKILL), as a machine that goes away."""
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop every process started here (workers first), by its id."""
        for name in sorted(self.procs, key=lambda n: n == "scheduler"):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.terminate()
        for name, proc in list(self.procs.items()):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self.procs.pop(name)
