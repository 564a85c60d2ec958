"""Start grading kernels by forking a process that has already loaded them.

Every submission is graded in a new kernel process. Started the usual way, each one spends
about half a second of CPU importing ipykernel, IPython, NumPy and matplotlib before the
first cell runs; with two workers on two cores that is a large part of a class's grading
time. A grading worker therefore starts one *fork server*
(``python -m coursekit.grading.kernel.forkserver``) that imports those modules once, then forks a
new process for every kernel. A forked kernel is still a new process: nothing a student's
code does in one kernel is seen by another, and :mod:`coursekit.grading.kernel.launcher` applies
the same limits in it.

How a forked kernel is the same as one started with ``python -m coursekit.grading.kernel.launcher``:

* environment, working directory and ``sys.path[0]`` are those of the launch request; the
  fork server refuses a request whose environment differs from its own in anything but
  ``JPY_*``, ``COURSEKIT_*`` and ``NBGRADER_*`` variables (read after start-up), and the
  kernel is then started the usual way;
* ipykernel's ``parent_handle``, read from the environment when ipykernel is imported, is
  set again from the request (``coursekit.grading.kernel.launcher``);
* a new session (process group), stdin an empty pipe, stdout/stderr inherited;
* NumPy's global random state is seeded afresh (``random`` reseeds itself after a fork);
* ``MPLBACKEND`` defaults to the inline backend before matplotlib is imported, as
  ipykernel would set it before the notebook imports matplotlib.

The kernel must be a child of the grading worker, so that the kernel manager can poll,
signal and reap it like a process it started itself: the worker marks itself a *child
subreaper* (Linux ``prctl``) and the fork server forks twice, so the kernel is handed to
the worker as soon as the intermediate process exits. Where that is not available (not
Linux), kernels are started the usual way.

Being the subreaper also lets the worker see what a notebook left behind: a process that
left the kernel's process group (``start_new_session=True``, a daemon) outlives the kernel
and becomes the worker's child. :func:`stop_leftovers` stops such processes after every
submission, so that they cannot slow down the next ones, and names them for the
instructor.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

LAUNCHER = ["-m", "coursekit.grading.kernel.launcher"]
# Not matplotlib_inline.backend_inline: on import it hooks itself into the running IPython
# shell, which exists only once the kernel has started (the kernel imports it then).
PRELOAD = ("numpy", "matplotlib", "matplotlib.pyplot", "ipykernel.kernelapp",
           "ipykernel.ipkernel", "coursekit.grading.kernel.guard",
           "coursekit.grading.kernel.launcher")
PR_SET_CHILD_SUBREAPER = 36


def _runtime_var(name: str) -> bool:
    """Variables read by the kernel after it starts (they may differ between kernels)."""
    return name.startswith(("JPY_", "COURSEKIT_", "NBGRADER_"))


def _startup_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not _runtime_var(k)}


# -- the fork server process ---------------------------------------------------------------
def _become_kernel(request: dict[str, Any]) -> None:
    """In the forked kernel process: take on the request's process state, run the kernel."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        stdin, keep_open = os.pipe()  # an empty pipe, as the launcher gives: reads wait
        os.dup2(stdin, 0)
        os.close(stdin)
        # no other descriptor of the fork server (its answers to the worker above all), as
        # a new process started with close_fds would have none
        os.closerange(3, keep_open)
        os.closerange(keep_open + 1, os.sysconf("SC_OPEN_MAX"))
        cwd = request.get("cwd") or os.getcwd()
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[0] = cwd  # what `python -m` puts first
        np = sys.modules.get("numpy")
        if np is not None:
            np.random.seed()  # a fresh global state, as a new process would have
        from coursekit.grading.kernel import launcher as kernel_launcher

        sys.argv = [request["argv"][0], *request["argv"][3:]]
        kernel_launcher.main(request["argv"][3:])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - report anything, then leave
        import traceback

        traceback.print_exc()
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _fork_kernel(request: dict[str, Any]) -> int:
    """Fork twice: the kernel's parent exits at once, so the kernel goes to the subreaper."""
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:  # the intermediate process
        try:
            os.close(read_end)
            kernel = os.fork()
            if kernel == 0:
                os.close(write_end)
                _become_kernel(request)
            os.write(write_end, f"{kernel}\n".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        data = fh.read()
    os.waitpid(middle, 0)  # once it is gone, the kernel belongs to the subreaper
    return int(data)


def serve() -> int:
    """The fork server: preload, say ``ready``, then fork a kernel per request line."""
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # kernels and anything printed here write to stderr, not the answers
    sys.stdout = sys.stderr
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the kernel imports it itself, or fails the same way it would have
    answers.write(json.dumps({"ready": os.getpid()}) + "\n")
    answers.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if threading.active_count() != 1:  # forking is only safe with a single thread
            answers.write(json.dumps({"error": "the fork server has started threads"}) + "\n")
        else:
            try:
                answers.write(json.dumps({"pid": _fork_kernel(request)}) + "\n")
            except OSError as exc:
                answers.write(json.dumps({"error": f"fork failed: {exc}"}) + "\n")
        answers.flush()
    return 0


# -- the grading worker's side ---------------------------------------------------------------
class ForkedKernel:
    """A kernel process forked by the fork server, handled like a ``subprocess.Popen``."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.lost = False  # not this process's child: it cannot be waited for
        self.args = ["<forked kernel>", str(pid)]

    def _status(self, status: int) -> int:
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self) -> int | None:
        """The exit code, or None while the kernel runs."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode, self.lost = -1, True
                return self.returncode
            if pid:
                return self._status(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the kernel to exit (``timeout`` is accepted for Popen's sake)."""
        if self.returncode is None:
            if timeout is not None:
                import time

                deadline = time.monotonic() + timeout
                while self.poll() is None:
                    if time.monotonic() > deadline:
                        raise subprocess.TimeoutExpired(self.args, timeout)
                    time.sleep(0.01)
                return self.returncode  # type: ignore[return-value]
            try:
                return self._status(os.waitpid(self.pid, 0)[1])
            except ChildProcessError:
                self.returncode, self.lost = -1, True
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Signal the kernel if it has not been reaped (its pid cannot be reused before)."""
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _make_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children() -> list[tuple[int, str]]:
    """(pid, state) of this process's children, read from /proc."""
    me, out = os.getpid(), []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if len(fields) > 1 and int(fields[1]) == me:
            out.append((int(entry.name), fields[0]))
    return out


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            text = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text[:160] or f"pid {pid}"


def stop_leftovers(keep: set[int]) -> list[str]:
    """Kill and reap this process's children other than ``keep``; the running ones' commands.

    Exited children (zombies) are only reaped. Only meaningful in a child subreaper (a
    grading worker with a fork server), where a graded notebook's escaped processes end up.
    """
    stopped: list[str] = []
    for _ in range(10):  # killing one may hand its own children to us
        found = [(pid, state) for pid, state in _children() if pid not in keep]
        if not found:
            break
        for pid, state in found:
            if state != "Z":
                stopped.append(_command(pid))
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return stopped


class ForkServer:
    """The grading worker's handle on its fork server."""

    def __init__(self) -> None:
        self.env = dict(os.environ)
        self.proc: subprocess.Popen[str] | None = None
        self.lock = threading.Lock()
        self.ready = False
        self.launched = 0
        self.refused: list[str] = []
        self.subreaper = _make_subreaper()
        if not self.subreaper:
            self.refused.append("this system cannot hand forked kernels to the worker")
            return
        self.proc = subprocess.Popen([sys.executable, "-m", "coursekit.grading.kernel.forkserver"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=self.env, bufsize=1)

    def _refuse(self, why: str) -> None:
        if why not in self.refused:
            self.refused.append(why)
            print(f"kernel fork server: {why}; starting kernels the usual way", file=sys.stderr)

    def launch(self, cmd: list[str], env: dict[str, str] | None,
               cwd: str | None) -> ForkedKernel | None:
        """Fork a kernel for this launch, or None (start it the usual way)."""
        if self.proc is None:
            return None
        env = dict(self.env if env is None else env)
        if cmd[:1] != [sys.executable] or cmd[1:3] != LAUNCHER:
            self._refuse(f"kernel command {cmd[:3]} is not this Python's kernel launcher")
            return None
        if _startup_env(env) != _startup_env(self.env):
            diff = sorted(set(_startup_env(env).items()) ^ set(_startup_env(self.env).items()))
            self._refuse(f"kernel environment differs in {sorted({k for k, _ in diff})}")
            return None
        env["JPY_PARENT_PID"] = str(os.getpid())  # as jupyter_client's launcher sets it
        with self.lock:
            assert self.proc.stdin and self.proc.stdout
            try:
                if not self.ready:
                    if "ready" not in json.loads(self.proc.stdout.readline() or "{}"):
                        raise OSError("the fork server did not start")
                    self.ready = True
                self.proc.stdin.write(json.dumps({"argv": cmd, "env": env,
                                                  "cwd": str(cwd or os.getcwd())}) + "\n")
                self.proc.stdin.flush()
                answer = json.loads(self.proc.stdout.readline() or "{}")
            except (OSError, ValueError) as exc:
                self._refuse(f"the fork server stopped ({exc})")
                self.close()
                return None
        if not isinstance(answer.get("pid"), int) or answer["pid"] <= 1:
            self._refuse(str(answer.get("error", f"the fork server answered {answer!r}")))
            return None
        kernel = ForkedKernel(answer["pid"])
        kernel.poll()
        if kernel.lost:  # not this process's child: never signal a process we do not own
            self._refuse("a forked kernel was not handed to the worker")
            return None
        self.launched += 1
        return kernel

    def stop_leftovers(self) -> list[str]:
        """After a submission: stop the processes its notebook left running (see module doc)."""
        if not self.subreaper:
            return []
        return stop_leftovers({self.proc.pid} if self.proc is not None else set())

    def close(self) -> None:
        """Stop the fork server (running kernels are not affected)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                if proc.stdin:
                    proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()


_server: ForkServer | None = None


def start() -> ForkServer:
    """Start this process's fork server (a grading worker calls this once, early)."""
    global _server
    if _server is None:
        _server = ForkServer()
    return _server


def current() -> ForkServer | None:
    """This process's fork server, if one was started."""
    return _server


def stop() -> None:
    """Stop this process's fork server."""
    global _server
    if _server is not None:
        _server.close()
        _server = None


if __name__ == "__main__":
    sys.exit(serve())
