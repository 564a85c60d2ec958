"""Where grading kernels come from: a fork server per module, sandboxed by default.

:func:`serve` gives the process (a grading worker, or ``course grade --workers 0`` itself)
the fork server for the module it is about to grade, starting it in that module's sandbox
(:mod:`coursekit.grading.execution.sandbox`) or, with the sandbox off, as a plain child process; the
server of the previous module is stopped first.
:class:`coursekit.grading.execution.limits.LimitedExecute` then launches every kernel through
:func:`current` (see :mod:`coursekit.grading.execution.kernel.forkserver` for what the server
does).

Without a sandbox, a kernel is started the usual way where the fork server cannot run (not
Linux); with the sandbox on there is no such way out: a kernel that cannot start sealed off
does not start.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coursekit.course import Course, CourseError, Module
from coursekit.grading.execution import sandbox as sb
from coursekit.grading.execution.kerneloutput import KernelOutput, remove_tree

LAUNCHER = ["-m", "coursekit.grading.execution.kernel.launcher"]
LIMITS_PREFIX = "--coursekit-limits="
#: What a sandboxed kernel takes of the grading process's environment (set per kernel by
#: jupyter_client and nbgrader); nothing else crosses, whatever its name.
SANDBOX_PASS_ENV = ("JPY_SESSION_NAME", "NBGRADER_EXECUTION", "NBGRADER_VALIDATING")


def _runtime_var(name: str) -> bool:
    """Variables set per kernel by jupyter_client, nbgrader and the grader."""
    return name.startswith(("JPY_", "COURSEKIT_", "NBGRADER_"))


def with_arena_cap(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with glibc's malloc arenas capped at 2 (unless it says otherwise): each thread
    of a kernel would otherwise reserve an arena of 64 MiB of address space, and a kernel's
    dozen threads put it near 900 MiB of its ``RLIMIT_AS`` before its first cell."""
    return {**env, "MALLOC_ARENA_MAX": env.get("MALLOC_ARENA_MAX", sb.MALLOC_ARENA_MAX)}


def _startup_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not _runtime_var(k)}


class KernelServerError(CourseError):
    """The fork server could not start or stopped answering."""


class ForkedKernel:
    """A kernel forked by the fork server, handled like a ``subprocess.Popen``."""

    stdin = stdout = stderr = None

    def __init__(self, server: KernelServer, pid: int, output: KernelOutput) -> None:
        self.server = server
        self.pid = pid
        self.output = output
        self.returncode: int | None = None
        self.args = ["<forked kernel>", str(pid)]

    def poll(self) -> int | None:
        """The exit code, or None while the kernel runs."""
        if self.returncode is None:
            answer = self.server.request({"op": "poll", "pid": self.pid}, quiet=True)
            code = answer.get("returncode", -1)
            if code is not None:
                self.returncode = int(code)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the kernel to exit."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            time.sleep(0.02)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, signum: int) -> None:
        """Signal the kernel; SIGKILL stops it and everything it started."""
        if self.poll() is not None:
            return
        if signum == signal.SIGKILL:
            self.server.stop(self.pid)
            self.poll()
        else:
            self.server.request({"op": "signal", "pid": self.pid, "signal": int(signum)})

    def usage(self) -> dict[str, float]:
        """Processes, resident memory (MiB) and CPU seconds of the kernel and all it started
        (empty once it is gone)."""
        if self.poll() is not None:
            return {}
        answer = self.server.request({"op": "usage", "pid": self.pid}, quiet=True)
        return {} if "error" in answer else answer

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class KernelServer:
    """The grading process's handle on one fork server (sandboxed or not)."""

    def __init__(self, course: Course, module: Module, sandboxed: bool,
                 workdir: Path | None = None) -> None:
        self.course = course
        self.module = module
        self.sandbox = sb.create(course, module, workdir) if sandboxed else None
        self.lock = threading.Lock()
        self.ready = False
        self.launched = 0
        self.left: list[str] = []  # processes the last stopped kernel left running
        self.refused: list[str] = []  # why kernels were started the usual way instead
        self.env = with_arena_cap(os.environ)
        # the read end of each kernel's output pipe comes back on this socket
        self.fds, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [sys.executable, "-m", "coursekit.grading.execution.kernel.forkserver",
                "--fd-socket", str(theirs.fileno())]
        if self.sandbox is not None:
            argv = self.sandbox.command(argv)
        log = sys.stderr
        try:
            self.proc: subprocess.Popen[str] | None = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                env=self.env if self.sandbox is None else {"PATH": "/usr/bin:/bin"},
                bufsize=1, pass_fds=(theirs.fileno(),))
        except OSError as exc:
            theirs.close()
            self.close()
            raise KernelServerError(f"the kernel fork server did not start: {exc}") from exc
        theirs.close()

    @property
    def sandboxed(self) -> bool:
        """True when kernels are sealed off in the sandbox."""
        return self.sandbox is not None

    def _wait_ready(self) -> None:
        assert self.proc is not None and self.proc.stdout
        line = self.proc.stdout.readline()
        answer = json.loads(line) if line.strip() else {}
        if "ready" not in answer:
            why = answer.get("error") or f"exit code {self.proc.poll()}"
            hint = f"; {sb.HOW_TO_GET}" if self.sandbox is not None else ""
            raise OSError(f"it did not start: {why}{hint}")
        self.ready = True

    def request(self, request: dict[str, Any], quiet: bool = False) -> dict[str, Any]:
        """Send one request, return the answer (``{"error": ...}`` if the server is gone)."""
        return self._exchange(request, quiet)[0]

    def _exchange(self, request: dict[str, Any], quiet: bool = False,
                  receive_fd: bool = False) -> tuple[dict[str, Any], int | None]:
        """One request and its answer; with ``receive_fd``, also the descriptor the server
        sends with a launch (the new kernel's output pipe), checked against its pid."""
        with self.lock:
            if self.proc is None:
                return {"error": "the fork server is stopped"}, None
            assert self.proc.stdin and self.proc.stdout
            try:
                if not self.ready:
                    self._wait_ready()
                self.proc.stdin.write(json.dumps(request) + "\n")
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
                if not line:
                    raise OSError("no answer")
                answer = json.loads(line)
                if not receive_fd or not isinstance(answer.get("pid"), int):
                    return answer, None
                self.fds.settimeout(30)
                message, fds, _flags, _addr = socket.recv_fds(self.fds, 64, 1)
                if message != str(answer["pid"]).encode() or len(fds) != 1:
                    for fd in fds:
                        os.close(fd)
                    raise OSError("the fork server handed over the wrong output pipe")
                return answer, fds[0]
            except (OSError, ValueError) as exc:
                if not quiet:
                    print(f"kernel fork server: stopped ({exc})", file=sys.stderr)
                self._close_process()
                return {"error": f"the fork server stopped ({exc})"}, None

    # -- launching ---------------------------------------------------------------------
    def launch(self, cmd: list[str], env: dict[str, str] | None, cwd: str | None,
               km: Any = None, seal: dict[str, Any] | None = None) -> ForkedKernel | None:
        """Fork a kernel for this launch, sealed with ``seal`` (see
        :mod:`coursekit.grading.execution.kernel.seal`). None: start it the usual way (never
        in a sandbox)."""
        if cmd[:1] != [sys.executable] or cmd[1:3] != LAUNCHER:
            return self._refuse(f"kernel command {cmd[:3]} is not this Python's kernel launcher")
        env = dict(self.env if env is None else env)
        env["JPY_PARENT_PID"] = str(os.getpid())  # as jupyter_client's launcher sets it
        request: dict[str, Any] = {"op": "launch", "argv": list(cmd),
                                   "cwd": str(cwd or os.getcwd())}
        if self.sandbox is not None:
            request = self._sandbox_request(request, env, km)
        else:
            if _startup_env(env) != _startup_env(self.env):
                diff = sorted(set(_startup_env(env).items())
                              ^ set(_startup_env(self.env).items()))
                return self._refuse(f"kernel environment differs in {sorted({k for k, _ in diff})}")
            request["env"] = env
        if seal is not None:
            request["seal"] = seal
        answer, fd = self._exchange(request, receive_fd=True)
        pid = answer.get("pid")
        if not isinstance(pid, int) or pid <= 1 or fd is None:
            return self._refuse(str(answer.get("error", f"the fork server answered {answer!r}")))
        self.launched += 1
        return ForkedKernel(self, pid, KernelOutput(fd))

    def _sandbox_request(self, request: dict[str, Any], env: dict[str, str],
                         km: Any) -> dict[str, Any]:
        """Translate a launch into the sandbox: paths, environment, scratch copy."""
        sandbox = self.sandbox
        assert sandbox is not None
        argv = list(request["argv"])
        # nothing of an earlier kernel (it could not write here after its first cell, but
        # what it bound before stays): cleaned, or the sandbox is not used again
        for old in list(sandbox.run_dir.iterdir()):
            if not remove_tree(old):
                raise KernelServerError(f"the run folder of the sandbox could not be cleaned "
                                        f"({old.name})")
        for i, arg in enumerate(argv):
            if arg == "-f" and i + 1 < len(argv):  # the connection file, with sandbox paths
                info = json.loads(Path(argv[i + 1]).read_text(encoding="utf-8"))
                if info.get("transport") != "ipc":
                    raise KernelServerError("a sandboxed kernel needs the ipc transport")
                inside = sandbox.run_dir / f"{Path(argv[i + 1]).stem}.json"
                info["ip"] = sandbox.to_sandbox(info["ip"])
                inside.write_text(json.dumps(info), encoding="utf-8")
                argv[i + 1] = sandbox.to_sandbox(inside)
        # the scratch copy: the submission's folder (nbgrader's autograded copy), staged
        folder = Path(request["cwd"])
        for old in list(sandbox.stage.iterdir()):
            if not remove_tree(old):
                raise KernelServerError(f"the stage folder of the sandbox could not be cleaned "
                                        f"({old.name})")
        if folder.is_dir():
            # not the notebook nbgrader prepared (its test cells hold the hidden tests: the
            # kernel gets each cell's code from the grader as it runs it) nor its timestamp
            shutil.copytree(folder, sandbox.stage, dirs_exist_ok=True, symlinks=True,
                            ignore=shutil.ignore_patterns("*.ipynb", "timestamp.txt"))
        for path in (sandbox.stage, *sandbox.stage.rglob("*")):
            if not path.is_symlink():
                path.chmod(0o777 if path.is_dir() else 0o666)
        scratch = f"{sb.HOME}/{folder.name or 'work'}"
        kernel_env = sandbox.env()
        kernel_env.update({k: env[k] for k in SANDBOX_PASS_ENV if k in env})
        # its parent is not visible from its namespace; 1 turns off watching for it
        kernel_env["JPY_PARENT_PID"] = "1"
        request.update(argv=argv, env=kernel_env, cwd=scratch, isolate={
            "home": sb.HOME, "scratch": scratch, "stage": sb.STAGE,
            "tmp_mb": sb.TMP_MB, "home_mb": sb.HOME_MB, "shm_mb": sb.SHM_MB},
            lockdown={"run": sb.RUN})
        return request

    def _refuse(self, why: str) -> None:
        if self.sandbox is not None:
            raise KernelServerError(f"a sandboxed kernel could not start: {why}")
        if why not in self.refused:
            self.refused.append(why)
            print(f"kernel fork server: {why}; starting kernels the usual way", file=sys.stderr)
        return None

    # -- stopping ----------------------------------------------------------------------
    def stop(self, pid: int) -> None:
        """Kill kernel ``pid`` and what it started; remember what it left running."""
        answer = self.request({"op": "stop", "pid": pid})
        self.left += [str(c) for c in answer.get("left", [])]

    def take_leftovers(self) -> list[str]:
        """The processes kernels left running since the last call (stopped by then)."""
        left, self.left = self.left, []
        return left

    def _close_process(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                if proc.stdin:
                    proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()

    def close(self) -> None:
        """Stop the fork server (and, in the sandbox, everything in it)."""
        self._close_process()
        self.fds.close()
        if self.sandbox is not None:
            sb.remove(self.sandbox)


_server: KernelServer | None = None
_stop_at_exit = False


def serve(course: Course, module: Module, sandboxed: bool,
          workdir: Path | None = None) -> KernelServer | None:
    """Make this process's fork server the one for ``module`` (None: kernels start the usual
    way, only possible without the sandbox, where fork servers do not run)."""
    global _server
    if (_server is not None and _server.proc is not None and _server.module == module
            and _server.sandboxed == sandboxed and _server.course.root == course.root):
        return _server
    stop()
    if not sys.platform.startswith("linux"):
        if sandboxed:
            raise sb.SandboxUnavailable(f"this system is {sys.platform}; {sb.HOW_TO_GET}")
        return None
    _server = KernelServer(course, module, sandboxed, workdir)
    global _stop_at_exit
    if not _stop_at_exit:  # a process that ends without stop() leaves no sandbox folder behind
        atexit.register(stop)
        _stop_at_exit = True
    return _server


def current() -> KernelServer | None:
    """This process's fork server, if one runs."""
    return _server


def stop() -> None:
    """Stop this process's fork server."""
    global _server
    if _server is not None:
        _server.close()
        _server = None
