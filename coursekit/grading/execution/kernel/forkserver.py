"""The kernel fork server: grading kernels forked from a process that has loaded them.

Every submission is graded in a new kernel process. Started the usual way, each one spends
about 0.7 s of CPU importing ipykernel, IPython, NumPy and matplotlib before the first cell
runs; with two workers on two cores that is a large part of a class's grading time. A
grading worker therefore starts one fork server (``python -m
coursekit.grading.execution.kernel.forkserver``) per module it grades, inside that module's sandbox
(:mod:`coursekit.grading.execution.sandbox`), which imports those modules once, then forks a new
process for every kernel. Nothing of the reference package is imported before a fork: the
fork server holds no course code but this package.

A forked kernel is still a new process, sealed off from the kernels before and after it: in
the sandbox it takes namespaces of its own
(:mod:`coursekit.grading.execution.kernel.isolate`: its own PID namespace, private ``/tmp``,
``HOME`` and scratch copy of its submission, no network) and drops every privilege before it runs a
line of the notebook. It then becomes a kernel as ``python -m
coursekit.grading.execution.kernel.launcher`` would: same limits, environment and working folder as
the request says, a new session, stdin an empty pipe, NumPy's global random state seeded afresh,
and no descriptor of the fork server left open.

The fork server reads one JSON request a line on stdin and answers one JSON line on stdout:

* ``{"op": "launch", "argv", "env", "cwd", "isolate", "seal", "lockdown"}``: fork a kernel;
  ``{"pid": N}``. The kernel's standard output and error are a pipe of its own, whose read
  end goes to the grading worker over the Unix socket named by ``--fd-socket`` (one message
  ``pid`` with the descriptor): the worker reads everything the kernel writes there, the
  seal's signed lines included (:mod:`coursekit.grading.execution.kernel.seal`); no kernel
  writes into a file of the host. ``seal`` (what the seal holds) and ``lockdown`` (what the
  kernel does before its first cell) are taken out of the request in the kernel and passed
  on in memory;
* ``{"op": "poll", "pid"}``: ``{"returncode": code or null}``;
* ``{"op": "signal", "pid", "signal"}``: ``{}``;
* ``{"op": "usage", "pid"}``: what the kernel and every process it started use now:
  ``{"processes", "rss_mb", "cpu_s"}`` (the grading worker holds them to their limits);
* ``{"op": "stop", "pid"}``: kill the kernel and every process it started, and any other
  process left with the fork server; ``{"left": [command lines of those that ran]}``
  (multiprocessing's own helper processes, which end with the kernel, are not named).

The fork server is a child subreaper, so a kernel and whatever escapes it come back to it,
and is not dumpable, so its kernels cannot read its memory or attach to it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from typing import Any

# Not matplotlib_inline.backend_inline: on import it hooks itself into the running IPython
# shell, which exists only once the kernel has started (the kernel imports it then).
PRELOAD = ("numpy", "numpy.testing", "numpy.linalg", "matplotlib", "matplotlib.pyplot",
           "ipykernel.kernelapp",
           "ipykernel.ipkernel", "coursekit.grading.execution.kernel.outstream",
           "coursekit.grading.execution.kernel.seal",
           "coursekit.grading.execution.kernel.launcher")
PR_SET_CHILD_SUBREAPER = 36


def _become_kernel(request: dict[str, Any], output: int) -> None:
    """In the forked kernel process: take on the request's process state, run the kernel
    (its standard output and error: the pipe ``output``)."""
    code = 1
    try:
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        from coursekit.grading.execution.kernel import isolate

        isolate.set_dumpable(True)
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
        from coursekit.grading.execution.kernel import launcher as kernel_launcher

        sys.argv = [request["argv"][0], *request["argv"][3:]]
        # the seal's payload goes on in memory, out of the request (and of every frame
        # below the kernel's, which the notebook's code could walk)
        kernel_launcher.main(request["argv"][3:], request.pop("seal", None),
                             request.pop("lockdown", None))
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


def _fork_kernel(request: dict[str, Any], output: int) -> int:
    """Fork the kernel; an isolated one through a first process that takes its namespaces."""
    isolate = request.get("isolate")
    if not isolate:
        pid = os.fork()
        if pid == 0:
            _become_kernel(request, output)
        return pid
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:  # takes the namespaces; its child is process 1 of the new PID namespace
        answer = b""
        try:
            os.close(read_end)
            from coursekit.grading.execution.kernel import isolate as ns

            ns.enter(**isolate)
            kernel = os.fork()
            if kernel == 0:
                os.close(write_end)
                _become_kernel(request, output)
            answer = f"{kernel}\n".encode()
        except BaseException as exc:  # noqa: BLE001 - tell the fork server, then leave
            answer = f"error {exc}\n".encode()
        finally:
            os.write(write_end, answer)
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        data = fh.read().decode()
    os.waitpid(middle, 0)  # once it is gone, the kernel is this subreaper's child
    if not data.strip().isdigit():
        raise OSError(data.strip() or "the kernel's namespaces could not be set up")
    return int(data)


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process this /proc shows."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if len(fields) > 1:
            out[int(entry.name)] = (int(fields[1]), fields[0])
    return out


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            text = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text[:160] or f"pid {pid}"


#: Processes the standard library starts for itself, which end with the kernel: not "left
#: running" by the notebook (a multiprocessing pool that was closed leaves its resource
#: tracker until the kernel ends).
HELPERS = ("-c from multiprocessing.resource_tracker import main",
           "-c from multiprocessing.forkserver import main")


def _tree(kernel: int, procs: dict[int, tuple[int, str]]) -> set[int]:
    """``kernel`` and every process below it."""
    below: set[int] = set()
    frontier = {kernel}
    while frontier:
        below |= frontier
        frontier = {p for p, (ppid, _) in procs.items() if ppid in frontier} - below
    return below & set(procs)


def _memory_files(pid: int, seen: set[tuple[int, int]]) -> int:
    """Bytes of the memory-backed files (``memfd_create``) process ``pid`` holds open and
    ``seen`` has not counted yet: memory that neither its resident size nor RLIMIT_AS
    counts."""
    total = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in fds:
        path = f"/proc/{pid}/fd/{fd}"
        try:
            if not os.readlink(path).startswith("/memfd:"):
                continue
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def _usage(kernel: int) -> dict[str, Any]:
    """Processes, memory (resident, and memory-backed files) and CPU time of ``kernel`` and
    everything below it."""
    pages = os.sysconf("SC_PAGE_SIZE")
    ticks = os.sysconf("SC_CLK_TCK")
    tree = _tree(kernel, _processes())
    rss = cpu = 0
    seen: set[tuple[int, int]] = set()
    for pid in tree:
        rss += _memory_files(pid, seen)
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
                rss += int(fh.read().split()[1]) * pages
            with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
        except (OSError, ValueError, IndexError):
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        cpu += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return {"processes": len(tree), "rss_mb": rss / 2**20, "cpu_s": cpu / ticks}


def _stop(kernel: int) -> list[str]:
    """Kill ``kernel``, what it started and whatever else was left with this server; reap
    them all. Returns the command lines of those that were still running (not the kernel)."""
    me = os.getpid()
    procs = _processes()
    below = _tree(kernel, procs)
    others = {p for p, (ppid, _) in procs.items() if ppid == me} - {kernel}
    left = [cmd for p in sorted((below | others) - {kernel}) if procs[p][1] != "Z"
            and not any(helper in (cmd := _command(p)) for helper in HELPERS)]
    for pid in (kernel, *sorted((below | others) - {kernel})):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in (kernel, *sorted(others)):
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    for _ in range(50):  # processes handed to this subreaper as their parents died
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    return left


def _poll(pid: int) -> int | None:
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -1  # reaped already (a stop)
    return os.waitstatus_to_exitcode(status) if done else None


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Answer one request (see the module's docstring)."""
    op = request.get("op")
    if op == "launch":
        if threading.active_count() != 1:  # forking is only safe with a single thread
            return {"error": "the fork server has started threads"}
        if _fd_socket is None:
            return {"error": "the fork server has no socket to hand over kernel output"}
        read_end, write_end = os.pipe()
        try:
            pid = _fork_kernel(request, write_end)
        except OSError as exc:
            return {"error": f"fork failed: {exc}"}
        finally:
            os.close(write_end)
        try:
            socket.send_fds(_fd_socket, [str(pid).encode()], [read_end])
        finally:
            os.close(read_end)
        return {"pid": pid}
    if op == "usage":
        return _usage(int(request["pid"]))
    if op == "poll":
        return {"returncode": _poll(int(request["pid"]))}
    if op == "signal":
        try:
            os.kill(int(request["pid"]), int(request["signal"]))
        except ProcessLookupError:
            return {"gone": True}
        return {}
    if op == "stop":
        return {"left": _stop(int(request["pid"]))}
    return {"error": f"unknown request {op!r}"}


def _make_subreaper() -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


_fd_socket: socket.socket | None = None


def serve(argv: list[str] | None = None) -> int:
    """The fork server: preload, say ``ready``, then answer a request per line.

    ``--fd-socket N``: the Unix socket (inherited as descriptor N) on which the read end of
    each kernel's output pipe goes to the grading worker.
    """
    global _fd_socket
    argv = sys.argv[1:] if argv is None else argv
    if "--fd-socket" in argv:
        fd = int(argv[argv.index("--fd-socket") + 1])
        _fd_socket = socket.socket(fileno=fd)
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # kernels and anything printed here write to stderr, not the answers
    sys.stdout = sys.stderr
    if not _make_subreaper():
        answers.write(json.dumps({"error": "cannot become a child subreaper"}) + "\n")
        answers.flush()
        return 1
    from coursekit.grading.execution.kernel import isolate

    isolate.set_dumpable(False)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the kernel imports it itself, or fails the same way it would have
    answers.write(json.dumps({"ready": os.getpid()}) + "\n")
    answers.flush()
    while True:
        # No loop variable holds a request: a forked kernel keeps this frame, and a
        # request carries the seal's payload (taken out of the parsed dict in the kernel).
        request = _read_request()
        if request is None:
            return 0
        if request:
            answers.write(json.dumps(handle(request)) + "\n")
            answers.flush()
        request = None


def _read_request() -> dict[str, Any] | None:
    """The next request (empty for a blank line), None at the end of the input."""
    line = sys.stdin.readline()
    if not line:
        return None
    return json.loads(line) if line.strip() else {}


if __name__ == "__main__":
    sys.exit(serve())
